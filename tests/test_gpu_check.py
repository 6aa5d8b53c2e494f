"""benchmarks/gpu_check.py: the CPU checks on one preset agree with sqlft plan, and they can fail."""

import importlib.util
from dataclasses import replace
from pathlib import Path

import pytest

from sqlft.config import load_preset

SPEC = importlib.util.spec_from_file_location(
    "gpu_check", Path(__file__).resolve().parent.parent / "benchmarks" / "gpu_check.py"
)
gpu_check = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(gpu_check)


@pytest.fixture(autouse=True)
def offline(monkeypatch):
    def unreachable(*args, **kwargs):
        raise OSError("hub unreachable")

    monkeypatch.setattr("transformers.AutoConfig.from_pretrained", unreachable)


def test_simulate_checks_the_real_phi2_architecture_and_the_kernels():
    result = gpu_check.simulate(["kaggle-t4x2-phi2"])
    phi = result["presets"]["kaggle-t4x2-phi2"]
    assert result["ok"], result
    assert phi["parameters"] == pytest.approx(2.78e9, rel=0.01)  # Phi-2's published size
    assert phi["lora_targets"] == ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"]
    assert "shipped with sqlft" in phi["config"]
    assert len(result["kernels"]["checked"]) == 4 and not result["kernels"]["problems"]


def test_simulate_flags_an_eval_batch_that_overflows_a_t4(monkeypatch):
    preset = load_preset("kaggle-t4x2-phi2")
    overflowing = replace(preset, eval=replace(preset.eval, batch_size=32))
    monkeypatch.setattr(gpu_check, "load_preset", lambda name: overflowing)
    result = gpu_check.simulate(["kaggle-t4x2-phi2"])
    assert not result["ok"]
    assert result["presets"]["kaggle-t4x2-phi2"]["problems"][0].startswith("generation: does not fit")


def test_cuda_mode_without_cuda_exits_2_with_one_line(monkeypatch, capsys):
    monkeypatch.setattr("torch.cuda.is_available", lambda: False)
    assert gpu_check.main([]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--simulate" in err
