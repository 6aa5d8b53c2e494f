"""benchmarks/gpu_check.py: the CPU checks on one preset agree with sqlft plan, and they can fail."""

import importlib.util
import json
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from sqlft.config import load_preset
from sqlft.kaggle import KAGGLE_DIR, kaggle_push_requests
from sqlft.rundir import STEPS

BENCHMARKS = Path(__file__).resolve().parent.parent / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))  # gpu_check imports its siblings, as when run as a script
SPEC = importlib.util.spec_from_file_location("gpu_check", BENCHMARKS / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpu_check)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    """Local folders load; a hub id fails at once, as here, instead of after minutes of retries."""
    from transformers import AutoConfig

    local_only = AutoConfig.from_pretrained

    def from_pretrained(name, *args, **kwargs):
        if not Path(name).exists():
            raise OSError(f"hub unreachable: {name}")
        return local_only(name, *args, **kwargs)

    monkeypatch.setattr(AutoConfig, "from_pretrained", from_pretrained)


def test_simulate_phi2_architecture_kernels_time_and_two_process_training():
    result = gpu_check.simulate(["kaggle-t4x2-phi2"])
    phi = result["presets"]["kaggle-t4x2-phi2"]
    assert result["ok"], phi["problems"]
    architecture = phi["architecture"]
    assert architecture["parameters"] == pytest.approx(2.78e9, rel=0.01)  # Phi-2's published size
    assert architecture["lora_targets"] == ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]
    assert "shipped with sqlft" in architecture["config"]
    assert phi["precision"]["adapter_dtypes_after_trainer"] == ["float32"]
    assert phi["kernels"]["checked"] == [stem for _, stem in STEPS]  # one kernel per notebook
    assert 0 < phi["wall_time"]["steps"]["phase1"]["train_hours"] < 12
    ddp = phi["data_parallel"]
    assert ddp["replaced"]["model.name"] == "tiny-phi"  # the same architecture family
    rank0, rank1 = ddp["ranks"]
    assert rank0["adapter_digest"] == rank1["adapter_digest"] and rank0["world_size"] == 2
    assert rank0["trainable_dtypes"] == ["float32"] and rank0["compute_dtype"] == "float16"
    assert "bitsandbytes" in ddp["optimizer"]["ran"] and "8-bit paged" in ddp["optimizer"]["ran"]
    assert ddp["adapters_saved"] == ["phase1/adapter"]


def test_precision_chain_keeps_adapters_float32_through_trls_trainer(tmp_path):
    """TRL's SFTTrainer casts a quantised model's adapters to bf16; a T4's fp16 grad scaler needs float32."""
    from gpu_check_precision import check_precision_chain

    result = check_precision_chain("kaggle-t4x2-qwen2.5-coder-1.5b", str(tmp_path))
    assert result["trainer"] == "SFTTrainer" and result["adapter_dtypes_after_trainer"] == ["float32"]
    assert not result["problems"] and result["grad_scale"] > 0 and result["gradient_checkpointing"]


def test_grpo_precision_chain_keeps_adapters_float32_and_steps_through_the_scaler(tmp_path):
    """Phase 3 on a T4: TRL's GRPOTrainer casts the adapters to bf16 too; after sqlft casts them back,
    one fp16-autocast, loss-scaled GRPO step on generated, rewarded completions moves every lora_B."""
    from gpu_check_precision import check_grpo_precision_chain

    result = check_grpo_precision_chain("kaggle-t4x2-qwen2.5-coder-1.5b", str(tmp_path))
    assert result["trainer"] == "SQLGRPOTrainer" and result["adapter_dtypes_after_trainer"] == ["float32"]
    assert not result["problems"] and result["completions"] == 16 and result["grad_scale"] > 0
    moved, total = result["lora_b_updated"].split("/")
    assert moved == total and int(total) > 0


def test_architecture_check_flags_an_eval_batch_that_overflows_a_t4(monkeypatch):
    preset = load_preset("kaggle-t4x2-phi2")
    overflowing = replace(preset, eval=replace(preset.eval, batch_size=32))
    monkeypatch.setattr(gpu_check, "load_preset", lambda name: overflowing)
    problems = gpu_check.check_architecture("kaggle-t4x2-phi2")["problems"]
    assert problems and problems[0].startswith("generation: does not fit")


def test_wall_time_flags_a_phase_longer_than_a_session(monkeypatch):
    preset = load_preset("kaggle-t4x2-mistral-nemo-12b")
    assert not gpu_check.estimate_wall_time(preset.name)["problems"]
    longer = replace(preset, phase2=replace(preset.phase2, epochs=2))
    monkeypatch.setattr(gpu_check, "load_preset", lambda name: longer)
    problems = gpu_check.estimate_wall_time(preset.name)["problems"]
    assert len(problems) == 1 and problems[0].startswith("phase2: about") and "12 h session" in problems[0]


def test_wall_time_has_a_phase3_line_capped_by_its_budget(monkeypatch):
    preset = load_preset("kaggle-t4x2-qwen2.5-coder-1.5b")
    phase3 = gpu_check.estimate_wall_time(preset.name)["steps"]["phase3"]
    assert phase3["train_hours"] == preset.phase3.max_minutes / 60 < phase3["hours_for_all_examples"]
    assert phase3["prompts_per_step"] == 4 and 0 < phase3["generation_share"] < 1
    off = replace(preset, phase3=replace(preset.phase3, enabled=False))
    monkeypatch.setattr(gpu_check, "load_preset", lambda name: off)
    assert "phase3" not in gpu_check.estimate_wall_time(preset.name)["steps"]


def test_kaggle_package_refuses_what_kaggle_would_refuse(tmp_path):
    good, bad = tmp_path / "good", tmp_path / "bad"
    meta = json.loads((KAGGLE_DIR / "metadata" / "00_baseline.json").read_text())
    for folder, language in ((good, "python"), (bad, "julia")):
        folder.mkdir()
        (folder / "00_baseline.ipynb").write_text(json.dumps({"cells": [], "metadata": {}}))
        (folder / "kernel-metadata.json").write_text(json.dumps({**meta, "language": language}))
    accepted, refused = kaggle_push_requests([good, bad])
    assert (
        accepted["request"]["enable_gpu"] is True and accepted["request"]["machine_shape"] == "NvidiaTeslaT4"
    )
    assert "valid language" in refused["error"]


def test_cuda_mode_without_cuda_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert gpu_check.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--dry-run" in err and "--simulate" in err
