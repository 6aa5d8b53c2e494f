"""The SQL sample callback: rows per evaluation in a CSV, exec/match columns, train mode and
gradients unchanged afterwards (also under nf4 on CPU), a W&B table when a run is active."""

import csv

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback

from sqlft.callbacks import COLUMNS, SQLSampleCallback, format_table
from sqlft.lora import add_lora
from sqlft.model import load_model_and_tokenizer
from sqlft.testing import CORPUS, DB_ID, SCHEMA_DDL, chat_prompt, make_sqlite_db, tiny_model_path
from sqlft.train import PhaseConfig, train


def sample_records(tokenizer, n=4, **where):
    return [{"question": q, "sql": s, "prompt": chat_prompt(tokenizer, q), **where} for q, s in CORPUS[:n]]


@pytest.fixture
def db_dir(tmp_path):
    make_sqlite_db(tmp_path / "db" / DB_ID / f"{DB_ID}.sqlite")
    return tmp_path / "db"


def test_rows_at_every_evaluation_go_to_the_csv(tmp_path, db_dir):
    path = tiny_model_path("llama", warm_up=True)
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    peft_model = add_lora(model, "attention")
    callback = SQLSampleCallback(tok, sample_records(tok, db_id=DB_ID), db_dir=db_dir, max_new_tokens=48)
    train_records = [
        {"prompt": chat_prompt(tok, q), "completion": s + tok.eos_token} for q, s in CORPUS[8:16]
    ]
    config = PhaseConfig(
        output_dir=str(tmp_path / "run"),
        max_steps=4,
        batch_size=4,
        grad_accum=1,
        eval_steps=2,
        learning_rate=1e-4,
    )
    modes = []

    class Spy(TrainerCallback):
        def on_evaluate(self, args, state, control, model=None, **kwargs):
            modes.append(model.training)

    train(peft_model, tok, train_records, train_records[:2], config, callbacks=[callback, Spy()])

    with open(tmp_path / "run" / "sql_samples.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == COLUMNS
    assert [int(r["step"]) for r in rows] == [2] * 4 + [4] * 4
    assert [r["question"] for r in rows[:4]] == [q for q, _ in CORPUS[:4]]
    # the warmed-up tiny model answers questions it was warmed up on: most run, some match exactly
    assert sum(r["executes"] == "True" for r in rows) >= 4
    assert any(r["matches"] == "True" for r in rows)
    for row in rows:  # a match implies it executes, and a generated gold query always matches
        assert row["matches"] == "False" or row["executes"] == "True"
        assert row["generated"] != row["gold"] or row["matches"] == "True"
    assert modes == [True, True]  # back in train mode after each sampling


def test_context_records_run_on_their_inline_schema(tmp_path):
    path = tiny_model_path("qwen2", warm_up=True)
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    callback = SQLSampleCallback(tok, sample_records(tok, n=2, context=SCHEMA_DDL), max_new_tokens=48)
    rows = callback.sample(model, step=7)
    assert [r["step"] for r in rows] == [7, 7]
    assert all(isinstance(r["executes"], bool) and isinstance(r["matches"], bool) for r in rows)
    assert "question" in format_table(rows) and len(format_table(rows).splitlines()) == 3


def lora_grads(model, batch):
    model.zero_grad(set_to_none=True)
    model(**batch).loss.backward()
    return {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_gradients_after_sampling_equal_those_before_under_nf4(arch, db_dir):
    model, tok = load_model_and_tokenizer(str(tiny_model_path(arch, warm_up=True)), quantization="nf4")
    model = add_lora(model, "attention")  # no dropout: gradients are deterministic
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)  # B == 0 would leave the A gradients zero
    q, s = CORPUS[20]
    ids = tok(chat_prompt(tok, q) + s + tok.eos_token, add_special_tokens=False, return_tensors="pt")
    batch = {**ids, "labels": ids["input_ids"].clone()}
    model.train()
    before = lora_grads(model, batch)

    SQLSampleCallback(tok, sample_records(tok, db_id=DB_ID), db_dir=db_dir, max_new_tokens=16).sample(
        model, 0
    )
    assert model.training
    after = lora_grads(model, batch)
    assert before.keys() == after.keys()
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=1e-5, atol=1e-7, msg=name)


def test_wandb_table_is_logged_when_a_run_is_active(tmp_path, monkeypatch, db_dir):
    import wandb

    logged = []
    monkeypatch.setattr(wandb, "run", object())
    monkeypatch.setattr(wandb, "log", lambda data, **kw: logged.append(data))
    path = tiny_model_path("llama", warm_up=True)
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    callback = SQLSampleCallback(
        tok,
        sample_records(tok, n=2, db_id=DB_ID),
        db_dir=db_dir,
        max_new_tokens=16,
        csv_path=tmp_path / "s.csv",
    )

    class State:
        global_step = 3
        is_world_process_zero = True

    for _ in range(2):
        callback.on_evaluate(None, State(), None, model=model)
    assert [d["train/global_step"] for d in logged] == [3, 3]
    assert isinstance(logged[-1]["sql_samples"], wandb.Table)
    assert len(logged[-1]["sql_samples"].data) == 4  # the table carries all samples so far
    assert len((tmp_path / "s.csv").read_text().splitlines()) == 1 + 4
