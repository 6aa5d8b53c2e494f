"""Run the notebook series headlessly with papermill, from a preset, into one run directory.

Each notebook marks its step done as its last act, so rerunning the same command skips what
finished and resumes an interrupted training phase from its checkpoint; `force` redoes steps.
One `sqlft run` works in a folder at a time (sqlft.atomic.RunLock).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sqlft.atomic import LockedError, RunLock, remove_temporaries, write_text_atomic
from sqlft.config import as_current, load_preset
from sqlft.progress import ProgressPrinter
from sqlft.rundir import STEPS, RunDir, dependents, differences, step_settings

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}


class PipelineError(RuntimeError):
    """A step failed; the message names the notebook, the cell and the error."""


def notebooks_dir() -> Path:
    """The repository's notebooks folder (sqlft is installed editable from the repository)."""
    return Path(__file__).resolve().parent.parent / "notebooks"


def run_pipeline(
    preset: str | Path,
    overrides: dict[str, Any] | None = None,
    out: str | Path | None = None,
    *,
    force: bool = False,
    steps: list[str] | None = None,
    notebooks: str | Path | None = None,
    log: Callable[[str], None] = print,
    resume_command: str = "rerun the same command",
) -> RunDir:
    """Execute the series; returns the run directory. Completed steps are skipped unless `force`.

    Holds the folder's lock throughout; refuses, before any work, settings that differ from those
    that produced finished steps or a half-trained phase; `force` redoes the chosen steps and forgets
    every step that reads their outputs.
    """
    overrides = dict(overrides or {})
    config = load_preset(preset, overrides)  # validate before any notebook starts
    settings = config.to_dict()
    run = RunDir(Path(out) if out else Path("runs") / config.name)
    chosen = steps or [name for name, _ in STEPS]
    unknown = sorted(set(chosen) - {name for name, _ in STEPS})
    if unknown:
        raise PipelineError(f"unknown step(s) {unknown}. Fix: choose from {[name for name, _ in STEPS]}")
    source_dir = Path(notebooks) if notebooks else notebooks_dir()
    try:
        lock = RunLock(run.root, log=log).acquire()
    except LockedError as error:
        raise PipelineError(str(error)) from None
    try:
        for folder in [run.root, *(run.root / step for step, _ in STEPS)]:
            if folder.is_dir():
                remove_temporaries(folder)
        redo = _invalidate(run, chosen, log) if force else []
        _check_settings(run, settings, skip=redo)
        write_text_atomic(run.root / "preset.yaml", yaml.safe_dump(settings, sort_keys=False))
        for number, (step, stem) in enumerate(STEPS, 1):
            if step not in chosen:
                continue
            if run.is_done(step):
                log(f"[{number}/{len(STEPS)}] {step}: done already ({run.root / step}/DONE.json), skipped")
                continue
            source = source_dir / f"{stem}.py"
            if not source.is_file():
                raise PipelineError(f"{source}: notebook not found. Fix: pass --notebooks DIR")
            run.record_settings(step, settings)
            log(f"[{number}/{len(STEPS)}] {step}: running {source.name} -> {run.root / stem}.ipynb")
            started = time.monotonic()
            # as the user gave them (a preset's name, a relative folder): the notebook shows these
            parameters = {"preset": str(preset), "overrides": overrides, "run_dir": str(run.root)}
            _execute(source, run, step, stem, parameters, resume_command)
            if not run.is_done(step):
                raise PipelineError(f"{stem}: finished without marking step {step!r} done; see {stem}.ipynb")
            log(f"[{number}/{len(STEPS)}] {step}: finished in {time.monotonic() - started:.0f} s")
    finally:
        lock.release()
    return run


def _invalidate(run: RunDir, chosen: list[str], log: Callable[[str], None]) -> list[str]:
    """For `--force`: forget the chosen steps and every step that reads their outputs; returns them all."""
    redo = [name for name, _ in STEPS if name in chosen or any(name in dependents(c) for c in chosen)]
    for step in redo:
        run.reset(step)
    later = [step for step in redo if step not in chosen]
    if later:
        log(f"--force: {', '.join(later)} forgotten too (they read what is redone); rerun without --steps")
    return redo


def _check_settings(run: RunDir, settings: dict[str, Any], skip: list[str]) -> None:
    """Stop when a finished step, or a phase with checkpoints, was produced with other settings."""
    changed = []
    for step, _ in STEPS:
        recorded = run.settings(step)
        started = run.is_done(step) or any((run.root / step).glob("checkpoint-*"))
        if step in skip or recorded is None or not started:
            continue
        if recorded["fingerprint"] != step_settings(settings, step)["fingerprint"]:
            lines = differences(as_current(recorded["sections"]), step_settings(settings, step)["sections"])
            if not lines:  # only keys added or renamed since the step ran
                continue
            state = "finished" if run.is_done(step) else "half trained"
            changed.append((step, f"{step} ({state}): {'; '.join(lines)}"))
    if changed:
        steps = ",".join(step for step, _ in changed)
        raise PipelineError(
            f"{run.root} holds results made with other settings, so nothing was run: "
            f"{' | '.join(line for _, line in changed)}. Fix: redo them with `--force --steps {steps}` "
            f"(the steps that read them are redone too), or pass another --out"
        )


def _execute(
    source: Path, run: RunDir, step: str, stem: str, parameters: dict[str, Any], resume_command: str
) -> None:
    """Run one notebook; the executed copy is written beside the final name and renamed when it ends.

    Any failure becomes one PipelineError line: what failed, why, what is kept, how to resume.
    """
    import jupytext
    import papermill
    from nbclient.exceptions import DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    notebook = jupytext.read(source)
    notebook.metadata["kernelspec"] = KERNELSPEC
    output = run.root / f"{stem}.ipynb"
    running = run.root / f"{stem}.running.ipynb"
    progress = run.root / step / "progress.json"
    progress.unlink(missing_ok=True)
    where, cause = stem, None
    try:
        with ProgressPrinter(progress, step, _console_line) as printer:
            papermill.execute_notebook(
                notebook,
                str(running),
                parameters=parameters,
                kernel_name="python3",
                progress_bar=True,
                # the kernel's own start-up warnings (TCP without encryption) say nothing about the run
                extra_arguments=["--IPKernelApp.log_level=ERROR"],
            )
        if printer.printed and sys.stdout.isatty():
            print()  # end the line rewritten in place
    except PapermillExecutionError as error:
        where = f"{stem} cell {error.cell_index}"
        cause = _cause(error.ename, error.evalue, run.root)
    except DeadKernelError:
        cause = "the kernel died (killed, most often for lack of memory: lower batch_size or max_length)"
    except KeyboardInterrupt:
        cause = "interrupted (Ctrl-C)"
    except OSError as error:
        cause = _cause(type(error).__name__, str(error), run.root, error.errno)
    finally:
        _keep_notebook(running, output)
    if cause:
        raise PipelineError(
            f"{where} failed: {cause}. Kept: {_kept(run, step)}; notebook {output.name}. "
            f"Resume: {resume_command}"
        )


def _cause(name: str, message: str, folder: Path, errno: int | None = None) -> str:
    """A failure's cause in a sentence; a full disk says how much is free and where."""
    if name == "DiskFullError":  # sqlft's own check: already names the folder and the space
        return message.split(". Fix:")[0]
    if errno == 28 or "No space left" in message:
        free = shutil.disk_usage(folder).free / 1e6
        return f"disk full ({free:.1f} MB free in {folder}): {message.splitlines()[0] if message else name}"
    if name == "KeyboardInterrupt":
        return "interrupted (Ctrl-C)"
    return f"{name}: {message}"


def _keep_notebook(running: Path, output: Path) -> None:
    """Rename the executed notebook into place if it was written whole; a truncated one is dropped."""
    if not running.is_file():
        return
    try:
        json.loads(running.read_text())
    except (OSError, ValueError):
        running.unlink(missing_ok=True)  # cut short by a full disk: the older notebook, if any, stays
        return
    os.replace(running, output)


def _kept(run: RunDir, step: str) -> str:
    """What a rerun continues from: finished steps and the failed step's newest complete checkpoint."""
    from sqlft.train import complete_checkpoint

    done = [name for name, _ in STEPS if run.is_done(name)]
    folder = run.root / step
    checkpoint = complete_checkpoint(folder, remove=False) if folder.is_dir() else None
    parts = [f"finished steps {', '.join(done)}" if done else "no finished step"]
    if checkpoint:
        parts.append(f"{step} {checkpoint.name}")
    return " and ".join(parts)


def _console_line(line: str) -> None:
    """One progress line, rewritten in place on a terminal."""
    if sys.stdout.isatty():
        print(f"\r{line:<100}", end="", flush=True)
    else:
        print(line, flush=True)
