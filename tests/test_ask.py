import hashlib
import io
import json
import sqlite3
from pathlib import Path

import pytest

from sqlft import answer as ask_module
from sqlft.cli import main
from sqlft.config import PromptSection
from sqlft.data.prepare import prepare_records
from sqlft.generate import Candidate, Generation
from sqlft.model import load_tokenizer


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _rows(db: Path, sql: str) -> list[list]:
    conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
    try:
        return [list(r) for r in conn.execute(sql).fetchall()]
    finally:
        conn.close()


@pytest.fixture()
def concert_db(spider_dir) -> Path:
    return spider_dir / "database" / "concert_singer" / "concert_singer.sqlite"


def test_cli_answers_on_spider_db_and_leaves_it_byte_identical(concert_db, capsys) -> None:
    before = _sha(concert_db), concert_db.stat().st_mtime_ns
    args = ["ask", "--model", "tiny-llama-warm", "--db", str(concert_db), "--json", "--max-new-tokens", "40"]
    status = main(args + ["How many singers are there?"])
    answer = json.loads(capsys.readouterr().out)
    assert status == ask_module.EXIT_STATUS[answer["outcome"]]  # the tiny model's SQL may fail
    assert answer["question"] == "How many singers are there?"
    assert answer["sql"].upper().startswith("SELECT")
    if answer["error"] is None:  # what ran is what sqlite3 itself returns
        assert answer["rows"] == _rows(concert_db, answer["sql"])[:10]
    assert (_sha(concert_db), concert_db.stat().st_mtime_ns) == before


def test_interactive_mode_answers_each_stdin_line(concert_db, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("How many singers are there?\n\nList all concerts.\n"))
    args = [
        "ask",
        "--model",
        "tiny-llama-warm",
        "--db",
        str(concert_db),
        "--sql-only",
        "--max-new-tokens",
        "30",
    ]
    assert main(args) in (0, 3, 4)  # which one: tests/test_ask_status.py
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and all(line.upper().startswith("SELECT") for line in lines)


def _fake_generation(sqls: list[str]):
    candidates = [Candidate(sql, sql, 5, -0.1 * i) for i, sql in enumerate(sqls)]

    def generate(model, tokenizer, prompts, **kwargs):
        assert kwargs["num_return_sequences"] == len(sqls) and kwargs["do_sample"] == (len(sqls) > 1)
        return [Generation(sqls[0], sqls[0], 5, 0.0, candidates if len(sqls) > 1 else [])]

    return generate


def test_execution_guided_choice_runs_read_only(concert_db, monkeypatch) -> None:
    tokenizer = load_tokenizer("tiny-llama")
    before = _sha(concert_db)
    name_sql = "SELECT Name FROM singer ORDER BY Name"
    sqls = ["DROP TABLE singer", name_sql, "SELECT nothing FROM nowhere", name_sql]
    monkeypatch.setattr("sqlft.generate.generate_sql", _fake_generation(sqls))
    answer = ask_module.ask("Names?", concert_db, None, tokenizer, num_samples=4, max_rows=2)
    assert answer.sql == name_sql and answer.candidates == sqls
    assert answer.columns == ["Name"]
    assert [list(r) for r in answer.rows] == _rows(concert_db, name_sql)[:2]
    assert answer.more_rows
    table = answer.table()
    assert "| Name |" in table and "(first 2 rows shown)" in table
    assert _sha(concert_db) == before


def test_write_or_bad_sql_is_an_error_not_a_change(concert_db, monkeypatch) -> None:
    tokenizer = load_tokenizer("tiny-llama")
    before = _sha(concert_db)
    monkeypatch.setattr("sqlft.generate.generate_sql", _fake_generation(["DELETE FROM singer"]))
    answer = ask_module.ask("Remove them", concert_db, None, tokenizer)
    assert answer.error.startswith("denied") and answer.rows == []
    assert "error: denied" in answer.table()
    assert _sha(concert_db) == before


def test_prompt_is_the_training_prompt(spider_dir, concert_db) -> None:
    tokenizer = load_tokenizer("tiny-llama")
    settings = PromptSection(template="plain", schema="compact", sample_values=2, system="Answer in SQL.")
    prepared = prepare_records(
        "spider",
        spider_dir,
        "dev",
        schema_style="compact",
        sample_values=2,
        tokenizer=tokenizer,
        template="plain",
        system="Answer in SQL.",
        limit=4,
    )
    record = next(r for r in prepared.records if r["db_id"] == "concert_singer")
    assert ask_module.build_prompt(record["question"], concert_db, tokenizer, settings) == record["prompt"]


def test_prompt_settings_come_from_the_adapters_run_folder(tmp_path) -> None:
    (tmp_path / "run" / "phase2" / "adapter").mkdir(parents=True)
    (tmp_path / "run" / "preset.yaml").write_text("prompt:\n  schema: compact\n  sample_values: 3\n")
    settings = ask_module.prompt_settings(adapter=tmp_path / "run" / "phase2" / "adapter")
    assert (settings.schema, settings.sample_values) == ("compact", 3)
    assert ask_module.prompt_settings(preset="smoke").template == "plain"
    assert ask_module.prompt_settings() == PromptSection()


def test_cli_refuses_a_file_that_is_not_sqlite(tmp_path, capsys) -> None:
    bad = tmp_path / "notes.sqlite"
    bad.write_text("not a database")
    assert main(["ask", "--model", "no-such-model", "--db", str(bad), "q"]) == 2
    assert "notes.sqlite: not readable as SQLite" in capsys.readouterr().err


def test_adapter_from_a_run_folder_brings_its_model_and_prompt(concert_db, tmp_path, capsys) -> None:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sqlft.model import resolve_source

    adapter = tmp_path / "run" / "phase2" / "adapter"
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_source("tiny-llama-warm")[0])
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
    preset = "model:\n  name: tiny-llama-warm\nprompt:\n  template: plain\n  schema: compact\n"
    (tmp_path / "run" / "preset.yaml").write_text(preset)
    args = ["ask", "--adapter", str(adapter), "--db", str(concert_db), "--json", "--max-new-tokens", "20"]
    status = main(args + ["How many singers are there?"])
    answer = json.loads(capsys.readouterr().out)
    assert answer["sql"] and status == ask_module.EXIT_STATUS[answer["outcome"]]
