import json
import sqlite3
from pathlib import Path

import datasets
import pytest

from sqlft.data import DataError, load_examples
from sqlft.data.create_context import load_create_context

FIXTURE = Path(__file__).parent / "fixtures" / "sql_create_context_sample.json"


def test_keeps_answers_that_run_on_the_empty_schema():
    examples, report = load_create_context(FIXTURE)
    assert [e.db_id for e in examples] == [f"sql-create-context-{i}" for i in (1, 2, 3, 4, 9)]
    assert (report.read, report.kept) == (9, 5)
    assert dict(report.dropped) == {
        "gold fails to execute (OperationalError)": 1,  # a column the context lacks
        "duplicate": 1,
        "empty question or sql": 1,
        "empty context": 1,
    }
    assert "record 5" in report.samples["gold fails to execute (OperationalError)"][0]
    join = examples[2]
    assert join.context.count("CREATE TABLE") == 2
    conn = sqlite3.connect(":memory:")
    conn.executescript(join.context)
    assert conn.execute(join.sql).fetchall() == []
    assert join.source == "sql-create-context" and join.extra["original_context"].startswith(
        "CREATE TABLE manag"
    )


def test_json_lines_copy_loads_the_same(tmp_path):
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in json.loads(FIXTURE.read_text())))
    examples, _ = load_examples("sql-create-context", tmp_path)  # a folder and the default split
    assert [e.sql for e in examples] == [e.sql for e in load_create_context(FIXTURE)[0]]


def test_loads_from_the_hub_when_no_path(monkeypatch):
    calls = []

    def fake_load_dataset(hub_id, split):
        calls.append((hub_id, split))
        return datasets.Dataset.from_list(json.loads(FIXTURE.read_text()))

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    examples, report = load_create_context(None, limit=3)
    assert calls == [("b-mc2/sql-create-context", "train")]
    assert len(examples) == 3 and report.kept == 3


def test_missing_field_and_strict_mode(tmp_path):
    path = tmp_path / "cc.json"
    path.write_text(json.dumps([{"question": "q", "sql": "SELECT 1", "context": "CREATE TABLE t (a INT)"}]))
    with pytest.raises(DataError, match=r"no column 'answer' \(columns present: question, sql, context\)"):
        load_create_context(path)
    with pytest.raises(DataError, match=r"record 5: gold fails to execute.*no such column: salary"):
        load_create_context(FIXTURE, strict=True)


def test_a_json_that_is_not_records(tmp_path):
    path = tmp_path / "cc.json"
    path.write_text('"just a string"')
    with pytest.raises(DataError, match="JSON array"):
        load_create_context(path)
