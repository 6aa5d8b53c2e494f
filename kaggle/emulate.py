"""Run the kernels make_kernels writes as Kaggle would, on this CPU: the proof that a series finishes.

    OMP_NUM_THREADS=1 python kaggle/emulate.py --preset smoke --out DIR [--cut phase2] [-p KEY=VALUE]

Each kernel runs in a new session folder: an empty `kaggle/working`, every source it names copied
read-only under `kaggle/input/<slug>` (hashed before and after: root ignores file modes), a fake
`kaggle_secrets` holding test secrets, a wall-clock limit (Kaggle's 12 h, scaled) and an output limit
(its 20 GB, scaled). The only changes to a kernel: its `/kaggle/` paths point into the session folder
and its `%pip install` cell is recorded, not run (this environment has sqlft already).

`--cut phase2` SIGKILLs the phase-2 kernel right after its first checkpoint is written, keeps that
session's working folder as its output, and continues by README's route: `make_kernels
--resume-step phase2` writes the part-2 kernels, the first of which takes the cut kernel's output
as its input. An uncut series of the same kernels runs too, and DIR/emulation.json compares them.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import secrets
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import nbformat

from sqlft.config import load_preset, parse_override
from sqlft.kaggle import make_kernels
from sqlft.rundir import STEPS

TRAINING = ("phase1", "phase2", "phase3")
ADAPTER = "adapter/adapter_model.safetensors"
MAX_PARTS = 5  # a series killed again and again (a session limit shorter than one checkpoint) stops here

# Put on the kernel's PYTHONPATH (with the fake kaggle_secrets): records what every Trainer does into
# SQLFT_EMULATOR_EVENTS and, for the phase named in SQLFT_EMULATOR_CUT, stops after the first checkpoint
# is written, waiting for the emulator's SIGKILL.
HOOK = """
import importlib.abc, importlib.util, json, os, sys, time
from pathlib import Path

EVENTS, CUT = os.environ.get("SQLFT_EMULATOR_EVENTS"), os.environ.get("SQLFT_EMULATOR_CUT")


def record(**event):
    with open(EVENTS, "a") as handle:
        handle.write(json.dumps(event) + "\\n")


def patch(trainer_class):
    from transformers import TrainerCallback

    class Recorder(TrainerCallback):
        def on_train_begin(self, args, state, control, **kwargs):
            record(event="train_begin", phase=Path(args.output_dir).name, step=state.global_step,
                   max_steps=state.max_steps)

        def on_step_end(self, args, state, control, **kwargs):
            record(event="step", phase=Path(args.output_dir).name, step=state.global_step)

        def on_save(self, args, state, control, **kwargs):
            phase = Path(args.output_dir).name
            record(event="checkpoint", phase=phase, step=state.global_step)
            if phase == CUT:
                record(event="cut", phase=phase, step=state.global_step, pid=os.getpid())
                time.sleep(3600)

    init, train = trainer_class.__init__, trainer_class.train

    def patched_init(self, *args, **kwargs):
        init(self, *args, **kwargs)
        self.add_callback(Recorder())

    def patched_train(self, resume_from_checkpoint=None, *args, **kwargs):
        name = Path(resume_from_checkpoint).name if isinstance(resume_from_checkpoint, str) else None
        record(event="train", phase=Path(self.args.output_dir).name, resume_from=name)
        return train(self, resume_from_checkpoint, *args, **kwargs)

    trainer_class.__init__, trainer_class.train = patched_init, patched_train


class PatchTrainer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name != "transformers.trainer":
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        run = spec.loader.exec_module

        def exec_module(module):
            run(module)
            patch(module.Trainer)

        spec.loader.exec_module = exec_module
        return spec


if EVENTS:
    sys.meta_path.insert(0, PatchTrainer())
"""

FAKE_SECRETS = '''
"""Test stand-in for Kaggle's kaggle_secrets: the secrets attached to this emulated kernel."""
SECRETS = {secrets!r}


class UserSecretsClient:
    def get_secret(self, label):
        if label not in SECRETS:
            raise RuntimeError(f"no secret named {{label}} is attached to this notebook")
        return SECRETS[label]
'''


def tree_digest(folder: Path) -> str:
    """One sha256 over every file's relative path and bytes: any change inside `folder` changes it."""
    digest = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        digest.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


def read_only(folder: Path) -> None:
    for path in [folder, *folder.rglob("*")]:
        path.chmod(path.stat().st_mode & ~(stat.S_IWUSR | stat.S_IWGRP | stat.S_IWOTH))


def emulated_notebook(kernel: Path, session: Path) -> Path:
    """The kernel's notebook with /kaggle/ pointing into the session and its install cell recorded."""
    meta = json.loads((kernel / "kernel-metadata.json").read_text())
    notebook = nbformat.read(kernel / meta["code_file"], as_version=4)
    for cell in notebook.cells:
        if cell.cell_type != "code":
            continue
        if "sqlft-install" in cell.metadata.get("tags", []):
            cell.source = f"print('emulator: not run (sqlft is installed here):', {cell.source!r})"
        cell.source = cell.source.replace("/kaggle/", f"{session}/kaggle/")
    path = session / "emulator" / meta["code_file"]
    nbformat.write(notebook, path)
    return path


def run_kernel(
    kernel: Path, session: Path, outputs: Path, hook_dir: Path, limits: dict[str, float], cut: str | None
) -> dict[str, Any]:
    """One Kaggle session: inputs mounted read-only, the kernel run (or killed), /kaggle/working kept."""
    meta = json.loads((kernel / "kernel-metadata.json").read_text())
    slug = meta["id"].split("/", 1)[1]
    working, inputs, scratch = (
        session / "kaggle" / "working",
        session / "kaggle" / "input",
        session / "emulator",
    )
    for folder in (working, inputs, scratch):
        folder.mkdir(parents=True)
    digests = {}
    for source in meta["kernel_sources"]:
        name = source.split("/", 1)[1]
        shutil.copytree(outputs / name, inputs / name)
        read_only(inputs / name)
        digests[name] = tree_digest(inputs / name)
    for source in meta["dataset_sources"]:  # the smoke preset reads none; an empty read-only folder
        (inputs / source.split("/", 1)[1]).mkdir()
        read_only(inputs / source.split("/", 1)[1])
    notebook = emulated_notebook(kernel, session)
    events = scratch / "events.jsonl"
    env = {k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "WANDB_API_KEY")}
    env.update(
        PYTHONPATH=os.pathsep.join(filter(None, [str(hook_dir), env.get("PYTHONPATH")])),
        SQLFT_EMULATOR_EVENTS=str(events),
        HF_HUB_OFFLINE="1",
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
    )
    env.pop("SQLFT_EMULATOR_CUT", None)
    if cut:
        env["SQLFT_EMULATOR_CUT"] = cut
    command = [
        sys.executable,
        "-m",
        "papermill",
        str(notebook),
        str(scratch / "executed.ipynb"),
        "--cwd",
        str(working),
        "-k",
        "python3",
        "--no-progress-bar",
    ]
    started, killed = time.monotonic(), None
    with open(scratch / "stdout.txt", "w") as out, open(scratch / "stderr.txt", "w") as err:
        process = subprocess.Popen(command, stdout=out, stderr=err, env=env, start_new_session=True)
        while process.poll() is None:
            cut_event = next((e for e in _events(events) if e["event"] == "cut"), None)
            if cut_event or time.monotonic() - started > limits["session_seconds"]:
                pid = cut_event["pid"] if cut_event else None
                killed = "after the first checkpoint (--cut)" if cut_event else "session time limit"
                _kill(pid, process)
                break
            time.sleep(0.5)
        process.wait()
    output_mb = sum(p.stat().st_size for p in working.rglob("*") if p.is_file()) / 1e6
    kept = output_mb <= limits["output_mb"]
    if kept:  # Kaggle keeps /kaggle/working as the version's output, up to its limit
        shutil.copytree(working, outputs / slug)
    return {
        "kernel": meta["id"],
        "inputs": meta["kernel_sources"],
        "returncode": process.returncode,
        "killed": killed,
        "seconds": round(time.monotonic() - started, 1),
        "output_mb": round(output_mb, 2),
        "output_kept": kept,
        "inputs_unchanged": all(tree_digest(inputs / name) == d for name, d in digests.items()),
        "secrets_in_use": _secrets_line(scratch / "executed.ipynb"),
        "events": _events(events),
    }


def _secrets_line(executed: Path) -> str | None:
    """What the kernel's secrets cell printed (names only), or None if it did not run."""
    if not executed.is_file():
        return None
    notebook = nbformat.read(executed, as_version=4)
    cell = next((c for c in notebook.cells if "sqlft-secrets" in c.metadata.get("tags", [])), None)
    text = "".join(o.get("text", "") for o in (cell.outputs if cell else []))
    return text.strip() or None


def _events(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def _kill(kernel_pid: int | None, papermill: subprocess.Popen) -> None:
    """SIGKILL the kernel's process group (as the 12 h limit does), then papermill's."""
    for pid in filter(None, (kernel_pid, papermill.pid)):
        try:
            os.killpg(os.getpgid(pid), signal.SIGKILL)
        except ProcessLookupError:
            pass


def run_series(
    kernels: list[Path], root: Path, hook_dir: Path, limits: dict[str, float], cut: str | None = None
) -> list[dict[str, Any]]:
    """Run kernels in order, each in a new session; `cut`: the phase whose session is killed."""
    outputs, sessions = root / "outputs", []
    outputs.mkdir(parents=True, exist_ok=True)
    start = len(list((root / "sessions").glob("*"))) if (root / "sessions").is_dir() else 0
    for number, kernel in enumerate(kernels, start + 1):
        session = root / "sessions" / f"{number:02d}-{kernel.name}"
        phase = dict((stem, step) for step, stem in STEPS).get(kernel.name.split("-part-")[0])
        result = run_kernel(kernel, session, outputs, hook_dir, limits, cut if phase == cut else None)
        sessions.append(result)
        print(
            f"session {number}: {result['kernel']}: rc {result['returncode']}"
            + (f", killed {result['killed']}" if result["killed"] else ""),
            flush=True,
        )
        if result["returncode"] != 0 and not result["killed"]:
            raise RuntimeError(f"{kernel.name} failed; see {session}/emulator/stderr.txt and executed.ipynb")
        if result["killed"]:
            break
    return sessions


def adapter_digests(run: Path) -> dict[str, str]:
    """sha256 of each training phase's adapter weights in a run directory."""
    return {
        phase: hashlib.sha256((run / phase / ADAPTER).read_bytes()).hexdigest()
        for phase in TRAINING
        if (run / phase / ADAPTER).is_file()
    }


def count_secrets(folder: Path, values: list[str]) -> dict[str, int]:
    """Occurrences of each secret value in any file under `folder`, by relative path."""
    found = {}
    needles = [value.encode() for value in values]
    for path in folder.rglob("*"):
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            hits = sum(data.count(needle) for needle in needles)
            if hits:
                found[str(path.relative_to(folder))] = hits
    return found


def emulate(
    preset: str, out: Path, cut: str | None, overrides: dict[str, Any], limits: dict[str, float]
) -> dict[str, Any]:
    """The uncut series, then (with `cut`) the cut one continued by the README route; the summary."""
    out.mkdir(parents=True, exist_ok=True)
    test_secrets = {
        "HF_TOKEN": f"hf_emulated{secrets.token_hex(12)}",
        "WANDB_API_KEY": f"wandbemulated{secrets.token_hex(16)}",
    }
    hook_dir = Path(tempfile.mkdtemp(prefix="sqlft-emulator-"))  # outside `out`: it holds the secrets
    try:
        (hook_dir / "sitecustomize.py").write_text(HOOK)
        (hook_dir / "kaggle_secrets.py").write_text(FAKE_SECRETS.format(secrets=test_secrets))
        kwargs = dict(user="emulator", install="git+https://example.invalid/sqlft", overrides=overrides)
        uncut = run_series(
            make_kernels(preset, out=out / "uncut" / "kernels", **kwargs), out / "uncut", hook_dir, limits
        )
        if uncut[-1]["killed"]:
            raise RuntimeError(f"the uncut series was killed: {uncut[-1]['kernel']}, {uncut[-1]['killed']}")
        sessions = uncut
        if cut:
            first = make_kernels(preset, out=out / "cut" / "kernels", **kwargs)
            sessions = run_series(first, out / "cut", hook_dir, limits, cut=cut)
            part = 2
            while sessions[-1]["killed"]:  # README's route: part-N kernels from the step that was cut off
                if part > MAX_PARTS:
                    raise RuntimeError(f"still cut off after {MAX_PARTS} parts: raise --session-seconds")
                stem = sessions[-1]["kernel"].split("/", 1)[1].removeprefix("sqlft-").split("-part-")[0]
                step = next(name for name, s in STEPS if s.replace("_", "-") == stem)
                rest = make_kernels(
                    preset, out=out / "cut" / "kernels", resume_step=step, part=part, **kwargs
                )
                sessions += run_series(rest, out / "cut", hook_dir, limits)
                part += 1
        leaks = count_secrets(out, list(test_secrets.values()))
    finally:
        shutil.rmtree(hook_dir, ignore_errors=True)
    name = load_preset(preset, overrides).name
    return {
        "preset": name,
        **summary(out, uncut, sessions if cut else None, cut, leaks),
        "overrides": overrides,
        "limits": limits,
    }


def summary(
    out: Path, uncut: list[dict], cut_sessions: list[dict] | None, cut: str | None, leaks: dict[str, int]
) -> dict[str, Any]:
    """emulation.json: sessions, where the cut fell and where training resumed, adapters, leaks."""

    def last_run(series: str, sessions: list[dict]) -> Path:
        return out / series / "outputs" / sessions[-1]["kernel"].split("/", 1)[1] / "run"

    uncut_digests = adapter_digests(last_run("uncut", uncut))
    final = next(p for p in reversed(TRAINING) if p in uncut_digests)
    sessions = cut_sessions or uncut
    events = [e | {"session": i + 1} for i, s in enumerate(sessions) for e in s["events"]]
    cut_event = next((e for e in events if e["event"] == "cut"), None)
    resumed = next(
        (e for e in events if e["event"] == "train" and e["phase"] == cut and e["resume_from"]), None
    )
    begin = [e for e in events if e["event"] == "train_begin" and e["phase"] == (cut or final)]
    after = [
        e["step"]
        for e in events
        if e["event"] == "step" and e["phase"] == cut and resumed and e["session"] == resumed["session"]
    ]
    cut_digests = adapter_digests(last_run("cut", cut_sessions)) if cut_sessions else {}
    metrics_path = last_run("cut" if cut_sessions else "uncut", sessions) / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else None
    return dict(
        cut=cut,
        sessions=[{k: v for k, v in s.items() if k != "events"} for s in sessions],
        uncut_sessions=len(uncut),
        cut_after_step=cut_event["step"] if cut_event else None,
        resumed_from_step=int(resumed["resume_from"].split("-")[1]) if resumed else None,
        steps_total=begin[-1]["max_steps"] if begin else None,
        steps_trained_after_resume=after,
        adapter=f"run/{final}/{ADAPTER}",
        adapter_sha256={"cut": cut_digests.get(final), "uncut": uncut_digests[final]},
        phase_adapter_sha256={"cut": cut_digests, "uncut": uncut_digests},
        secrets_leaked=sum(leaks.values()),
        secrets_found_in=leaks,
        inputs_unchanged=all(s["inputs_unchanged"] for s in [*uncut, *sessions]),
        metrics=metrics,
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument(
        "--cut", choices=TRAINING, help="kill this phase's session after its first checkpoint"
    )
    parser.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
    parser.add_argument("--session-seconds", type=float, default=900, help="Kaggle's 12 h, scaled")
    parser.add_argument("--output-mb", type=float, default=200, help="Kaggle's 20 GB of output, scaled")
    args = parser.parse_args()
    if args.out.exists() and any(args.out.iterdir()):
        parser.error(f"{args.out} is not empty: pass a new folder")
    overrides = dict(parse_override(text) for text in args.overrides)
    limits = {"session_seconds": args.session_seconds, "output_mb": args.output_mb}
    result = emulate(args.preset, args.out, args.cut, overrides, limits)
    (args.out / "emulation.json").write_text(json.dumps(result, indent=1) + "\n")
    shown = {k: v for k, v in result.items() if k not in ("sessions", "metrics", "phase_adapter_sha256")}
    print(json.dumps(shown, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
