"""Phase 3 (sqlft.rl): execution and format rewards on a real Spider database, TRL's reward
signature, GRPO training on the tiny model through the recipe, resume, fp32 adapters, the off switch."""

import hashlib
import json
import time

import pytest
import torch
from test_train import StopAt

from sqlft import recipe
from sqlft.config import load_preset
from sqlft.notebook import reward_settings
from sqlft.rl import SQLReward, build_grpo_trainer, completion_text, reward_curves
from sqlft.rundir import RunDir
from sqlft.train import MARKER

GOLD = "SELECT count(*) FROM singer"
ENDLESS = "WITH RECURSIVE r(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM r) SELECT count(*) FROM r"
EOS = 2


@pytest.fixture
def reward(spider_dir):
    scorer = SQLReward(spider_dir / "database", timeout_s=0.5)
    scorer.eos_token_ids = {EOS}
    yield scorer
    scorer.close()


def rewards(scorer, completions, ids=None, **columns):
    n = len(completions)
    kwargs = {"sql": [GOLD] * n, "db_id": ["concert_singer"] * n, **columns}
    ids = ids or [[5, EOS]] * n
    execution = scorer.execution(prompts=["q"] * n, completions=completions, completion_ids=ids, **kwargs)
    return execution, scorer.format(prompts=["q"] * n, completions=completions, completion_ids=ids, **kwargs)


def test_execution_reward_on_a_spider_database(reward, spider_dir):
    database = spider_dir / "database" / "concert_singer" / "concert_singer.sqlite"
    before = hashlib.sha256(database.read_bytes()).hexdigest()
    completions = [
        "SELECT COUNT(*) FROM singer",  # the gold's result
        "SELECT count(*) FROM stadium",  # runs, another result (9, not 6)
        "SELECT nope FROM singer",  # unknown column
        "DROP TABLE singer",  # denied: read-only
        "",  # nothing
    ]
    execution, _ = rewards(reward, completions)
    assert execution == [1.0, 0.1, 0.0, 0.0, 0.0]
    assert hashlib.sha256(database.read_bytes()).hexdigest() == before
    assert reward.stats["completions"] == 5 and reward.stats["match"] == 1 and reward.stats["runs"] == 1


def test_a_runaway_query_times_out_quickly(reward):
    started = time.monotonic()
    execution, _ = rewards(reward, [ENDLESS])
    assert execution == [0.0] and time.monotonic() - started < 3


def test_only_the_first_statement_counts_and_the_format_reward_sees_the_rest(reward):
    completions = ["SELECT count(*) FROM singer; DROP TABLE singer", "SELECT count(*) FROM singer;", ""]
    execution, fmt = rewards(reward, completions)
    assert execution == [1.0, 1.0, 0.0]  # as `sqlft eval` scores it
    assert fmt == [0.5, 1.0, 0.5]  # one statement + EOS each half; empty text still ended
    _, cut = rewards(reward, ["SELECT count(*) FROM singer"], ids=[[5, 6, 7]])  # no EOS: cut off
    assert cut == [0.5]
    _, prose = rewards(reward, ["Here is the query: SELECT count(*) FROM singer"])
    assert prose == [0.5]


def test_reward_functions_take_trl_keywords_and_conversational_completions(reward):
    conversation = [[{"role": "assistant", "content": "SELECT count(*) FROM singer"}]]
    extra = {
        "trainer_state": None,
        "log_extra": lambda *a: None,
        "context": [None],
        "question": ["how many?"],
    }
    logged = {}
    execution, fmt = rewards(reward, conversation, log_metric=logged.__setitem__, **extra)
    assert execution == [1.0] and fmt == [1.0]
    assert logged["sql/match"] == 1.0 and logged["sql/seconds_per_completion"] >= 0
    assert reward.execution.__name__ == "execution" and reward.format.__name__ == "format"
    assert completion_text([]) == "" and completion_text("x") == "x"


def test_a_gold_that_cannot_run_is_left_out_not_scored_zero(reward):
    execution, _ = rewards(reward, ["SELECT 1"], sql=["SELECT nope FROM nowhere"])
    assert execution == [None]
    execution, _ = rewards(reward, ["SELECT 1"], db_id=["no_such_db"])
    assert execution == [None]


def test_reward_curves_from_a_log_history():
    log = [
        {"step": 1, "reward": 0.2, "rewards/execution/mean": 0.1, "rewards/execution/std": 0.0},
        {"step": 2, "reward": 0.4, "rewards/execution/mean": 0.3, "rewards/format/mean": 1.0},
        {"step": 2, "train_loss": 0.1},
    ]
    assert reward_curves(log) == {
        "total": [(1, 0.2), (2, 0.4)],
        "execution": [(1, 0.1), (2, 0.3)],
        "format": [(2, 1.0)],
    }


def fake_phase2(tmp_path, **overrides):
    """A smoke run whose phase 2 is a fresh adapter, so that phase 3 can start (seconds, not a phase 2)."""
    from sqlft.lora import add_lora

    config, run = recipe.setup("smoke", overrides, str(tmp_path / "run"))
    model, tokenizer = recipe.load_model(config)
    add_lora(model, config.model.lora, seed=0).save_pretrained(run.step_dir("phase2") / "adapter")
    run.mark_done("phase2")
    recipe.prepare_phase(config, "phase3", run, tokenizer)
    return config, run


def lora_tensors(folder):
    from safetensors.torch import load_file

    return load_file(str(folder / "adapter_model.safetensors"))


def test_phase3_trains_the_phase2_adapter_and_resumes(tmp_path):
    config, run = fake_phase2(tmp_path, **{"phase3.sample_questions": 0})
    _, _, cut = recipe.train_phase(config, "phase3", run, callbacks=[StopAt(1)])
    assert cut.global_step == 1 and not cut.finished and not (run.root / "phase3" / MARKER).exists()
    assert (run.root / "phase3" / "checkpoint-1" / "trainer_state.json").is_file()

    _, _, result = recipe.train_phase(config, "phase3", run)  # resumes from checkpoint-1
    assert result.finished and result.global_step == 2
    assert (run.root / "phase3" / MARKER).is_file()
    log = json.loads((run.root / "phase3" / "training_log.json").read_text())
    assert [e["step"] for e in log if "rewards/execution/mean" in e] == [1, 2]  # history kept
    assert all("rewards/format/mean" in e and "sql/seconds_per_completion" in e for e in log if "reward" in e)
    before, after = lora_tensors(run.adapter("phase2")), lora_tensors(run.adapter("phase3"))
    assert before.keys() == after.keys()
    assert any(not torch.equal(before[k], after[k]) for k in before)  # GRPO moved the adapter


def test_phase3_stops_at_its_time_budget_as_a_finished_step(tmp_path):
    # a budget far below one GRPO step's time: phase 3 ends after its first step, with its adapter
    config, run = fake_phase2(tmp_path, **{"phase3.sample_questions": 0, "phase3.max_minutes": 1e-9})
    _, _, result = recipe.train_phase(config, "phase3", run)
    assert result.finished and result.global_step == 1
    assert (run.adapter("phase3") / "adapter_config.json").is_file()
    assert (run.root / "phase3" / MARKER).is_file()


def test_phase3_adapters_are_float32_after_the_trainer_is_built(tmp_path):
    config, run = fake_phase2(tmp_path)
    from sqlft.data.prepare import Prepared
    from sqlft.lora import add_lora

    model, tokenizer = recipe.load_model(config)
    assert model.is_loaded_in_4bit  # TRL casts a quantised model's adapters to bf16
    model = add_lora(model, adapter=run.adapter("phase2"))
    records = Prepared.load(run.root / "phase3" / "train.jsonl").records
    scorer = SQLReward(Prepared.load(run.root / "phase3" / "train.jsonl").db_dir)
    trainer, _ = build_grpo_trainer(
        model, tokenizer, records, None, recipe.phase_config(config, "phase3", run), reward=scorer
    )
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert trainable and all(p.dtype == torch.float32 for p in trainable)
    # prompts are tokenised as sqlft tokenises them everywhere: the chat template already wrote them
    prompt = records[0]["prompt"]
    ids, _, _ = trainer._tokenize_prompts([prompt])
    assert ids[0] == tokenizer(prompt, add_special_tokens=False)["input_ids"]
    assert scorer.eos_token_ids == set(trainer.eos_token_ids)


def test_phase3_off_says_why_and_marks_the_step_skipped(tmp_path, capsys):
    config = load_preset("demo")
    run = RunDir(tmp_path / "run")
    assert recipe.phase3_enabled(config, run) is False
    done = json.loads((run.root / "phase3" / "DONE.json").read_text())
    assert done["skipped"] is True and "bench_rl" in done["reason"]
    assert "skipped" in capsys.readouterr().out and not run.report("phase3").exists()
    html = reward_settings(config).to_html()
    assert "group size (num_generations)" in html and "off: measured not to pay" in html
