import json
import sqlite3
from pathlib import Path

import datasets
import pandas as pd
import pytest

from sqlft.data import DataError, load_examples
from sqlft.data.gretel import load_gretel

FIXTURE = Path(__file__).parent / "fixtures" / "gretel_sample.jsonl"
KEPT = ["gretel-5097", "gretel-5098", "gretel-5099", "gretel-5100", "gretel-5101", "gretel-5111"]


def fixture_rows() -> list[dict]:
    return [json.loads(line) for line in FIXTURE.read_text().splitlines()]


def run(example) -> list[tuple]:
    conn = sqlite3.connect(":memory:")
    conn.executescript(example.context)
    return conn.execute(example.sql).fetchall()


def test_keeps_queries_whose_gold_runs_and_counts_every_drop():
    examples, report = load_gretel(FIXTURE)
    assert [e.db_id for e in examples] == KEPT
    assert (report.read, report.kept, report.skipped) == (15, 6, 9)
    assert dict(report.dropped) == {
        "gold fails to execute (OperationalError)": 1,
        "gold is DELETE, not kept": 1,
        "gold is INSERT, not kept": 1,
        "context does not parse": 1,
        "context fails to execute (OperationalError)": 1,
        "empty question or sql": 1,
        "duplicate": 1,
        "gold does not parse": 1,
        "gold is not one statement": 1,
    }
    assert any("line 9" in s for s in report.samples["gold fails to execute (OperationalError)"])


def test_kept_examples_rebuild_and_answer_in_sqlite():
    examples, _ = load_gretel(FIXTURE)
    by_id = {e.db_id: e for e in examples}
    assert sorted(run(by_id["gretel-5097"])) == [
        ("California", 100000),
        ("New York", 70000),
        ("Texas", 85000),
    ]
    assert run(by_id["gretel-5098"]) == [("Ship A",)]  # MySQL backticks
    assert run(by_id["gretel-5099"]) == [("Adele",), ("ABBA",)]  # Postgres ILIKE
    assert run(by_id["gretel-5100"]) == [("Desk",)]  # T-SQL TOP and N''
    assert "DATE(CURRENT_TIMESTAMP, '-1 YEAR')" in by_id["gretel-5101"].sql  # MySQL DATE_SUB(NOW(), ...)
    lamp = by_id["gretel-5100"]
    assert "N'" not in lamp.context and "TOP" not in lamp.sql
    assert lamp.source == "gretel"
    assert lamp.extra["domain"] == "retail" and lamp.extra["sql_task_type"] == "analytics and reporting"
    assert lamp.extra["original_sql"] == "SELECT TOP 1 name FROM products ORDER BY price DESC;"
    assert lamp.extra["original_context"].startswith("CREATE TABLE products (id INT IDENTITY")
    assert lamp.extra["sql_explanation"] and lamp.extra["sql_complexity"] == "basic SQL"
    assert lamp.extra["gold_rows"] == 1


def test_write_tasks_are_kept_when_asked():
    examples, report = load_gretel(FIXTURE, statements=("SELECT", "INSERT", "DELETE"))
    kinds = {e.db_id: e.extra["kind"] for e in examples}
    assert kinds["gretel-5102"] == "DELETE" and kinds["gretel-5110"] == "INSERT"
    assert report.kept == 8


def test_strict_stops_at_the_first_bad_record():
    with pytest.raises(DataError, match=r"gretel_sample\.jsonl: line 6: gold is DELETE, not kept"):
        load_gretel(FIXTURE, strict=True)


def test_limit_caps_kept_records():
    examples, report = load_gretel(FIXTURE, limit=2)
    assert [e.db_id for e in examples] == KEPT[:2]
    assert report.kept == 2


@pytest.mark.parametrize("suffix", ["parquet", "csv", "jsonl"])
def test_file_types_and_split_folders_give_the_same_records(tmp_path, suffix):
    frame = pd.DataFrame(fixture_rows())
    target = tmp_path / f"train.{suffix}"
    if suffix == "parquet":
        frame.to_parquet(target)
    elif suffix == "csv":
        frame.to_csv(target, index=False)
    else:
        target.write_text(FIXTURE.read_text())
    examples, report = load_examples("gretel", tmp_path, "train")
    assert [e.db_id for e in examples] == KEPT
    assert report.path == str(target)


def test_hub_download_names_are_found_in_a_folder(tmp_path):
    pd.DataFrame(fixture_rows()).to_parquet(tmp_path / "synthetic_text_to_sql_test.snappy.parquet")
    examples, _ = load_gretel(tmp_path, "test")
    assert len(examples) == 6


def test_loads_from_the_hub_when_no_path(monkeypatch):
    calls = []

    def fake_load_dataset(hub_id, split):
        calls.append((hub_id, split))
        return datasets.Dataset.from_list(fixture_rows())

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    examples, report = load_examples("gretel", None, "test")
    assert calls == [("gretelai/synthetic_text_to_sql", "test")]
    assert [e.db_id for e in examples] == KEPT
    assert report.path == "gretelai/synthetic_text_to_sql [test]"


def test_hub_failure_says_what_to_do(monkeypatch):
    def offline(hub_id, split):
        raise ConnectionError("hub unreachable")

    monkeypatch.setattr(datasets, "load_dataset", offline)
    with pytest.raises(DataError, match="pass path="):
        load_gretel(None)


def test_missing_column_names_file_column_and_fields(tmp_path):
    rows = [{k: v for k, v in row.items() if k != "sql_context"} for row in fixture_rows()]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in rows))
    with pytest.raises(DataError) as info:
        load_gretel(path)
    message = str(info.value)
    assert str(path) in message and "'sql_context'" in message and "sql_prompt" in message


def test_missing_file_and_folder_without_split(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_gretel(tmp_path / "absent.parquet")
    with pytest.raises(DataError, match="no file for split 'validation'"):
        load_gretel(tmp_path, "validation")


def test_kept_contexts_give_schemas_with_every_table_the_gold_uses():
    import sqlglot
    from sqlglot import exp

    from sqlft.schema import SchemaStore

    store = SchemaStore(sample_values=2)
    for example in load_gretel(FIXTURE)[0]:
        schema = store.for_example(example)
        tree = sqlglot.parse_one(example.sql, read="sqlite")
        ctes = {c.alias_or_name.lower() for c in tree.find_all(exp.CTE)}
        used = {t.name.lower() for t in tree.find_all(exp.Table)} - ctes
        assert used <= {name.lower() for name in schema.table_names}, example.db_id
        assert "e.g." in schema.render("compact")
