"""The demo data: deterministic, executable, varied, honestly split, in the layouts its loaders read."""

import json
import os
import sqlite3
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sqlft.data import load_examples
from sqlft.data.demo import VERSION, build_demo, demo_dir, is_built, load_demo, read_manifest
from sqlft.data.demo_dbs import demo_databases, memory_connection
from sqlft.data.demo_questions import (
    COMPLEXITY,
    MINI_TEMPLATES,
    TEMPLATES,
    fillings,
    informative,
    pool_of,
    split_pool,
)
from sqlft.data.records import DataError
from sqlft.sqlexec import connect_readonly, run_query

GRETEL_FIELDS = {
    "id",
    "domain",
    "domain_description",
    "sql_complexity",
    "sql_complexity_description",
    "sql_task_type",
    "sql_task_type_description",
    "sql_prompt",
    "sql_context",
    "sql",
    "sql_explanation",
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> Path:
    return build_demo(tmp_path_factory.mktemp("demo") / "built")


def _json(path: Path):
    return json.loads(path.read_text())


def _phase1(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "phase1.jsonl").read_text().splitlines()]


def _dump(path: Path) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return list(conn.iterdump())
    finally:
        conn.close()


def test_two_builds_are_identical(demo, tmp_path):
    other = build_demo(tmp_path / "again")
    names = sorted(p.relative_to(demo).as_posix() for p in demo.rglob("*") if p.is_file())
    assert names == sorted(p.relative_to(other).as_posix() for p in other.rglob("*") if p.is_file())
    for name in names:
        if name.endswith(".sqlite"):
            assert _dump(demo / name) == _dump(other / name), name
        else:
            assert (demo / name).read_bytes() == (other / name).read_bytes(), name


def test_a_build_in_another_process_with_another_hash_seed_is_identical(demo, tmp_path):
    code = f"from sqlft.data.demo import build_demo; build_demo({str(tmp_path / 'other')!r})"
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    subprocess.run([sys.executable, "-c", code], check=True, env=env, timeout=120)
    assert read_manifest(tmp_path / "other")["files"] == read_manifest(demo)["files"]


def test_layout_is_spiders_release_plus_phase1(demo):
    manifest = read_manifest(demo)
    assert manifest["version"] == VERSION
    assert _json(demo / "train_others.json") == []
    train, dev = _json(demo / "train_spider.json"), _json(demo / "dev.json")
    assert manifest["counts"] == {"phase1": len(_phase1(demo)), "train": len(train), "dev": len(dev)}
    assert 400 <= len(train) <= 600 and 100 <= len(dev) <= 150 and len(_phase1(demo)) >= 250
    for record in train + dev:
        assert {"db_id", "question", "query"} <= set(record)
        assert (demo / "database" / record["db_id"] / f"{record['db_id']}.sqlite").is_file()
    gold = (demo / "dev_gold.sql").read_text().splitlines()
    assert gold == [f"{r['query']}\t{r['db_id']}" for r in dev]


def test_every_gold_executes_with_an_informative_result(demo):
    conns = {p.stem: connect_readonly(p) for p in (demo / "database").glob("*/*.sqlite")}
    records = _json(demo / "train_spider.json") + _json(demo / "dev.json")
    empty = [r["query"] for r in records if not informative(run_query(conns[r["db_id"]], r["query"]))]
    print(f"demo spider splits: {len(records)} golds, {len(empty)} with an empty or all-NULL/0 result")
    assert len(empty) / len(records) <= 0.05, empty[:5]


def test_phase1_rows_have_gretels_shape_and_their_gold_runs_on_their_context(demo):
    rows = _phase1(demo)
    assert [r["id"] for r in rows] == list(range(1, len(rows) + 1))
    for row in rows:
        assert set(row) == GRETEL_FIELDS
        assert all(isinstance(row[k], str) and row[k] for k in GRETEL_FIELDS - {"id"})
        assert row["sql_complexity_description"] == COMPLEXITY[row["sql_complexity"]]
        assert row["sql_context"].startswith("CREATE TABLE") and "INSERT INTO" in row["sql_context"]
        conn = sqlite3.connect(":memory:")
        conn.executescript(row["sql_context"])
        assert informative(conn.execute(row["sql"]).fetchall()), row["sql"]
        conn.close()
    assert len({r["domain"] for r in rows}) >= 4
    assert set(Counter(r["sql_complexity"] for r in rows)) == set(COMPLEXITY)
    shop_tables = {t.name for db in demo_databases() for t in db.tables}
    assert not any(f"CREATE TABLE {name} (" in r["sql_context"] for r in rows for name in shop_tables)


def _features(sql: str) -> set[str]:
    tree = sqlglot.parse_one(sql, read="sqlite")
    found = set()
    joins = len(list(tree.find_all(exp.Join)))
    found |= {"join"} if joins else set()
    found |= {"join3"} if joins >= 2 else set()
    for name, kind in [
        ("group by", exp.Group),
        ("having", exp.Having),
        ("order by", exp.Order),
        ("limit", exp.Limit),
        ("distinct", exp.Distinct),
        ("like", exp.Like),
        ("aggregate", exp.AggFunc),
        ("comparison", (exp.GT, exp.GTE, exp.LT, exp.LTE)),
    ]:
        if tree.find(kind):
            found.add(name)
    for node in tree.find_all(exp.In):
        found.add("in subquery" if node.args.get("query") else "in list")
        if isinstance(node.parent, exp.Not):
            found.add("not in")
    if any(
        isinstance(s.parent, (exp.GT, exp.LT, exp.GTE, exp.LTE, exp.EQ)) for s in tree.find_all(exp.Subquery)
    ):
        found.add("scalar subquery")
    if tree.find(exp.Where) and not tree.find(exp.Subquery):
        found.add("where")
    return found


def test_templates_cover_the_sql_features(demo):
    assert len(TEMPLATES) >= 30
    first = {}
    for record in _json(demo / "train_spider.json"):
        first.setdefault(record["template"], record["query"])
    assert set(first) == {t.name for t in TEMPLATES}
    counts = Counter(f for sql in first.values() for f in _features(sql))
    print("templates per feature:", dict(counts.most_common()))
    for feature in [
        "join",
        "join3",
        "group by",
        "having",
        "order by",
        "limit",
        "distinct",
        "like",
        "aggregate",
        "comparison",
        "in list",
        "in subquery",
        "not in",
        "scalar subquery",
        "where",
    ]:
        assert counts[feature] >= 2, feature
    assert counts["join"] >= 10


def test_every_template_has_paraphrases_that_name_every_slot():
    for template in TEMPLATES + tuple(MINI_TEMPLATES):
        assert len(template.questions) >= 3 and len(set(template.questions)) == len(template.questions)
    for template in TEMPLATES:
        assert len(template.questions) >= 4, template.name
        for question in template.questions:
            for slot in template.slots:
                assert "{" + slot + "}" in question, (template.name, question, slot)


def test_dev_questions_are_unseen_in_train_and_use_held_out_values(demo):
    train, dev = _json(demo / "train_spider.json"), _json(demo / "dev.json")
    assert not {r["question"] for r in dev} & {r["question"] for r in train}
    assert len({r["question"] for r in train}) == len(train)
    assert not any(r["held_out_paraphrase"] for r in train)
    held_out = sum(r["held_out_paraphrase"] for r in dev) / len(dev)
    assert 0.35 <= held_out <= 0.65
    assert {r["template"] for r in dev} == {t.name for t in TEMPLATES}
    conns = {db.db_id: memory_connection(db) for db in demo_databases()}
    for template in TEMPLATES:
        for slot in template.slots:
            seen = {f[slot] for f in fillings(template, conns[template.db_id], "train")}
            unseen = {f[slot] for f in fillings(template, conns[template.db_id], "dev")}
            assert unseen and not seen & unseen, (template.name, slot)


def test_any_prefix_of_a_split_covers_the_templates_evenly(demo):
    for name in ("train_spider.json", "dev.json"):
        records = _json(demo / name)
        assert {r["template"] for r in records[: len(TEMPLATES)]} == {t.name for t in TEMPLATES}, name
    counts = Counter(r["template"] for r in _json(demo / "train_spider.json")[: 3 * len(TEMPLATES)])
    assert set(counts.values()) == {3}
    assert len({r["db_id"] for r in records[:10]}) == 3  # shuffled within a round, not in template order


def test_split_pool_holds_out_a_quarter():
    train, dev = split_pool(["b", "a", "c", "d", "e", "f", "g", "h", "a"])
    assert dev == ["b", "f"] and train == ["a", "c", "d", "e", "g", "h"]
    assert split_pool([3, 1]) == ([1], [3])
    assert pool_of("city2") == "city" and pool_of("k") == "k"


def test_tables_json_matches_the_sqlite_schema(demo):
    entries = _json(demo / "tables.json")
    assert [e["db_id"] for e in entries] == ["shop", "school", "library"]
    for entry in entries:
        conn = sqlite3.connect(demo / "database" / entry["db_id"] / f"{entry['db_id']}.sqlite")
        tables = [
            r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY rowid")
        ]
        assert entry["table_names_original"] == tables
        assert entry["table_names"] == [t.replace("_", " ") for t in tables]
        columns = entry["column_names_original"]
        assert columns[0] == [-1, "*"] and entry["column_names"][0] == [-1, "*"]
        assert len(columns) == len(entry["column_names"]) == len(entry["column_types"])
        assert set(entry["column_types"]) <= {"text", "number", "time", "boolean", "others"}
        expected_columns, expected_pks, expected_fks = [[-1, "*"]], [], []
        for t, table in enumerate(tables):
            for _, name, _, _, _, pk in conn.execute(f"PRAGMA table_info({table})"):
                expected_columns.append([t, name])
                if pk:
                    expected_pks.append(len(expected_columns) - 1)
        assert columns == expected_columns
        assert entry["primary_keys"] == expected_pks
        for t, table in enumerate(tables):
            for row in conn.execute(f"PRAGMA foreign_key_list({table})"):
                child = columns.index([t, row[3]])
                parent = columns.index([tables.index(row[2]), row[4]])
                expected_fks.append([child, parent])
        assert sorted(entry["foreign_keys"]) == sorted(expected_fks) and expected_fks
        assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
        conn.close()


def test_build_is_reused_repaired_and_never_overwrites_foreign_folders(demo, tmp_path):
    stamp = (demo / "dev.json").stat().st_mtime_ns
    assert build_demo(demo) == demo and (demo / "dev.json").stat().st_mtime_ns == stamp

    broken = build_demo(tmp_path / "broken")
    (broken / "dev.json").write_text("[]")
    assert not is_built(broken)
    build_demo(broken)
    assert is_built(broken) and (broken / "dev.json").read_bytes() == (demo / "dev.json").read_bytes()

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    with pytest.raises(DataError, match="not a demo data folder"):
        build_demo(foreign)
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_demo_dir_follows_the_cache_variables(monkeypatch, tmp_path):
    monkeypatch.delenv("SQLFT_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert demo_dir() == tmp_path / "xdg" / "sqlft" / "demo" / VERSION
    monkeypatch.setenv("SQLFT_CACHE", str(tmp_path / "own"))
    built = demo_dir()
    assert built == tmp_path / "own" / "demo" / VERSION and is_built(built)


def test_unknown_split_is_refused(demo):
    with pytest.raises(DataError, match="unknown split"):
        load_demo(demo, "test")


@pytest.mark.parametrize("split", ["phase1", "train", "dev"])
def test_load_examples_reads_every_split(demo, split):
    pytest.importorskip("sqlft.data.spider")
    pytest.importorskip("sqlft.data.gretel")
    examples, report = load_examples("demo", demo, split)
    expected = read_manifest(demo)["counts"][split]
    assert len(examples) == report.kept == expected, report.summary()
    assert all(e.question and e.sql for e in examples)
    if split == "phase1":
        assert all(e.context for e in examples)
    else:
        assert {e.db_id for e in examples} == {"shop", "school", "library"}
