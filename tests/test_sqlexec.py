"""Untrusted SQL against a copy of real databases: every hostile query ends as an error kind,
nothing on disk changes, time stays bounded."""

import hashlib
import os
import shutil
import sqlite3

import pytest

from sqlft.sqlexec import QueryError, connect_memory, connect_readonly, run_query

HOSTILE = {
    "DROP TABLE singer": "denied",
    "DELETE FROM singer": "denied",
    "UPDATE singer SET Name = 'x'": "denied",
    "INSERT INTO singer (Name) VALUES ('x')": "denied",
    "CREATE TABLE t (x)": "denied",
    "CREATE TEMP TABLE t (x)": "denied",
    "CREATE INDEX i ON singer(Name)": "denied",
    "ALTER TABLE singer ADD COLUMN y": "denied",
    "ATTACH DATABASE 'evil.db' AS evil": "denied",
    "DETACH DATABASE main": "denied",
    "PRAGMA journal_mode = WAL": "denied",
    "PRAGMA table_info(singer)": "denied",
    "VACUUM": "denied",
    "VACUUM INTO 'copy.db'": "denied",
    "ANALYZE": "denied",
    "REINDEX": "denied",
    "BEGIN": "denied",
    "SAVEPOINT s": "denied",
    "SELECT load_extension('libevil')": "denied",
    "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r": "timeout",
    "SELECT count(*) FROM " + ", ".join(f"singer s{i}" for i in range(12)): "timeout",
    "SELECT randomblob(1000000000)": "limit",
    "SELECT zeroblob(1000000000)": "limit",
    "SELECT replace(hex(zeroblob(5000000)), '0', 'aa')": "limit",
    "SELECT '" + "a" * 2_000_000 + "'": "limit",
    "SELECT 1; DROP TABLE singer": "syntax",
    "SELEC 1": "syntax",
    "SELECT 1\x00": "syntax",
    "SELECT '\ud800'": "syntax",
    "SELECT nope FROM singer": "schema",
    "SELECT * FROM nope": "schema",
}


def _snapshot(folder):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


@pytest.fixture
def db_copy(spider_dir, tmp_path):
    folder = tmp_path / "concert_singer"
    folder.mkdir()
    shutil.copy(spider_dir / "database" / "concert_singer" / "concert_singer.sqlite", folder)
    return folder / "concert_singer.sqlite"


def test_hostile_corpus_is_refused_and_nothing_changes(db_copy, monkeypatch):
    monkeypatch.chdir(db_copy.parent)  # relative file names would land here
    before = _snapshot(db_copy.parent)
    conn = connect_readonly(db_copy)
    for sql, kind in HOSTILE.items():
        with pytest.raises(QueryError) as caught:  # "timeout" proves SQLite itself was interrupted
            run_query(conn, sql, timeout_s=0.5)
        assert caught.value.kind == kind, (sql[:60], caught.value.kind, str(caught.value))
    assert run_query(conn, "SELECT count(*) FROM singer") == [(6,)]
    conn.close()
    assert _snapshot(db_copy.parent) == before


def test_truncate_reads_only_what_is_needed(db_copy):
    conn = connect_readonly(db_copy)
    sql = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT x FROM r"
    assert run_query(conn, sql, timeout_s=5, max_rows=3, truncate=True) == [(1,), (2,), (3,)]
    with pytest.raises(QueryError) as caught:
        run_query(conn, "SELECT * FROM singer", max_rows=2)
    assert caught.value.kind == "limit"
    assert len(run_query(conn, "SELECT * FROM singer", max_rows=6)) == 6


def test_empty_statements_return_no_rows(db_copy):
    conn = connect_readonly(db_copy)
    assert run_query(conn, "") == []
    assert run_query(conn, "  -- only a comment") == []


def test_missing_file_raises(tmp_path):
    with pytest.raises(FileNotFoundError):
        connect_readonly(tmp_path / "none.sqlite")
    assert not (tmp_path / "none.sqlite").exists()


def test_text_that_is_not_utf8_is_decoded_leniently(tmp_path):
    path = tmp_path / "bytes.sqlite"
    raw = sqlite3.connect(path)
    raw.execute("CREATE TABLE t (x TEXT)")
    raw.execute("INSERT INTO t VALUES (CAST(X'41FF42' AS TEXT))")
    raw.commit()
    raw.close()
    assert run_query(connect_readonly(path), "SELECT x FROM t") == [("AB",)]


def test_memory_database_builds_tables_but_cannot_attach_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    conn = connect_memory("CREATE TABLE t (x INT); INSERT INTO t VALUES (1), (2);")
    assert run_query(conn, "SELECT sum(x) FROM t") == [(3,)]
    with pytest.raises(QueryError) as caught:
        run_query(conn, "DELETE FROM t")
    assert caught.value.kind == "denied"
    with pytest.raises(sqlite3.DatabaseError):
        connect_memory("ATTACH DATABASE 'side.db' AS side; CREATE TABLE side.t (x);")
    assert os.listdir(tmp_path) == []


def test_memory_database_build_is_time_limited():
    runaway = (
        "CREATE TABLE t (x); "
        "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) INSERT INTO t SELECT x FROM r;"
    )
    with pytest.raises(sqlite3.OperationalError, match="interrupted"):
        connect_memory(runaway, timeout_s=0.2)
