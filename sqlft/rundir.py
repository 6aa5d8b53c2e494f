"""The run directory: where each step of the series leaves its outputs for the next one.

run_dir/
  preset.yaml                 the resolved preset the run used
  00_baseline.ipynb ...       executed notebooks
  baseline/  phase1/  phase2/ predictions.jsonl, report.json, DONE.json; phases add adapter/,
                              checkpoints/, train_log.json, samples.csv
  metrics.json, figures/      written by the evaluation step
"""

from __future__ import annotations

import json
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# (step name, notebook stem) in the order the series runs
STEPS = [
    ("baseline", "00_baseline"),
    ("phase1", "01_phase1_syntax"),
    ("phase2", "02_phase2_spider"),
    ("evaluation", "03_evaluation"),
]


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

    def predictions(self, step: str) -> Path:
        return self.root / step / "predictions.jsonl"

    def report(self, step: str) -> Path:
        return self.root / step / "report.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.json"

    @property
    def figures(self) -> Path:
        path = self.root / "figures"
        path.mkdir(parents=True, exist_ok=True)
        return path

    def is_done(self, step: str) -> bool:
        return (self.root / step / "DONE.json").is_file()

    def mark_done(self, step: str, **info: Any) -> None:
        """Written last by a step: a later run skips the step, the next step may use its outputs."""
        info = {"step": step, "finished": time.strftime("%Y-%m-%dT%H:%M:%S%z"), **info}
        (self.step_dir(step) / "DONE.json").write_text(json.dumps(info, indent=2, default=str) + "\n")

    def require(self, step: str) -> None:
        if not self.is_done(step):
            raise FileNotFoundError(
                f"{self.root / step}: step {step!r} has not finished. Fix: run it first "
                f"(`sqlft run` runs the series in order and skips what is done)"
            )

    def adopt(self, previous_runs: list[str | Path]) -> list[str]:
        """Copy finished steps from earlier run directories (e.g. the previous Kaggle kernel's output)."""
        adopted = []
        for previous in map(Path, previous_runs):
            for step, _ in STEPS:
                if (previous / step / "DONE.json").is_file() and not self.is_done(step):
                    shutil.copytree(previous / step, self.root / step, dirs_exist_ok=True)
                    adopted.append(step)
        return adopted

    def reset(self, step: str) -> None:
        """Forget a step's outputs, for `--force`."""
        shutil.rmtree(self.root / step, ignore_errors=True)
