"""Best-of decoding in the recipe: sampled candidates, the vote's pick scored apart from greedy."""

import json

import pytest
import torch

from sqlft import testing
from sqlft.config import load_preset
from sqlft.data.prepare import Prepared
from sqlft.data.records import LoadReport
from sqlft.recipe import predict_and_score
from sqlft.rundir import RunDir


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = testing.tiny_model_path("llama", warm_up=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
    return model, AutoTokenizer.from_pretrained(path)


@pytest.mark.parametrize("vote", ["execution", "executable"])
def test_best_of_with_the_constraint_is_scored_apart_from_greedy(tiny_llama, tmp_path, vote):
    model, tokenizer = tiny_llama
    db_dir = testing.make_sqlite_db(tmp_path / "db" / testing.DB_ID / f"{testing.DB_ID}.sqlite").parents[1]
    records = [
        {"question": q, "sql": s, "db_id": testing.DB_ID, "prompt": testing.chat_prompt(tokenizer, q)}
        for q, s in testing.CORPUS[:3]
    ]
    run = RunDir(tmp_path / "run")
    run.step_dir("baseline")
    overrides = {
        "eval.samples": 3,
        "eval.vote": vote,
        "eval.schema_constrained": True,
        "eval.max_new_tokens": 16,
    }
    config = load_preset("smoke", overrides)
    predict_and_score(
        config, model, tokenizer, Prepared(records, LoadReport("t", "x"), {}, db_dir), run, "baseline"
    )
    rule = {"execution": "self_consistency", "executable": "execution_guided"}[vote]
    for constrained in (False, True):
        report = json.loads(run.report("baseline", constrained=constrained).read_text())
        s = report["summary"]
        assert s["best_of"]["samples"] == 3 and s["best_of"]["vote"] == vote
        assert s["best_of"]["exec_accuracy"] == s[rule]["exec_accuracy"]
        assert s["best_of"]["greedy_exec_accuracy"] == s["exec_accuracy"]
        predictions = run.predictions("baseline", constrained=constrained).read_text().splitlines()
        assert all(len(json.loads(line)["candidates"]) == 3 for line in predictions)
        picked = [r[f"{rule}_match"] for r in report["records"]]
        assert s["best_of"]["exec_match"] == sum(picked)  # the vote's own verdicts, not greedy's


def test_one_sample_means_greedy_only(tiny_llama, tmp_path):
    model, tokenizer = tiny_llama
    db_dir = testing.make_sqlite_db(tmp_path / "db" / testing.DB_ID / f"{testing.DB_ID}.sqlite").parents[1]
    q, s = testing.CORPUS[0]
    records = [{"question": q, "sql": s, "db_id": testing.DB_ID, "prompt": testing.chat_prompt(tokenizer, q)}]
    run = RunDir(tmp_path / "run")
    run.step_dir("baseline")
    config = load_preset("smoke", {"eval.samples": 1, "eval.max_new_tokens": 16})
    report = predict_and_score(
        config, model, tokenizer, Prepared(records, LoadReport("t", "x"), {}, db_dir), run, "baseline"
    )
    assert "best_of" not in report["summary"] and "candidates" not in report["records"][0]
