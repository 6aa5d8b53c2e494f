"""`sqlft run --preset smoke` end to end: the notebook series, skipping, failures, and no secrets."""

import json
import os
import subprocess
import sys

import pytest
from notebook_checks import render_problems

from sqlft.atomic import RunLock
from sqlft.config import load_preset
from sqlft.pipeline import PipelineError, run_pipeline
from sqlft.rundir import STEPS, RunDir

SECRETS = {
    "WANDB_API_KEY": "wandb-fake-secret-0123456789abcdef",
    "HF_TOKEN": "hf_fakeSecretToken0123456789",
    "KAGGLE_KEY": "kaggle-fake-secret-key-987654",
    "KAGGLE_USERNAME": "kaggle-fake-user-secret",
}


def sqlft_run(*args: str, **kwargs):
    """`sqlft run --preset smoke ARGS` in a subprocess, its output captured as text."""
    command = [sys.executable, "-m", "sqlft.cli", "run", "--preset", "smoke", *args]
    return subprocess.run(command, capture_output=True, text=True, **kwargs)


@pytest.fixture(scope="module")
def smoke_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("smoke") / "run"
    # W&B on in offline mode (no network): its files must stay in the run directory, free of secrets
    env = {**os.environ, **SECRETS, "WANDB_MODE": "offline", "OMP_NUM_THREADS": "1"}
    env.pop("WANDB_DIR", None)
    result = sqlft_run("-p", "wandb_project=sqlft-smoke", "--out", str(out), env=env, timeout=900)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return out, result


@pytest.mark.slow
def test_smoke_pipeline_writes_everything_a_report_needs(smoke_run):
    out, result = smoke_run
    metrics = json.loads((out / "metrics.json").read_text())
    for step in ("baseline", "phase1", "phase2"):
        assert 0.0 <= metrics[step]["exec_accuracy"] <= 1.0
        assert metrics[step]["self_consistency"]["n"] == metrics[step]["scored"]  # smoke samples 2
        assert metrics[step]["best_of"]["samples"] == 2 and metrics[step]["best_of"]["vote"] == "execution"
        assert (out / step / "predictions.jsonl").is_file() and (out / step / "report.json").is_file()
    for stem in ("00_baseline", "01_phase1_syntax", "02_phase2_spider", "03_phase3_rl", "04_evaluation"):
        assert (out / f"{stem}.ipynb").is_file()
    for phase in ("phase1", "phase2", "phase3"):
        assert (out / phase / "adapter" / "adapter_config.json").is_file()
        assert (out / phase / "adapter" / "README.md").is_file()  # the model card
    assert (out / "phase3" / "report.json").is_file() and (out / "phase3" / "predictions.jsonl").is_file()
    assert json.loads((out / "phase3" / "DONE.json").read_text())["exec_accuracy"] is not None
    log = json.loads((out / "phase3" / "training_log.json").read_text())
    assert any("rewards/execution/mean" in e and "rewards/format/mean" in e for e in log)
    assert (out / "figures" / "phase3_rewards.png").is_file()
    assert list((out / "figures").glob("*.png"))
    assert len(list((out / "wandb").glob("offline-run-*"))) == 3  # one per training phase
    assert "[5/5] evaluation: finished" in result.stdout


@pytest.mark.slow
def test_no_secret_reaches_any_output_file(smoke_run):
    out, _ = smoke_run
    for path in out.rglob("*"):
        if path.is_file():
            data = path.read_bytes()
            for name, value in SECRETS.items():
                assert value.encode() not in data, f"{name} leaked into {path}"


@pytest.mark.slow
def test_rerun_skips_finished_steps(smoke_run):
    out, _ = smoke_run
    before = (out / "phase1" / "DONE.json").read_text()
    lines = []
    run_pipeline("smoke", out=out, log=lines.append)
    assert all("skipped" in line for line in lines) and len(lines) == 5
    assert (out / "phase1" / "DONE.json").read_text() == before


def test_a_failing_cell_is_named_and_earlier_steps_are_kept(tmp_path):
    notebooks = tmp_path / "notebooks"
    notebooks.mkdir()
    good = (
        '# %% tags=["parameters"]\npreset = "x"\noverrides = {}\nrun_dir = "r"\nprevious_runs = []\n\n'
        "# %%\nfrom sqlft.rundir import RunDir\nRunDir(run_dir).mark_done('baseline')\n"
    )
    (notebooks / "00_baseline.py").write_text(good)
    bad = good.replace("RunDir(run_dir).mark_done('baseline')", "raise ValueError('the data is bad')")
    (notebooks / "01_phase1_syntax.py").write_text(bad)
    out = tmp_path / "run"
    with pytest.raises(PipelineError) as info:
        run_pipeline("smoke", out=out, notebooks=notebooks, steps=["baseline", "phase1"], log=lambda _: None)
    message = str(info.value)
    assert "01_phase1_syntax" in message and "cell" in message and "ValueError: the data is bad" in message
    assert (out / "baseline" / "DONE.json").is_file() and (out / "01_phase1_syntax.ipynb").is_file()


def test_unknown_preset_and_step_fail_before_running(tmp_path):
    from sqlft.config import PresetError

    with pytest.raises(PresetError):
        run_pipeline("no-such-preset", out=tmp_path)
    with pytest.raises(PipelineError, match="unknown step"):
        run_pipeline("smoke", out=tmp_path, steps=["phase9"])


def test_the_command_reports_errors_without_a_traceback(tmp_path):
    result = sqlft_run("-p", "phase1.lr=1", "--out", str(tmp_path))
    assert result.returncode == 1 and "`phase1.lr`" in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "baseline").exists()  # the preset is checked before any notebook runs


def marking_notebooks(folder):
    """Stand-in notebooks that only mark their step done (a kernel each, no model)."""
    folder.mkdir()
    for step, stem in STEPS:
        (folder / f"{stem}.py").write_text(
            '# %% tags=["parameters"]\npreset = "x"\noverrides = {}\nrun_dir = "r"\n\n'
            f"# %%\nfrom sqlft.rundir import RunDir\nRunDir(run_dir).mark_done({step!r})\n"
        )
    return folder


def test_changed_settings_are_refused_before_any_work_and_force_forgets_what_depends(tmp_path):
    notebooks, out = marking_notebooks(tmp_path / "notebooks"), tmp_path / "run"
    run_pipeline("smoke", out=out, notebooks=notebooks, steps=["phase1"], log=lambda _: None)
    run = RunDir(out)
    for step in ("phase2", "phase3", "evaluation"):  # as if they had finished on phase 1's adapter
        run.record_settings(step, load_preset("smoke").to_dict())
        run.mark_done(step)
    preset_yaml = (out / "preset.yaml").read_text()
    changed = {"phase1.learning_rate": 2e-3}
    with pytest.raises(PipelineError) as info:
        run_pipeline("smoke", changed, out=out, notebooks=notebooks, log=lambda _: None)
    message = str(info.value)
    assert (
        "phase1 (finished): phase1.learning_rate: 0.001 -> 0.002" in message and "nothing was run" in message
    )
    assert "--force --steps phase1" in message and "another --out" in message
    assert (out / "preset.yaml").read_text() == preset_yaml and not run.is_done("baseline")

    lines = []
    run_pipeline(
        "smoke", changed, out=out, notebooks=notebooks, steps=["phase1"], force=True, log=lines.append
    )
    assert run.is_done("phase1") and not run.is_done("phase2") and not run.is_done("evaluation")
    assert not run.is_done("phase3")
    assert "phase2, phase3, evaluation forgotten too" in lines[0]
    assert "learning_rate: 0.002" in (out / "preset.yaml").read_text()


def test_phase3_runs_alone_and_force_on_it_forgets_only_the_evaluation(tmp_path):
    notebooks, out = marking_notebooks(tmp_path / "notebooks"), tmp_path / "run"
    run_pipeline("smoke", out=out, notebooks=notebooks, log=lambda _: None)
    run = RunDir(out)
    assert all(run.is_done(step) for step, _ in STEPS)
    assert run.settings("phase3")["sections"]["phase3"]["num_generations"] == 2
    lines = []
    changed = {"phase3.num_generations": 4}
    with pytest.raises(PipelineError, match=r"phase3 \(finished\): phase3.num_generations: 2 -> 4"):
        run_pipeline("smoke", changed, out=out, notebooks=notebooks, steps=["phase3"], log=lines.append)
    run_pipeline(
        "smoke", changed, out=out, notebooks=notebooks, steps=["phase3"], force=True, log=lines.append
    )
    assert "evaluation forgotten too" in lines[0] and "phase2" not in lines[0]
    assert run.is_done("phase2") and run.is_done("phase3") and not run.is_done("evaluation")
    assert any("phase3: running 03_phase3_rl.py" in line for line in lines)


def test_a_second_run_on_a_held_folder_is_refused_with_the_holder(tmp_path):
    with RunLock(tmp_path / "run"):
        with pytest.raises(PipelineError, match=rf"another sqlft run holds this folder \(pid {os.getpid()}"):
            run_pipeline("smoke", out=tmp_path / "run", log=lambda _: None)
    assert not (tmp_path / "run" / "preset.yaml").exists()


def test_executed_notebooks_read_clean(smoke_run):
    """No stderr walls, warnings or cut SQL in what the smoke run's notebooks show (paths: its tmp)."""
    out, _ = smoke_run
    for stem in [stem for _, stem in STEPS]:
        assert render_problems(out / f"{stem}.ipynb", machine_paths=False) == [], stem
