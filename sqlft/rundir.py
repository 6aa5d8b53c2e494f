"""The run directory: where each step of the series leaves its outputs for the next one.

run_dir/
  preset.yaml                 the resolved preset the run used
  00_baseline.ipynb ...       executed notebooks
  baseline/  phase1/  phase2/ predictions.jsonl, report.json, settings.json, DONE.json; phases add
  phase3/                     adapter/, checkpoint-N/, training_log.json, sql_samples.csv; a phase 3
                              the preset turns off holds settings.json and DONE.json ("skipped": true)
  metrics.json, figures/      written by the evaluation step
  .lock                       held by the `sqlft run` working in the folder (sqlft.atomic.RunLock)

`<step>/settings.json` records the preset sections the step depends on, written before the step runs;
with DONE.json (written atomically, last) beside it, it says what produced the step's outputs.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlft.atomic import atomic_dir, copy_tree_atomic, write_json_atomic

# (step name, notebook stem) in the order the series runs
STEPS = [
    ("baseline", "00_baseline"),
    ("phase1", "01_phase1_syntax"),
    ("phase2", "02_phase2_spider"),
    ("phase3", "03_phase3_rl"),
    ("evaluation", "04_evaluation"),
]
# The preset sections each step's outputs depend on (name, description, wandb_project change nothing).
STEP_SECTIONS = {
    "baseline": ("model", "prompt", "eval"),
    "phase1": ("model", "prompt", "phase1", "eval"),
    "phase2": ("model", "prompt", "phase2", "eval"),
    "phase3": ("model", "prompt", "phase3", "eval"),
    "evaluation": (),
}
# The steps whose outputs another step reads: redoing a step invalidates everything after it here.
INPUTS = {
    "baseline": (),
    "phase1": (),
    "phase2": ("phase1",),
    "phase3": ("phase2",),
    "evaluation": ("baseline", "phase1", "phase2", "phase3"),
}
SETTINGS = "settings.json"
MARKER = "DONE.json"


def step_settings(preset: dict[str, Any], step: str) -> dict[str, Any]:
    """The resolved preset sections `step` depends on, with their fingerprint."""
    sections = {name: preset[name] for name in STEP_SECTIONS[step]}
    text = json.dumps(sections, sort_keys=True, default=str)
    return {"sections": sections, "fingerprint": hashlib.sha256(text.encode()).hexdigest()[:16]}


def dependents(step: str) -> list[str]:
    """Every step that reads `step`'s outputs, directly or through another step, in series order."""
    found = {step}
    for name, _ in STEPS:
        if any(source in found for source in INPUTS[name]):
            found.add(name)
    return [name for name, _ in STEPS if name in found and name != step]


def differences(old: Any, new: Any, key: str = "") -> list[str]:
    """`key: old -> new` for each dotted key whose value differs between two nested dicts."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [
            line
            for name in sorted(set(old) | set(new), key=str)
            for line in differences(old.get(name), new.get(name), f"{key}.{name}" if key else str(name))
        ]
    return [] if old == new else [f"{key}: {old!r} -> {new!r}"]


@dataclass(frozen=True)
class RunDir:
    root: Path

    def __post_init__(self) -> None:
        object.__setattr__(self, "root", Path(self.root))

    def step_dir(self, step: str) -> Path:
        path = self.root / step
        path.mkdir(parents=True, exist_ok=True)
        return path

    def adapter(self, phase: str) -> Path:
        return self.root / phase / "adapter"

    def checkpoints(self, phase: str) -> Path:
        return self.root / phase / "checkpoints"

    def predictions(self, step: str, constrained: bool = False) -> Path:
        """The step's predictions; `constrained`: those decoded with eval.schema_constrained."""
        return self.root / step / ("predictions_constrained.jsonl" if constrained else "predictions.jsonl")

    def report(self, step: str, constrained: bool = False) -> Path:
        return self.root / step / ("report_constrained.json" if constrained else "report.json")

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def figures(self) -> Path:
        path = self.root / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def is_done(self, step: str) -> bool:
        return (self.root / step / MARKER).is_file()

    def mark_done(self, step: str, **info: Any) -> None:
        """Written last by a step, atomically: a later run skips the step, the next one uses its outputs."""
        info = {"step": step, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
        recorded = self.settings(step)
        if recorded is not None:
            info["fingerprint"] = recorded["fingerprint"]
        write_json_atomic(self.step_dir(step) / MARKER, info)

    def settings(self, step: str) -> dict[str, Any] | None:
        """What `<step>/settings.json` records (None if the step never started under `sqlft run`)."""
        path = self.root / step / SETTINGS
        return json.loads(path.read_text()) if path.is_file() else None

    def record_settings(self, step: str, preset: dict[str, Any]) -> None:
        write_json_atomic(self.step_dir(step) / SETTINGS, step_settings(preset, step))

    def require(self, step: str) -> None:
        if not self.is_done(step):
            raise FileNotFoundError(
                f"{self.root / step}: step {step!r} has not finished. Fix: run it first "
                f"(`sqlft run` runs the series in order and skips what is done)"
            )

    def adopt(self, previous_runs: list[str | Path], preset: dict[str, Any] | None = None) -> list[str]:
        """Copy finished steps, and a half-trained phase's newest complete checkpoint, from earlier run
        directories (e.g. the previous Kaggle kernel's output, attached read-only as an input).

        A step's folder is copied whole under a temporary name and renamed into place, its DONE.json
        written last: a copy cut short leaves the step unfinished here, never half there. A phase
        that a session limit or a kill cut short is adopted with only its newest complete checkpoint,
        when `preset` gives it the settings it was trained with; other settings are refused.
        """
        adopted = []
        for previous in map(Path, previous_runs):
            if not previous.is_dir():
                raise FileNotFoundError(_missing_previous_run(previous))
            for step, _ in STEPS:
                marker = previous / step / MARKER
                if marker.is_file() and not self.is_done(step):
                    copy_tree_atomic(previous / step, self.root / step, ignore=MARKER)
                    _writable(self.root / step)
                    write_json_atomic(self.root / step / MARKER, json.loads(marker.read_text()))
                    adopted.append(step)
                elif not marker.is_file() and not self.is_done(step):
                    taken = self._adopt_partial(previous, step, preset)
                    if taken:
                        adopted.append(f"{step} (half trained, from {taken})")
        return adopted

    def _adopt_partial(self, previous: Path, step: str, preset: dict[str, Any] | None) -> str | None:
        """Copy a cut-off phase with its newest complete checkpoint alone; returns that checkpoint's name.

        Nothing is taken when the earlier run has no complete checkpoint of `step`, or when this run
        already has one as new. Settings that differ from `preset`'s are refused (ValueError).
        """
        from sqlft.checkpoints import checkpoint_step, checkpoints, complete_checkpoint

        source = previous / step
        newest = complete_checkpoint(source, remove=False) if source.is_dir() else None
        if newest is None:
            return None
        here = complete_checkpoint(self.root / step, remove=False) if (self.root / step).is_dir() else None
        if here is not None and checkpoint_step(here) >= checkpoint_step(newest):
            return None
        recorded = json.loads((source / SETTINGS).read_text()) if (source / SETTINGS).is_file() else None
        if preset is not None and recorded is not None:
            wanted = step_settings(preset, step)
            if recorded["fingerprint"] != wanted["fingerprint"]:
                lines = differences(recorded["sections"], wanted["sections"])
                raise ValueError(
                    f"{source}: a half-trained {step} made with other settings ({'; '.join(lines)}), so it "
                    f"was not adopted. Fix: keep the old values to continue it, or leave {previous} out "
                    f"of previous_runs to start {step} over"
                )
        older = {p.name for p in checkpoints(source) if p != newest}
        with atomic_dir(self.root / step) as temp:
            shutil.copytree(source, temp, dirs_exist_ok=True, ignore=lambda _, names: older & set(names))
            _writable(temp)
        return newest.name

    def reset(self, step: str) -> None:
        """Forget a step's outputs, for `--force` (the evaluation step also owns metrics.json and figures)."""
        shutil.rmtree(self.root / step, ignore_errors=True)
        if step == "evaluation":
            self.metrics.unlink(missing_ok=True)
            shutil.rmtree(self.root / "figures", ignore_errors=True)


def _writable(folder: Path) -> None:
    """Give the owner write access to a copy of a read-only input (Kaggle's /kaggle/input), so that
    training can add checkpoints to it and a later adoption can replace it."""
    for path in [folder, *folder.rglob("*")]:
        if not path.is_symlink():
            path.chmod(path.stat().st_mode | stat.S_IWUSR)


def _missing_previous_run(path: Path) -> str:
    """The error for a `previous_runs` entry that does not exist, listing what its parent holds."""
    parent = next((p for p in path.parents if p.is_dir()), Path("/"))
    listing = sorted(p.name for p in parent.iterdir())[:20]
    return (
        f"previous_runs: {path} does not exist. {parent} holds: {', '.join(listing) or 'nothing'}. "
        f"Fix: pass the folder of the earlier run (on Kaggle, its output under /kaggle/input/<name>)"
    )
