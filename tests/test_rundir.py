import json

import pytest

from sqlft.rundir import STEPS, RunDir


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
    assert [s for s, _ in STEPS] == ["baseline", "phase1", "phase2", "evaluation"]
