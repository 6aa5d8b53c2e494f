"""`sqlft data` end to end: every source through the command, on real Spider dev and fixtures."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from sqlft.cli import main

FIXTURES = Path(__file__).parent / "fixtures"


def read_jsonl(path):
    return [json.loads(line) for line in Path(path).read_text().splitlines()]


def gold_tables(sql):
    return {t.name.lower() for t in sqlglot.parse_one(sql, read="sqlite").find_all(exp.Table)} - {""}


@pytest.mark.parametrize("style", ["ddl", "compact", "mschema"])
def test_spider_dev_keeps_all_1034_records_with_every_gold_table_in_the_prompt(
    spider_dir, tmp_path, style, capsys
):
    out = tmp_path / "dev.jsonl"
    assert (
        main(
            [
                "data",
                "--source",
                "spider",
                "--path",
                str(spider_dir),
                "--split",
                "dev",
                "--schema",
                style,
                "--out",
                str(out),
            ]
        )
        == 0
    )
    records = read_jsonl(out)
    assert len(records) == 1034
    assert "read 1034, kept 1034, skipped 0" in capsys.readouterr().out
    for record in records:
        assert {"db_id", "question", "sql", "prompt", "completion"} <= set(record)
        assert (
            record["question"] in record["prompt"] and record["completion"].strip() == record["sql"].strip()
        )
        prompt = record["prompt"].lower()
        cte_names = {
            c.alias_or_name.lower() for c in sqlglot.parse_one(record["sql"], read="sqlite").find_all(exp.CTE)
        }
        for table in gold_tables(record["sql"]) - cte_names:
            assert table in prompt, (record["db_id"], table, record["sql"])


def test_demo_dev_through_the_command(tmp_path, capsys):
    out = tmp_path / "demo.jsonl"
    assert (
        main(
            [
                "data",
                "--source",
                "demo",
                "--split",
                "dev",
                "--schema",
                "compact",
                "--sample-values",
                "2",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    records = read_jsonl(out)
    assert len(records) > 50 and all(r["db_id"] in {"shop", "school", "library"} for r in records)
    assert "e.g." in records[0]["prompt"]  # sample values are rendered


def test_user_csv_with_custom_columns_and_db_dir(spider_dir, tmp_path):
    csv = tmp_path / "mine.csv"
    csv.write_text(
        "q,gold_sql,database\nHow many singers are there?,SELECT count(*) FROM singer,concert_singer\n"
        ",SELECT 1,concert_singer\nHow many heads?,SELECT count(*) FROM head,no_such_db\n"
    )
    out = tmp_path / "mine.jsonl"
    assert (
        main(
            [
                "data",
                "--source",
                "csv",
                "--path",
                str(csv),
                "--question-col",
                "q",
                "--sql-col",
                "gold_sql",
                "--db-id-col",
                "database",
                "--db-dir",
                str(spider_dir / "database"),
                "--out",
                str(out),
            ]
        )
        == 0
    )
    records = read_jsonl(out)
    assert [r["question"] for r in records] == ["How many singers are there?"]
    assert "CREATE TABLE" in records[0]["prompt"] and "singer" in records[0]["prompt"]


def test_missing_column_is_a_clear_error(tmp_path, capsys):
    csv = tmp_path / "mine.csv"
    csv.write_text("question,sql\nq,SELECT 1\n")
    assert main(["data", "--source", "csv", "--path", str(csv), "--out", str(tmp_path / "o.jsonl")]) == 2
    err = capsys.readouterr().err
    assert "mine.csv" in err and "query" in err


def test_tokenizer_length_stats_and_guard(tmp_path, capsys):
    from sqlft.model import load_tokenizer
    from sqlft.testing import tiny_model_path

    tokenizer_dir = str(tiny_model_path("llama"))
    tokenizer = load_tokenizer(tokenizer_dir)
    common = ["data", "--source", "demo", "--split", "dev", "--tokenizer", tokenizer_dir]
    assert main([*common, "--out", str(tmp_path / "all.jsonl")]) == 0
    assert "prompt tokens: p50" in capsys.readouterr().out
    everything = read_jsonl(tmp_path / "all.jsonl")
    assert all(r["completion"] == r["sql"] + tokenizer.eos_token for r in everything)
    marker = tokenizer.apply_chat_template(
        [{"role": "user", "content": "X"}], tokenize=False, add_generation_prompt=True
    ).split("X")[-1]
    assert marker.strip() and all(r["prompt"].endswith(marker) for r in everything)

    def total(r):
        return sum(
            len(tokenizer(r[k], add_special_tokens=False)["input_ids"]) for k in ("prompt", "completion")
        )

    median = sorted(total(r) for r in everything)[len(everything) // 2]
    assert main([*common, "--max-length", str(median), "--out", str(tmp_path / "guarded.jsonl")]) == 0
    printed = capsys.readouterr().out
    kept = read_jsonl(tmp_path / "guarded.jsonl")
    assert 0 < len(kept) < len(everything)
    assert f"longer than max_length={median}" in printed
    assert {r["question"] for r in kept} == {r["question"] for r in everything if total(r) <= median}
    assert all(r["completion"].endswith(tokenizer.eos_token) for r in kept)  # kept whole, never truncated


def test_the_command_does_not_import_torch_for_data():
    code = (
        "import sys; from sqlft.cli import main; "
        "main(['data','--source','demo','--split','dev','--limit','3','--out','/dev/null']); "
        "print('torch' in sys.modules)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "False"


def test_value_retrieval_through_the_command(spider_dir, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("SQLFT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "dev.jsonl"
    args = ["data", "--source", "spider", "--path", str(spider_dir), "--split", "dev", "--limit", "60"]
    assert main([*args, "--schema", "mschema", "--value-retrieval", "2", "--out", str(out)]) == 0
    records = read_jsonl(out)
    assert len(records) == 60 and all(len(r["extra"]["retrieved_values"]) <= 2 for r in records)
    found = [r for r in records if r["extra"]["retrieved_values"]]
    shown = [f"'{v['value']}'" in r["prompt"] for r in found for v in r["extra"]["retrieved_values"]]
    assert found and all(shown)
    assert list((tmp_path / "cache" / "values").rglob("*.sqlite"))  # the index went to the cache
