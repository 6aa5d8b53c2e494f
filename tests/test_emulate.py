"""The Kaggle emulator end to end: the smoke preset's series, uncut and cut in phase 2 (a few minutes)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # eleven emulated Kaggle sessions, each a papermill kernel

EMULATOR = Path(__file__).resolve().parent.parent / "kaggle" / "emulate.py"


def test_a_series_cut_in_phase_two_resumes_and_ends_byte_identical(tmp_path):
    out = tmp_path / "emulation"
    command = [sys.executable, str(EMULATOR), "--preset", "smoke", "--out", str(out), "--cut", "phase2"]
    command += ["-p", "eval.data.limit=2", "-p", "eval.samples=1"]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled"}
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads((out / "emulation.json").read_text())
    kernels = [s["kernel"].split("/")[1] for s in result["sessions"]]
    assert kernels == [
        "sqlft-00-baseline",
        "sqlft-01-phase1-syntax",
        "sqlft-02-phase2-spider",
        "sqlft-02-phase2-spider-part-2",
        "sqlft-03-phase3-rl-part-2",
        "sqlft-04-evaluation-part-2",
    ]
    assert result["sessions"][2]["killed"] and result["sessions"][2]["returncode"] != 0
    assert result["cut_after_step"] == 2 == result["resumed_from_step"]  # smoke saves every 2 of 4 steps
    assert result["steps_total"] == 4 and result["steps_trained_after_resume"] == [3, 4]
    digests = result["adapter_sha256"]
    assert digests["cut"] == digests["uncut"] and len(digests["uncut"]) == 64
    assert result["phase_adapter_sha256"]["cut"] == result["phase_adapter_sha256"]["uncut"]
    assert result["secrets_leaked"] == 0 and result["inputs_unchanged"]
    assert all("HF_TOKEN, WANDB_API_KEY" in s["secrets_in_use"] for s in result["sessions"])
    assert {"baseline", "phase1", "phase2", "phase3"} <= set(result["metrics"])
