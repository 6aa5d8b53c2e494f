import json

import pytest

from sqlft.config import load_preset
from sqlft.rundir import STEPS, RunDir, dependents, differences, step_settings


def test_steps_are_marked_done_last_and_required_in_order(tmp_path):
    run = RunDir(tmp_path / "run")
    assert not run.is_done("baseline")
    with pytest.raises(FileNotFoundError, match="baseline.*has not finished"):
        run.require("baseline")
    run.mark_done("baseline", exec_accuracy=0.1)
    run.require("baseline")
    assert json.loads((tmp_path / "run" / "baseline" / "DONE.json").read_text())["exec_accuracy"] == 0.1


def test_adopt_copies_only_finished_steps_it_lacks(tmp_path):
    old = RunDir(tmp_path / "old")
    old.mark_done("baseline")
    (old.step_dir("baseline") / "predictions.jsonl").write_text("{}\n")
    old.step_dir("phase1")  # started, never finished: must not be adopted
    new = RunDir(tmp_path / "new")
    assert new.adopt([tmp_path / "old"]) == ["baseline"]
    assert new.predictions("baseline").read_text() == "{}\n"
    assert not new.is_done("phase1")
    assert new.adopt([tmp_path / "old"]) == []


def test_reset_forgets_a_step(tmp_path):
    run = RunDir(tmp_path)
    run.mark_done("phase1")
    run.reset("phase1")
    assert not run.is_done("phase1")
    assert [s for s, _ in STEPS] == ["baseline", "phase1", "phase2", "phase3", "evaluation"]


def test_adopt_copies_the_marker_last_and_never_over_a_finished_step(tmp_path):
    old = RunDir(tmp_path / "old")
    (old.step_dir("phase1") / "adapter").mkdir()
    (old.adapter("phase1") / "adapter_model.safetensors").write_bytes(b"weights")
    old.mark_done("phase1")
    new = RunDir(tmp_path / "new")
    (new.step_dir("phase1") / "stale.txt").write_text("from an unfinished attempt")
    assert new.adopt([old.root]) == ["phase1"]
    assert (new.adapter("phase1") / "adapter_model.safetensors").read_bytes() == b"weights"
    assert not (new.root / "phase1" / "stale.txt").exists() and new.is_done("phase1")
    assert [p.name for p in new.root.iterdir()] == ["phase1"]  # no temporary folder left


def test_a_missing_previous_run_names_the_path_and_what_is_there(tmp_path):
    (tmp_path / "input" / "sqlft-phase1-output").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match=r"sqlft-phase1 does not exist.*holds: sqlft-phase1-output"):
        RunDir(tmp_path / "run").adopt([tmp_path / "input" / "sqlft-phase1"])


def test_settings_fingerprint_differences_and_dependents():
    preset = {
        "model": {"name": "a"},
        "prompt": {},
        "eval": {},
        "phase1": {"learning_rate": 1e-3},
        "phase2": {},
        "phase3": {},
    }
    changed = {**preset, "phase1": {"learning_rate": 2e-3}}
    assert step_settings(preset, "baseline") == step_settings(changed, "baseline")
    assert step_settings(preset, "phase1")["fingerprint"] != step_settings(changed, "phase1")["fingerprint"]
    assert differences(preset, changed) == ["phase1.learning_rate: 0.001 -> 0.002"]
    assert dependents("phase1") == ["phase2", "phase3", "evaluation"]
    assert dependents("phase2") == ["phase3", "evaluation"] and dependents("phase3") == ["evaluation"]
    assert dependents("baseline") == ["evaluation"] and dependents("evaluation") == []
    rl = {**preset, "phase3": {"num_generations": 8}}
    assert step_settings(preset, "phase3")["fingerprint"] != step_settings(rl, "phase3")["fingerprint"]
    assert step_settings(preset, "phase2") == step_settings(rl, "phase2")


def test_mark_done_records_the_fingerprint_of_the_settings_used(tmp_path):
    run = RunDir(tmp_path)
    preset = {"model": {}, "prompt": {}, "eval": {}, "phase1": {"seed": 1}}
    run.record_settings("phase1", preset)
    run.mark_done("phase1")
    done = json.loads((tmp_path / "phase1" / "DONE.json").read_text())
    assert (
        done["fingerprint"]
        == step_settings(preset, "phase1")["fingerprint"]
        == run.settings("phase1")["fingerprint"]
    )


def _checkpoint(folder, step, complete=True):
    """A checkpoint-N folder as the Trainer leaves it (trainer_state.json written last)."""
    path = folder / f"checkpoint-{step}"
    path.mkdir(parents=True)
    for name in ("optimizer.pt", "scheduler.pt", "adapter_model.safetensors"):
        (path / name).write_bytes(b"x")
    if complete:
        (path / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    return path


def _half_trained(root, preset, steps=(2, 4), incomplete=6):
    """An earlier kernel's output: phase1 done, phase2 cut off: checkpoints `steps`, one half saved."""
    previous = RunDir(root)
    previous.step_dir("phase1")
    previous.record_settings("phase1", preset)
    previous.mark_done("phase1")
    previous.record_settings("phase2", preset)
    (previous.root / "phase2" / "train.jsonl").write_text("{}\n")
    for step in steps:
        _checkpoint(previous.root / "phase2", step)
    _checkpoint(previous.root / "phase2", incomplete, complete=False)
    return previous


def test_adopt_takes_a_half_trained_phase_with_its_newest_complete_checkpoint_only(tmp_path):
    preset = load_preset("smoke").to_dict()
    previous = _half_trained(tmp_path / "kernel1", preset)
    for path in previous.root.rglob("*"):  # Kaggle's inputs are read-only
        path.chmod(0o555 if path.is_dir() else 0o444)
    run = RunDir(tmp_path / "kernel2")
    adopted = run.adopt([previous.root], preset)
    assert adopted == ["phase1", "phase2 (half trained, from checkpoint-4)"]
    assert not run.is_done("phase2")
    assert sorted(p.name for p in (run.root / "phase2").glob("checkpoint-*")) == ["checkpoint-4"]
    assert (run.root / "phase2" / "train.jsonl").is_file() and run.settings("phase2") is not None
    assert (run.root / "phase2").stat().st_mode & 0o200  # writable: training adds checkpoints here
    assert run.adopt([previous.root], preset) == []  # what it has is as new


def test_adopt_refuses_a_half_trained_phase_made_with_other_settings(tmp_path):
    previous = _half_trained(tmp_path / "kernel1", load_preset("smoke").to_dict())
    changed = load_preset("smoke", {"phase2.learning_rate": 0.01}).to_dict()
    with pytest.raises(ValueError, match=r"phase2.learning_rate: 0.0005 -> 0.01.*Fix"):
        RunDir(tmp_path / "kernel2").adopt([previous.root], changed)
    assert not (tmp_path / "kernel2" / "phase2").exists()


def test_adopt_leaves_a_phase_without_a_complete_checkpoint(tmp_path):
    previous = _half_trained(tmp_path / "kernel1", load_preset("smoke").to_dict(), steps=())
    run = RunDir(tmp_path / "kernel2")
    assert run.adopt([previous.root], load_preset("smoke").to_dict()) == ["phase1"]
    assert not (run.root / "phase2").exists()
