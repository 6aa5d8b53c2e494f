"""Training phases on tiny models: exact loss masks, loss goes down, resume, phase-2 continuation, nf4."""

import json
from types import SimpleNamespace

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
from trl import SFTTrainer

from sqlft.budget import TimeBudget, schedule_factor
from sqlft.config import PhaseSection
from sqlft.lora import add_lora
from sqlft.model import load_model_and_tokenizer
from sqlft.testing import CORPUS, chat_prompt, tiny_model_path
from sqlft.train import MARKER, PhaseConfig, build_trainer, complete_checkpoint, tokenize_records, train


def load(arch="llama", warm_up=False):
    path = tiny_model_path(arch, warm_up=warm_up)
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)


def records(tokenizer, n=16, start=0):
    return [
        {"prompt": chat_prompt(tokenizer, q), "completion": s + tokenizer.eos_token}
        for q, s in CORPUS[start : start + n]
    ]


def config(tmp_path, **kw):
    values = dict(
        output_dir=str(tmp_path / "phase"),
        learning_rate=1e-2,
        max_steps=6,
        batch_size=4,
        grad_accum=1,
        warmup_ratio=0.0,
        scheduler="linear",
        eval_steps=0,
        save_steps=100,
        max_length=128,
    )
    return PhaseConfig(**{**values, **kw})


def lora_weight(model):
    return next(p for n, p in model.named_parameters() if "lora_B" in n).detach().clone()


@pytest.mark.parametrize(
    "preset, pad_is_eos, fused",
    [
        ("attention", False, True),
        ("attention", True, True),
        ("attention", True, False),
        ("high-rank", True, None),
    ],
)
def test_collated_batch_supervises_exactly_the_sql_and_one_eos(tmp_path, preset, pad_is_eos, fused):
    model, tok = load()
    if pad_is_eos:
        tok.pad_token = tok.eos_token
    assert (tok.pad_token_id == tok.eos_token_id) == pad_is_eos
    recs = records(tok, n=4)
    cfg = config(tmp_path, group_by_length=False, fused_loss=fused)
    trainer, _ = build_trainer(add_lora(model, preset), tok, recs, None, cfg)
    assert isinstance(trainer, SFTTrainer) == bool(fused)  # the plain Trainer is not an SFTTrainer
    batch = next(iter(trainer.get_train_dataloader()))
    by_ids = {
        tuple(tok(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]): r for r in recs
    }
    for ids, labels, mask in zip(batch["input_ids"], batch["labels"], batch["attention_mask"], strict=True):
        n = int(mask.sum())
        assert mask[:n].all() and not mask[n:].any()  # right padding, no gaps
        record = by_ids[tuple(ids[:n].tolist())]
        n_prompt = len(tok(record["prompt"], add_special_tokens=False)["input_ids"])
        sql_ids = tok(record["completion"].removesuffix(tok.eos_token), add_special_tokens=False)["input_ids"]
        assert (labels[:n_prompt] == -100).all()
        assert labels[n_prompt:n].tolist() == sql_ids + [tok.eos_token_id]
        assert (labels[n:] == -100).all()  # padding never supervised, even when pad == eos
        assert (labels == tok.eos_token_id).sum() == 1  # ChatML: the prompt's <|im_end|> is not supervised
        assert tok.bos_token_id is None or tok.bos_token_id not in ids[1:n].tolist()


def test_completion_without_eos_gets_exactly_one(tmp_path):
    _, tok = load()
    rec = records(tok, n=1)[0]
    with_eos, _ = tokenize_records([rec], tok, 512)
    without, _ = tokenize_records(
        [{**rec, "completion": rec["completion"].removesuffix(tok.eos_token)}], tok, 512
    )
    assert with_eos == without
    row = with_eos[0]
    completion = [t for t in row["labels"] if t != -100]
    assert completion.count(tok.eos_token_id) == 1 and completion[-1] == tok.eos_token_id


def test_records_over_max_length_are_dropped_and_counted():
    _, tok = load()
    recs = records(tok, n=8)
    lengths = sorted(
        len(tok(r["prompt"] + r["completion"], add_special_tokens=False)["input_ids"]) for r in recs
    )
    rows, dropped = tokenize_records(recs, tok, lengths[3])
    assert dropped == sum(n > lengths[3] for n in lengths) > 0
    assert len(rows) + dropped == len(recs)
    assert all(r["length"] <= lengths[3] for r in rows)


def test_fused_and_plain_losses_train_the_same_objective(tmp_path):
    runs = {}
    for fused in (True, False):
        model, tok = load()
        result = train(
            add_lora(model, "attention"),
            tok,
            records(tok, 8),
            None,
            config(tmp_path / str(fused), max_steps=3, fused_loss=fused),
        )
        runs[fused] = [e["loss"] for e in result.losses]
    assert runs[True] == pytest.approx(runs[False], rel=1e-4)


def test_precision_and_optimizer_are_explicit_on_cpu(tmp_path):
    model, tok = load()
    trainer, _ = build_trainer(add_lora(model, "attention"), tok, records(tok, 4), None, config(tmp_path))
    args = trainer.args
    assert (args.bf16, args.fp16, args.use_cpu, args.gradient_checkpointing) == (False, False, True, False)
    assert args.optim == "adamw_torch"
    assert args.train_sampling_strategy == "group_by_length"
    assert args.report_to == [] or args.report_to == "none" or args.report_to == ["none"]
    assert args.ddp_find_unused_parameters is False  # a PeftModel under DDP would default to True


def fake_two_gpus(monkeypatch):
    """torch as a process without a launcher sees it on a Kaggle 2xT4 (no CUDA is touched)."""
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    monkeypatch.setattr(torch.cuda, "set_device", lambda device: None)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)


def test_one_process_with_two_gpus_gives_the_trainer_one_device(tmp_path, monkeypatch):
    from sqlft.rl import RLConfig, _grpo_args
    from sqlft.train import _training_args

    model, _ = load()
    fake_two_gpus(monkeypatch)
    sft = _training_args(config(tmp_path), model, has_eval=False, on_gpu=True)
    grpo = _grpo_args(
        RLConfig.from_dict({"batch_size": 2, "num_generations": 2}, output_dir=str(tmp_path)),
        model,
        on_gpu=True,
    )
    # TRL refuses n_gpu > 1 (nn.DataParallel) in SFTTrainer and GRPOTrainer alike
    assert (sft.world_size, sft.n_gpu, str(sft.device)) == (1, 1, "cuda:0")
    assert (grpo.n_gpu, grpo.ddp_find_unused_parameters) == (1, False)


def test_auto_and_ddp_presets_train_under_accelerate_launch_on_two_gpus(monkeypatch):
    from sqlft.config import load_preset
    from sqlft.placement import choose_placement
    from sqlft.recipe import data_parallel_gpus

    fake_two_gpus(monkeypatch)
    assert data_parallel_gpus(load_preset("smoke", {"model.placement": "auto"})) == 2
    assert data_parallel_gpus(load_preset("smoke", {"model.placement": "ddp"})) == 2
    assert data_parallel_gpus(load_preset("smoke", {"model.placement": "single"})) == 0
    single = choose_placement("single")
    assert (single.mode, single.device_map) == ("single", {"": 0}) and "pins GPU 0" in single.sentence
    assert "pins GPU 0" in choose_placement("auto").sentence
    monkeypatch.setenv("WORLD_SIZE", "2")  # inside the launcher: train here, one replica per process
    assert data_parallel_gpus(load_preset("smoke", {"model.placement": "auto"})) == 0


def test_phase_config_from_preset_section(tmp_path):
    section = PhaseSection(learning_rate=2e-4, max_steps=10)
    cfg = PhaseConfig.from_dict(section, output_dir=str(tmp_path), max_length=256)
    assert (cfg.learning_rate, cfg.max_steps, cfg.max_length) == (2e-4, 10, 256)
    with pytest.raises(ValueError, match="lerning_rate"):
        PhaseConfig.from_dict({"output_dir": "x", "lerning_rate": 1e-4})


def test_a_phase_lowers_the_loss_and_saves_a_standard_adapter(tmp_path):
    model, tok = load()
    cfg = config(tmp_path, max_steps=8, eval_steps=4)
    model = add_lora(model, "all-linear")
    result = train(model, tok, records(tok, 8), records(tok, 4, start=100), cfg)
    losses = [e["loss"] for e in result.losses]
    assert result.finished and result.global_step == 8 and len(losses) == 8
    assert sum(losses[-2:]) / 2 < 0.95 * sum(losses[:2]) / 2  # cold tiny model: about 6.35 -> 5.75
    out = tmp_path / "phase"
    log = json.loads((out / "training_log.json").read_text())
    assert any("eval_loss" in e for e in log)
    assert json.loads((out / "phase_config.json").read_text())["max_steps"] == 8
    reloaded = PeftModel.from_pretrained(load()[0], result.adapter_dir)
    trained = dict(model.named_parameters())
    for name, param in reloaded.named_parameters():
        if "lora_" in name:
            assert torch.equal(param, trained[name])

    # a second run on the finished phase skips training and loads the adapter into a fresh model
    fresh = add_lora(load()[0], "all-linear")
    again = train(fresh, tok, records(tok, 8), None, cfg)
    assert again.skipped and again.global_step == 8
    assert torch.equal(lora_weight(fresh), lora_weight(model))


class StopAt(TrainerCallback):
    def __init__(self, step):
        self.step = step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step:
            control.should_training_stop = True


def test_resume_continues_from_the_checkpoint_like_an_uninterrupted_run(tmp_path):
    _, tok = load()
    data = records(tok, 16)
    whole = add_lora(load()[0], "all-linear")
    train(whole, tok, data, None, config(tmp_path / "whole", max_steps=4, save_steps=2))

    cut = add_lora(load()[0], "all-linear")
    stopped = train(
        cut, tok, data, None, config(tmp_path / "cut", max_steps=4, save_steps=2), callbacks=[StopAt(2)]
    )
    assert stopped.global_step == 2 and not stopped.finished and stopped.adapter_dir is None
    assert not (tmp_path / "cut" / "phase" / MARKER).exists()

    # a kill inside the next save left checkpoint-4 without the files the Trainer writes after the weights
    partial = tmp_path / "cut" / "phase" / "checkpoint-4"
    partial.mkdir()
    (partial / "adapter_model.safetensors").write_bytes(b"cut short")
    with pytest.raises(ValueError, match=r"other settings \(learning_rate: 0.01 -> 0.02\).*--force --steps"):
        train(
            load()[0],
            tok,
            data,
            None,
            config(tmp_path / "cut", learning_rate=2e-2, max_steps=4, save_steps=2),
            resume=True,
        )

    resumed_model = add_lora(load()[0], "all-linear")
    resumed = train(
        resumed_model, tok, data, None, config(tmp_path / "cut", max_steps=4, save_steps=2), resume=True
    )
    assert resumed.finished and resumed.global_step == 4
    assert not (partial / "adapter_model.safetensors").read_bytes() == b"cut short"  # redone whole
    assert [e["step"] for e in resumed.losses] == [1, 2, 3, 4]  # history restored, then steps 3 and 4
    expected = dict(whole.named_parameters())
    for name, param in resumed_model.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param, expected[name], rtol=1e-5, atol=1e-6)


def test_phase_two_continues_the_phase_one_adapter(tmp_path):
    model, tok = load()
    phase1 = train(
        add_lora(model, "attention"), tok, records(tok, 16), None, config(tmp_path / "p1", max_steps=4)
    )
    phase1_weight = lora_weight(model)
    assert phase1_weight.abs().sum() > 0  # B starts at zero: training moved it

    second = add_lora(load()[0], adapter=phase1.adapter_dir)
    assert torch.equal(lora_weight(second), phase1_weight)
    result = train(second, tok, records(tok, 16, start=16), None, config(tmp_path / "p2", max_steps=3))
    assert result.finished
    assert not torch.equal(lora_weight(second), phase1_weight)


def test_nf4_model_trains_on_cpu(tmp_path):
    model, tok = load_model_and_tokenizer(str(tiny_model_path("llama")), quantization="nf4")
    assert model.is_loaded_in_4bit
    peft_model = add_lora(model, "attention")
    before = lora_weight(peft_model)
    result = train(peft_model, tok, records(tok, 8), None, config(tmp_path, max_steps=6))
    losses = [e["loss"] for e in result.losses]
    assert result.finished and losses[-1] < losses[0]
    assert not torch.equal(lora_weight(peft_model), before)


def test_high_rank_preset_trains_the_lm_head_adapter(tmp_path):
    # TRL 1.16's fused LM head reads lm_head.weight directly, which would bypass a LoRA on lm_head
    model, tok = load()
    model = add_lora(model, "high-rank")
    head = {n: p.detach().clone() for n, p in model.named_parameters() if "lm_head.lora_B" in n}
    assert head and all(torch.all(p == 0) for p in head.values())
    train(model, tok, records(tok, 8), None, config(tmp_path, max_steps=2))
    params = dict(model.named_parameters())
    assert all(params[n].abs().sum() > 0 for n in head)


def test_a_spent_time_budget_ends_the_phase_with_its_adapter(tmp_path):
    model, tok = load()
    # a budget far below one step's time: the run stops after its first step, as a finished phase
    budget = config(tmp_path, max_minutes=1e-9)
    result = train(add_lora(model, "attention"), tok, records(tok, 8), None, budget)
    assert result.finished and result.global_step == 1
    assert (tmp_path / "phase" / "adapter" / "adapter_config.json").is_file()
    done = json.loads((tmp_path / "phase" / "phase_done.json").read_text())
    assert done["global_step"] == 1 and done["stopped_by_budget"] and done["planned_steps"] == 6
    assert (
        result.extent() == "step 1 of 6 planned (17% of the planned data), stopped by its max_minutes budget"
    )


def logged_rates(phase_dir):
    log = json.loads((phase_dir / "training_log.json").read_text())
    return [e["learning_rate"] for e in log if "learning_rate" in e]


def test_a_decay_over_a_time_budget_follows_the_step_cosine_when_steps_run_out_first(tmp_path):
    # 600 minutes will not pass in 6 steps: progress is the step share, as in transformers' own cosine
    rates = {}
    for minutes in (0, 600):
        model, tok = load()
        settings = config(tmp_path / str(minutes), scheduler="cosine", max_minutes=minutes, logging_steps=1)
        assert train(add_lora(model, "attention"), tok, records(tok, 24), None, settings).finished
        rates[minutes] = logged_rates(tmp_path / str(minutes) / "phase")
    assert len(rates[600]) == 6 and rates[600][-1] < rates[600][0] / 10
    assert rates[600] == pytest.approx(rates[0], rel=1e-2, abs=1e-6)
    saved = json.loads((tmp_path / "600" / "phase" / "phase_config.json").read_text())
    assert saved["scheduler"] == "cosine"


@pytest.mark.parametrize(
    ("progress", "decay", "warmup", "factor"),
    [
        (0.0, "cosine", 0.0, 1.0),
        (0.5, "cosine", 0.0, 0.5),
        (1.0, "cosine", 0.0, 0.0),
        (1.7, "linear", 0.0, 0.0),
        (0.25, "linear", 0.0, 0.75),
        (0.05, "linear", 0.1, 0.5),
        (0.55, "linear", 0.1, 0.5),
    ],
)
def test_schedule_factor(progress, decay, warmup, factor):
    assert schedule_factor(progress, decay, warmup) == pytest.approx(factor)


def test_the_time_spent_drives_the_rate_when_it_runs_out_first():
    budget = TimeBudget(10, "cosine")
    budget.attach(SimpleNamespace(state=SimpleNamespace(max_steps=1000)))
    budget.time_share = 0.5  # half the minutes spent after 10 of 1,000 steps
    assert budget._factor(10) == pytest.approx(0.5)


def test_a_resumed_time_budget_continues_the_time_already_trained(tmp_path):
    _, tok = load()
    settings = config(tmp_path, max_minutes=10, max_steps=4, save_steps=2, logging_steps=1)
    train(add_lora(load()[0], "attention"), tok, records(tok, 16), None, settings, callbacks=[StopAt(2)])
    state_file = tmp_path / "phase" / "checkpoint-2" / "trainer_state.json"
    state = json.loads(state_file.read_text())
    assert state["stateful_callbacks"]["TimeBudget"]["attributes"]["before"] > 0
    # as if 9 of the 10 minutes had been trained before the session died
    state["stateful_callbacks"]["TimeBudget"]["attributes"]["before"] = 540.0
    state_file.write_text(json.dumps(state))
    train(add_lora(load()[0], "attention"), tok, records(tok, 16), None, settings, resume=True)
    rates = {
        e["step"]: e["learning_rate"]
        for e in json.loads((tmp_path / "phase" / "training_log.json").read_text())
        if "learning_rate" in e
    }
    # linear decay at 90% of the budget, not at the 50% a restarted budget would give step 3
    assert rates[3] < 0.15 * settings.learning_rate


def test_resume_takes_the_newest_complete_checkpoint_and_removes_broken_ones(tmp_path):
    def checkpoint(step, files):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        for name, text in files.items():
            (folder / name).write_text(text)

    whole = {
        "trainer_state.json": "{}",
        "optimizer.pt": "x",
        "scheduler.pt": "x",
        "adapter_model.safetensors": "x",
    }
    checkpoint(2, whole)
    checkpoint(4, {**whole, "trainer_state.json": '{"global_st'})  # cut inside the last file
    checkpoint(6, {"adapter_model.safetensors": "x"})  # cut before the optimizer
    messages = []
    assert complete_checkpoint(tmp_path, log=messages.append) == tmp_path / "checkpoint-2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint-2"]
    assert "checkpoint-6: incomplete (no trainer_state.json, optimizer.pt, scheduler.pt)" in messages[0]
    assert "checkpoint-4: incomplete (trainer_state.json unreadable" in messages[1]
