"""What kills Kaggle sessions, injected for real into `sqlft run --preset smoke --steps phase1`.

SIGKILL inside a checkpoint save, inside the adapter save and inside adoption (paused there by
tests/fault_hook/sitecustomize.py, a test-only module on PYTHONPATH), a full disk (a small tmpfs),
a rerun with other settings and a second run on the same folder: each ends with the same adapter
bytes as the uninterrupted run, or with a clear one-line refusal.
"""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # each runs `sqlft run` (a kernel, a tiny model) once or twice

HOOK = Path(__file__).parent / "fault_hook"
FAST = ["-p", "eval.data.limit=2", "-p", "eval.num_samples=1"]  # the same for every run here
ADAPTER = Path("phase1/adapter/adapter_model.safetensors")
CHECKPOINT_SAVE = "transformers.trainer:Trainer._save_optimizer_and_scheduler"  # inside checkpoint-N
WHOLE_FOLDER_WRITE = "sqlft.atomic:_fsync_tree"  # an atomic folder filled, not yet renamed into place


def _env(pause: str | None = None, pause_file: Path | None = None) -> dict[str, str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    if pause:
        env.update(
            PYTHONPATH=os.pathsep.join(filter(None, [str(HOOK), env.get("PYTHONPATH")])),
            SQLFT_PAUSE=pause,
            SQLFT_PAUSE_FILE=str(pause_file),
        )
    return env


def start_run(out: Path, *extra: str, pause: str | None = None, pause_file: Path | None = None):
    """`sqlft run` on phase 1 in its own process group (as a Kaggle session is one)."""
    command = [sys.executable, "-m", "sqlft.cli", "run", "--preset", "smoke", "--steps", "phase1"]
    return subprocess.Popen(
        [*command, "--out", str(out), *FAST, *extra],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(pause, pause_file),
        start_new_session=True,
    )


def sqlft_run(out: Path, *extra: str) -> subprocess.CompletedProcess:
    process = start_run(out, *extra)
    stdout, stderr = process.communicate(timeout=300)
    return subprocess.CompletedProcess(process.args, process.returncode, stdout, stderr)


def wait_for_pause(process: subprocess.Popen, pause_file: Path, timeout: float = 240) -> int:
    """The pid of the process paused inside the save."""
    deadline = time.monotonic() + timeout
    while not (pause_file.is_file() and pause_file.read_text()):
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"never paused: {process.communicate()[1][-3000:]}")
        time.sleep(0.2)
    return int(pause_file.read_text())


def kill_groups(*pids: int) -> None:
    """SIGKILL each pid's whole process group (papermill's kernel runs in a group of its own)."""
    for group in {os.getpgid(pid) for pid in pids}:
        os.killpg(group, signal.SIGKILL)


def one_line_error(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 1 and "Traceback" not in result.stderr, result.stderr[-3000:]
    return result.stderr.strip().splitlines()[-1]


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> Path:
    """One uninterrupted phase-1 run that every faulted run must reproduce byte for byte."""
    out = tmp_path_factory.mktemp("reference") / "run"
    result = sqlft_run(out)
    assert result.returncode == 0, result.stderr[-3000:]
    return out


def test_kill_inside_a_checkpoint_save_a_second_run_and_changed_settings(reference, tmp_path):
    out, pause_file = tmp_path / "run", tmp_path / "paused"
    run = start_run(out, pause=f"{CHECKPOINT_SAVE}:2", pause_file=pause_file)
    kernel = wait_for_pause(run, pause_file)

    second = one_line_error(sqlft_run(out))
    assert f"another sqlft run holds this folder (pid {run.pid}" in second

    kill_groups(run.pid, kernel)
    run.wait()
    assert not (out / "phase1/checkpoint-4/trainer_state.json").exists()  # the save was cut short

    changed = sqlft_run(out, "-p", "phase1.learning_rate=0.002")
    assert "taking over a stale lock" in changed.stdout  # the killed run's pid is gone
    refusal = one_line_error(changed)
    assert "phase1 (half trained): phase1.learning_rate: 0.001 -> 0.002" in refusal
    assert "--force --steps phase1" in refusal and "another --out" in refusal

    resumed = sqlft_run(out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    notebook = (out / "01_phase1_syntax.ipynb").read_text()
    assert "checkpoint-4: incomplete" in notebook and "resuming from checkpoint-2" in notebook
    assert (out / ADAPTER).read_bytes() == (reference / ADAPTER).read_bytes()


def test_kernel_killed_inside_the_adapter_save(reference, tmp_path):
    out, pause_file = tmp_path / "run", tmp_path / "paused"
    run = start_run(out, pause=f"{WHOLE_FOLDER_WRITE}:1", pause_file=pause_file)
    kill_groups(wait_for_pause(run, pause_file))  # the kernel alone, as the out-of-memory killer does
    stdout, stderr = run.communicate(timeout=120)
    line = one_line_error(subprocess.CompletedProcess(run.args, run.returncode, stdout, stderr))
    assert "01_phase1_syntax failed: the kernel died" in line
    assert "Kept: no finished step and phase1 checkpoint-4" in line and "Resume: sqlft run" in line
    assert not (out / "phase1/adapter").exists() and not (out / "phase1/DONE.json").exists()

    resumed = sqlft_run(out)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    assert (out / ADAPTER).read_bytes() == (reference / ADAPTER).read_bytes()
    assert not list((out / "phase1").glob(".*tmp-*")), "the cut-short adapter folder was left behind"


def test_kill_inside_adoption(reference, tmp_path):
    new, pause_file = tmp_path / "new", tmp_path / "paused"
    adopt = f"from sqlft.rundir import RunDir; print(RunDir({str(new)!r}).adopt([{str(reference)!r}]))"
    process = subprocess.Popen(
        [sys.executable, "-c", adopt],
        env=_env(f"{WHOLE_FOLDER_WRITE}:1", pause_file),
        start_new_session=True,
    )
    kill_groups(wait_for_pause(process, pause_file))
    process.wait()
    assert not (new / "phase1/DONE.json").exists() and not (new / ADAPTER).exists()

    again = subprocess.run([sys.executable, "-c", adopt], capture_output=True, text=True, env=_env())
    assert again.stdout.strip() == "['phase1']", again.stderr[-3000:]
    assert (new / ADAPTER).read_bytes() == (reference / ADAPTER).read_bytes()


def test_a_full_disk_stops_before_the_checkpoint_and_the_rerun_resumes(reference, tmp_path):
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1200k", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here (needs root): {mounted.stderr.decode().strip()}")
    try:
        out = disk / "run"
        line = one_line_error(sqlft_run(out))
        assert "failed: disk full: checkpoint-4 needs about" in line and f"{out / 'phase1'} has" in line
        assert "MB free. Kept: no finished step and phase1 checkpoint-2" in line and "Resume: sqlft" in line
        assert not (out / "phase1/checkpoint-4").exists()
        subprocess.run(["mount", "-o", "remount,size=8m", str(disk)], check=True)  # space freed
        resumed = sqlft_run(out)
        assert resumed.returncode == 0, resumed.stderr[-3000:]
        assert (out / ADAPTER).read_bytes() == (reference / ADAPTER).read_bytes()
    finally:
        subprocess.run(["umount", str(disk)], check=False)
