"""Run the notebook series headlessly with papermill, from a preset, into one run directory.

Each notebook marks its step done as its last act, so rerunning the same command skips what
finished and resumes an interrupted training phase from its checkpoint; `force` redoes steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

from sqlft.config import load_preset
from sqlft.rundir import STEPS, RunDir

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
) -> RunDir:
    """Execute the series; returns the run directory. Completed steps are skipped unless `force`."""
    import jupytext
    import papermill
    from papermill.exceptions import PapermillExecutionError

    overrides = dict(overrides or {})
    config = load_preset(preset, overrides)  # validate before any notebook starts
    run = RunDir(Path(out) if out else Path("runs") / config.name)
    run.root.mkdir(parents=True, exist_ok=True)
    (run.root / "preset.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
    chosen = steps or [name for name, _ in STEPS]
    unknown = sorted(set(chosen) - {name for name, _ in STEPS})
    if unknown:
        raise PipelineError(f"unknown step(s) {unknown}. Fix: choose from {[name for name, _ in STEPS]}")
    source_dir = Path(notebooks) if notebooks else notebooks_dir()
    for number, (step, stem) in enumerate(STEPS, 1):
        if step not in chosen:
            continue
        if run.is_done(step) and not force:
            log(f"[{number}/{len(STEPS)}] {step}: done already ({run.root / step}/DONE.json), skipped")
            continue
        if force:
            run.reset(step)
        source = source_dir / f"{stem}.py"
        if not source.is_file():
            raise PipelineError(f"{source}: notebook not found. Fix: pass --notebooks DIR")
        notebook = jupytext.read(source)
        notebook.metadata["kernelspec"] = KERNELSPEC
        output = run.root / f"{stem}.ipynb"
        log(f"[{number}/{len(STEPS)}] {step}: running {source.name} -> {output}")
        started = time.monotonic()
        try:
            papermill.execute_notebook(
                notebook,
                str(output),
                parameters={"preset": str(config.origin), "overrides": overrides, "run_dir": str(run.root)},
                kernel_name="python3",
                progress_bar=True,
            )
        except PapermillExecutionError as error:
            raise PipelineError(
                f"{stem}: cell {error.cell_index} (execution count {error.exec_count}) failed with "
                f"{error.ename}: {error.evalue}\nThe notebook with its outputs up to the failure is "
                f"{output}; finished steps are kept: fix the cause and rerun the same command to go on."
            ) from error
        if not run.is_done(step):
            raise PipelineError(f"{stem}: finished without marking step {step!r} done; see {output}")
        log(f"[{number}/{len(STEPS)}] {step}: finished in {time.monotonic() - started:.0f} s")
    return run
