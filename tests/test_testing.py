"""The offline rig other tests build on: corpus, database, tiny models of every architecture."""

import json
import sqlite3

import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sqlft import testing


def test_corpus_is_unique_and_every_query_runs(tmp_path):
    assert len(testing.CORPUS) >= 200
    assert len({q for q, _ in testing.CORPUS}) == len(testing.CORPUS)
    con = sqlite3.connect(testing.make_sqlite_db(tmp_path / "c.sqlite"))
    results = [con.execute(sql).fetchall() for _, sql in testing.CORPUS]
    assert sum(bool(r) for r in results) > 0.8 * len(results)


def test_corpus_examples_carry_schema():
    ex = testing.corpus_examples()[0]
    assert (ex.question, ex.sql) == testing.CORPUS[0]
    assert ex.db_id == testing.DB_ID and "CREATE TABLE singer" in ex.context


@pytest.mark.parametrize("arch", testing.ARCHS)
def test_tiny_model_reloads_with_auto_classes(arch):
    path = testing.tiny_model_path(arch)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert tok.pad_token_id is not None and tok.pad_token_id != tok.eos_token_id
    assert tok.eos_token == "<|im_end|>" and tok.bos_token is None
    assert model.config.hidden_size % 64 == 0 and model.config.vocab_size >= len(tok)
    assert 100_000 < model.num_parameters() < 1_000_000
    assert model.generation_config.eos_token_id == tok.eos_token_id
    ids = tok(testing.chat_prompt(tok, "How many singers are there?")).input_ids
    assert ids[0] == tok.convert_tokens_to_ids("<|im_start|>")  # no BOS slipped in
    assert tok.decode(ids).endswith("<|im_start|>assistant\n")
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits
    assert logits.shape == (1, len(ids), model.config.vocab_size)


def test_build_is_cached_and_rejects_unknown_arch(tmp_path):
    first = testing.build_tiny_model("llama", tmp_path / "m")
    weights = next(first.glob("*.safetensors"))
    stamp = weights.stat().st_mtime_ns
    assert testing.build_tiny_model("llama", tmp_path / "m") == first
    assert weights.stat().st_mtime_ns == stamp
    testing.build_tiny_model("llama", tmp_path / "m", seed=1)  # different recipe: rebuilt
    assert json.loads((first / testing.MARKER).read_text())["seed"] == 1
    assert weights.stat().st_mtime_ns != stamp
    with pytest.raises(ValueError, match="qwen2"):
        testing.build_tiny_model("gpt9", tmp_path / "x")


def test_same_seed_gives_same_weights(tmp_path):
    a = AutoModelForCausalLM.from_pretrained(testing.build_tiny_model("qwen2", tmp_path / "a"))
    b = AutoModelForCausalLM.from_pretrained(testing.build_tiny_model("qwen2", tmp_path / "b"))
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), na


def test_warm_model_writes_sql():
    path = testing.tiny_model_path("llama", warm_up=True)
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path)
    enc = tok(testing.chat_prompt(tok, "How many singers are from Peru?"), return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=40, do_sample=False)
    text = tok.decode(out[0, enc.input_ids.shape[1] :], skip_special_tokens=True)
    assert "SELECT" in text and "FROM" in text
    assert out[0, -1].item() == tok.eos_token_id
