"""`sqlft ask`'s outcome and exit status, schema-constrained decoding by default, and loading a model
for asking as training loaded it (issues 27 and 23)."""

import io
import json
import sqlite3
from pathlib import Path

import pytest

from sqlft import answer as ask_module
from sqlft.cli import main
from sqlft.config import ModelSection
from sqlft.generate import Generation

TINY = "tiny-llama-warm"


@pytest.fixture()
def concert_db(spider_dir) -> Path:
    return spider_dir / "database" / "concert_singer" / "concert_singer.sqlite"


def _answers(sqls: list[str], calls: list[dict] | None = None):
    """A generate_sql that answers the i-th prompt with sqls[i], recording its keyword arguments."""
    answers = iter(sqls)

    def generate(model, tokenizer, prompts, **kwargs):
        if calls is not None:
            calls.append(kwargs)
        sql = next(answers)
        return [Generation(sql, sql, 5, 0.0)]

    return generate


def _ask(args: list[str], capsys) -> tuple[int, str, str]:
    status = main(["ask", "--model", TINY, *args])
    out, err = capsys.readouterr()
    return status, out, err


@pytest.mark.parametrize(
    ("sql", "status", "outcome"),
    [
        ("SELECT count(*) FROM singer", 0, "rows"),
        ("SELECT Name FROM singer WHERE Age > 1000", 0, "rows"),  # no rows is still an answer
        ("", 3, "no_sql"),
        ("SELECT nosuch FROM singer", 4, "sql_error"),
        ("DELETE FROM singer", 4, "sql_error"),
    ],
)
def test_exit_status_and_json_outcome_follow_the_answer(
    concert_db, monkeypatch, capsys, sql, status, outcome
) -> None:
    monkeypatch.setattr("sqlft.generate.generate_sql", _answers([sql]))
    got, out, _ = _ask(["--db", str(concert_db), "--json", "Q?"], capsys)
    record = json.loads(out)
    assert (got, record["outcome"]) == (status, outcome)
    assert (record["hint"] is None) == (status == 0)
    if outcome == "sql_error":
        assert record["error"]


def test_a_failed_query_shows_sqlites_message_and_one_line_of_what_to_try(
    concert_db, monkeypatch, capsys
) -> None:
    monkeypatch.setattr("sqlft.generate.generate_sql", _answers(["SELECT nosuch FROM singer"]))
    status, out, _ = _ask(["--db", str(concert_db), "Q?"], capsys)
    assert status == 4
    assert "error: schema: no such column: nosuch" in out
    [hint] = [line for line in out.splitlines() if line.startswith("hint:")]
    assert "schema-constrained greedy" in hint and "-n 8" in hint and "sample values" in hint


def _not_sqlite(folder: Path) -> Path:
    (folder / "notes.sqlite").write_text("not a database")
    return folder / "notes.sqlite"


def _empty(folder: Path) -> Path:  # SQLite reads an empty file as a database without tables
    (folder / "empty.sqlite").write_bytes(b"")
    return folder / "empty.sqlite"


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda folder: folder / "missing.sqlite", "no such SQLite file"),
        (_not_sqlite, "not readable as SQLite"),
        (_empty, "no tables"),
        (lambda folder: folder, "no such SQLite file"),  # a folder
    ],
)
def test_bad_input_is_status_2_before_any_model_loads(tmp_path, capsys, make, message) -> None:
    db = make(tmp_path)
    status = main(["ask", "--model", "no-such-model", "--db", str(db), "--json", "Q?"])
    out, err = capsys.readouterr()
    assert status == 2 and message in err
    assert json.loads(out)["outcome"] == "bad_input"


def test_an_unreadable_file_is_bad_input(tmp_path, monkeypatch, capsys) -> None:
    """Permissions do not stop root, so the open itself fails here as it does for an unreadable file."""
    db = tmp_path / "locked.sqlite"
    sqlite3.connect(db).execute("CREATE TABLE t (a int)").connection.close()

    def refuse(*args, **kwargs):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr("sqlft.schema.sqlite3.connect", refuse)
    assert main(["ask", "--model", "no-such-model", "--db", str(db), "Q?"]) == 2
    assert "locked.sqlite: not readable as SQLite" in capsys.readouterr().err


def test_stdin_status_is_that_of_the_first_question_that_failed(concert_db, monkeypatch, capsys) -> None:
    sqls = ["SELECT count(*) FROM singer", "", "SELECT nosuch FROM singer", "SELECT 1"]
    monkeypatch.setattr("sqlft.generate.generate_sql", _answers(sqls))
    monkeypatch.setattr("sys.stdin", io.StringIO("a?\nb?\nc?\nd?\n"))
    status, out, _ = _ask(["--db", str(concert_db), "--json"], capsys)
    outcomes = [json.loads(line)["outcome"] for line in out.splitlines()]
    assert outcomes == ["rows", "no_sql", "sql_error", "rows"] and status == 3


def test_stdin_status_is_0_when_every_query_ran(concert_db, monkeypatch, capsys) -> None:
    monkeypatch.setattr("sqlft.generate.generate_sql", _answers(["SELECT 1", "SELECT 2"]))
    monkeypatch.setattr("sys.stdin", io.StringIO("a?\nb?\n"))
    assert _ask(["--db", str(concert_db), "--sql-only"], capsys)[0] == 0


def test_decoding_is_schema_constrained_by_default_and_with_samples(concert_db, monkeypatch, capsys) -> None:
    calls: list[dict] = []
    monkeypatch.setattr("sqlft.generate.generate_sql", _answers(["SELECT 1"] * 3, calls))
    _ask(["--db", str(concert_db), "Q?"], capsys)
    _ask(["--db", str(concert_db), "--no-schema-constrained", "Q?"], capsys)
    [constrained, plain] = calls[:2]
    assert [t.name for t in constrained["schemas"][0].tables] == [
        "stadium",
        "singer",
        "concert",
        "singer_in_concert",
    ]
    assert plain["schemas"] is None


def test_constrained_sampling_with_n_votes_over_constrained_candidates(concert_db) -> None:
    """-n with the constraint on: every sampled candidate names only what the file has."""
    from sqlft.model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(TINY, quantization="none", placement="cpu")
    answer = ask_module.ask("How many?", concert_db, model, tokenizer, num_samples=3, max_new_tokens=24)
    assert len(answer.candidates) == 3
    assert "no such" not in (answer.error or "")
    conn = sqlite3.connect(f"{concert_db.resolve().as_uri()}?mode=ro", uri=True)
    for sql in answer.candidates:
        if sql:
            try:
                conn.execute("EXPLAIN " + sql)
            except sqlite3.Error as error:
                assert "no such" not in str(error), sql


def test_load_for_ask_loads_as_training_did(tmp_path, concert_db) -> None:
    """Issue 23: the ask cell loaded a 4-bit preset's model unquantised (fp16 on GPU 0 on Kaggle)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from sqlft.model import resolve_source

    adapter = tmp_path / "run" / "phase2" / "adapter"
    torch.manual_seed(0)
    base = AutoModelForCausalLM.from_pretrained(resolve_source(TINY)[0])
    get_peft_model(base, LoraConfig(r=2, target_modules=["q_proj"])).save_pretrained(adapter)
    preset = f"model:\n  name: {TINY}\n  quantization: nf4\n  placement: cpu\n"
    (tmp_path / "run" / "preset.yaml").write_text(preset)
    model, _, _ = ask_module.load_for_ask(TINY, adapter)
    assert model.get_base_model().sqlft_load_info.quantization == "nf4"
    model, _, _ = ask_module.load_for_ask(TINY, adapter, quantization="none")
    assert model.sqlft_load_info.quantization is None  # merged: the base itself


def _fake_gpu(monkeypatch, free_gib: float, count: int = 1) -> None:
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: count)
    monkeypatch.setattr(torch.cuda, "mem_get_info", lambda i=0: (int(free_gib * 1024**3), 16 * 1024**3))


def test_asking_nemo_12b_is_skipped_on_a_t4_with_the_reason(monkeypatch) -> None:
    from sqlft.config import load_preset

    _fake_gpu(monkeypatch, free_gib=14.5, count=1)
    nemo = load_preset("kaggle-t4x2-mistral-nemo-12b").model
    assert ask_module.ask_skip_reason(ModelSection(name=nemo.name, quantization="none")) is not None
    reason = ask_module.ask_skip_reason(ModelSection(name=nemo.name, quantization="nf4", placement="single"))
    assert reason is None  # 4-bit, as it trained: about 7 GiB
    _fake_gpu(monkeypatch, free_gib=4.0, count=1)
    reason = ask_module.ask_skip_reason(ModelSection(name=nemo.name, quantization="nf4", placement="single"))
    assert "GiB" in reason and "4.0 GiB free" in reason


def test_cpu_placement_is_not_checked() -> None:
    assert ask_module.ask_skip_reason(ModelSection(name=TINY, placement="cpu")) is None


def test_notebook_ask_reports_a_skip_instead_of_failing(monkeypatch, concert_db) -> None:
    """04's ask cell runs after mark_done: it must print why it did not answer, never raise."""
    from sqlft.config import load_preset

    config = load_preset("kaggle-t4x2-mistral-nemo-12b")
    _fake_gpu(monkeypatch, free_gib=2.0)

    def never(*args, **kwargs):
        raise AssertionError("a model that cannot fit must not be loaded")

    monkeypatch.setattr(ask_module, "load_for_ask", never)
    assert ask_module.notebook_ask(config, "adapter", concert_db, "Q?").startswith("skipped: ")
    _fake_gpu(monkeypatch, free_gib=40.0)

    def out_of_memory(*args, **kwargs):
        raise RuntimeError("CUDA out of memory")

    monkeypatch.setattr(ask_module, "load_for_ask", out_of_memory)
    assert "CUDA out of memory" in ask_module.notebook_ask(config, "adapter", concert_db, "Q?")
