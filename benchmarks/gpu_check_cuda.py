"""The CUDA mode of gpu_check: eight checks in a fixed time budget, each in its own process with its
own share of the budget (plus whatever the checks before it left unspent), the JSON rewritten after
each so that a run cut short still returns what was done. A check over its limit is stopped (its
process group killed) and recorded as "timeout".

Every check but data_parallel sees only the first GPU (CUDA_VISIBLE_DEVICES), as one Kaggle process
does: a Trainer that sees two GPUs would wrap the model in DataParallel. `--dry-run` runs the same
orchestration on a CPU, each CUDA call recorded as "would run" (gpu_check_steps.Gpu).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path

from gpu_check_env import REPO, T4, WHEELS, child_env, python

STEPS = Path(__file__).resolve().parent / "gpu_check_steps.py"
# (check, share of the budget): measured shares will replace these guesses after the first GPU run
SHARES = (
    ("environment", 0.12),  # unpacks 47 MiB of wheels, imports the stack in a fresh process
    ("nf4_load", 0.10),
    ("sft_step", 0.12),
    ("grpo_step", 0.12),
    ("smoke_run", 0.22),  # five steps of the smoke preset, each loading the model again
    ("memory_vs_plan", 0.10),
    ("generation_speed", 0.10),
    ("data_parallel", 0.12),
)


def run_check(name: str, budget_s: float, work: Path, dry_run: bool, stall: bool, first_gpu: str) -> dict:
    """One check in a child process, stopped after `budget_s`: {name, budget_s, seconds, verdict, detail}."""
    part = work / f"{name}.json"
    command = [*python(dry_run), str(STEPS), name, str(work), str(part), f"{budget_s:.0f}"]
    command += ["--dry-run"] * dry_run + ["--stall"] * stall
    env = child_env(work, dry_run)
    if name != "data_parallel":
        env["CUDA_VISIBLE_DEVICES"] = first_gpu
    log = work / f"{name}.log"
    started = time.monotonic()
    with log.open("w") as out:
        child = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO, start_new_session=True
        )
        try:
            code = child.wait(timeout=budget_s)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)  # the check and anything it started in its session
            child.wait()
            code = None
    seconds = round(time.monotonic() - started, 1)
    record = {"name": name, "budget_s": round(budget_s, 1), "seconds": seconds}
    tail = log.read_text(errors="replace")[-2000:]
    if code is None:
        return {
            **record,
            "verdict": "timeout",
            "detail": {"reason": f"over its {budget_s:.0f} s", "log": tail},
        }
    if not part.is_file():
        return {**record, "verdict": "fail", "detail": {"exit_code": code, "log": tail}}
    record |= json.loads(part.read_text())
    if record["verdict"] == "fail":  # the first GPU run is rare: keep what the check printed
        record["detail"]["log"] = tail
    return record


def write_json(path: Path, result: dict) -> None:
    """Replace `path` whole, so a reader (or a run killed now) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(result, indent=1, default=str) + "\n")
    os.replace(temporary, path)


def run_all(
    out: Path, budget_s: float, dry_run: bool, stall: str | None = None, only: set[str] | None = None
) -> dict:
    """Every check (or those in `only`) in order within `budget_s`, the JSON at `out` rewritten after
    each. Verdicts: pass, fail, skipped (with the reason), timeout, dry-run (CUDA calls recorded)."""
    from common import environment

    started = time.monotonic()
    result = {
        **environment(),
        "mode": "dry-run (CPU; CUDA calls recorded, not made)" if dry_run else "cuda",
        "budget_s": budget_s,
        "t4_emulation": T4,
        "wheels": WHEELS,
        "device": None,
        "checks": [],
    }
    first_gpu = os.environ.get("CUDA_VISIBLE_DEVICES", "0").split(",")[0]
    shares = [(name, share) for name, share in SHARES if not only or name in only]
    with tempfile.TemporaryDirectory(prefix="gpu_check-") as tmp:
        for index, (name, share) in enumerate(shares):
            # its share plus what the checks before it left unspent; the later checks' shares stay theirs
            later = budget_s * sum(share for _, share in shares[index + 1 :])
            limit = budget_s - (time.monotonic() - started) - later
            if limit < 1:
                record = {"name": name, "budget_s": 0, "seconds": 0, "verdict": "timeout",
                          "detail": {"reason": "the checks before it spent its share"}}  # fmt: skip
            else:
                record = run_check(name, limit, Path(tmp), dry_run, stall == name, first_gpu)
            if name == "environment" and isinstance(record["detail"].get("t4"), dict):
                result["device"] = record["detail"]["t4"]
            result["checks"].append(record)
            result["seconds"] = round(time.monotonic() - started, 1)
            write_json(out, result)
    result["ok"] = all(c["verdict"] in ("pass", "skipped", "dry-run") for c in result["checks"])
    write_json(out, result)
    return result


def main(out: str | None, budget_s: float, dry_run: bool, stall: str | None = None) -> int:
    """Run the checks; one line per check; exit 0 when none failed or ran out of time."""
    name = "gpu_check_dry_run" if dry_run else "gpu_check_cuda"
    path = Path(out) if out else REPO / "benchmarks" / "results" / f"{name}.json"
    result = run_all(path, budget_s, dry_run, stall)
    for check in result["checks"]:
        reason = check["detail"].get("reason", "") if isinstance(check["detail"], dict) else ""
        timing = f"{check['seconds']:>6.1f} s / {check['budget_s']:.0f} s"
        print(f"{check['name']:<17} {check['verdict']:<8} {timing}  {reason}".rstrip())
    print(f"wrote {path}")
    return 0 if result["ok"] else 1
