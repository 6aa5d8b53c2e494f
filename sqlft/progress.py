"""Live training progress for `sqlft run`: the trainer writes a small file, the pipeline prints it.

The notebook runs in a papermill kernel whose output reaches the console only when a cell ends, so
a phase's training writes `<phase>/progress.json` (step/total, loss, seconds left) after each step
and `sqlft run` polls it and prints one line in place.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from sqlft.atomic import write_json_atomic


class ProgressFile(TrainerCallback):
    """Writes {"step", "max_steps", "loss", "seconds_left"} to `path` after each optimizer step."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.loss: float | None = None
        self.started: float | None = None
        self.first_step = 0

    def on_train_begin(self, args, state, control, **kwargs):
        self.started, self.first_step = time.monotonic(), state.global_step

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs and "loss" in logs:
            self.loss = logs["loss"]

    def on_step_end(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        done = state.global_step - self.first_step
        per_step = (time.monotonic() - self.started) / done if done else 0.0
        left = max(state.max_steps - state.global_step, 0) * per_step
        write_json_atomic(
            self.path,
            {
                "step": state.global_step,
                "max_steps": state.max_steps,
                "loss": self.loss,
                "seconds_left": left,
            },
            indent=None,
        )


def progress_line(progress: dict[str, Any]) -> str:
    loss = f"loss {progress['loss']:.3f}" if progress.get("loss") is not None else "loss -"
    left = progress.get("seconds_left", 0)
    return f"step {progress['step']}/{progress['max_steps']}  {loss}  about {left / 60:.1f} min left"


class ProgressPrinter:
    """While in a `with` block, prints `label: <progress line>` whenever `path` changes (a thread)."""

    def __init__(self, path: Path, label: str, write: Callable[[str], None], every: float = 2.0):
        self.path, self.label, self.write, self.every = path, label, write, every
        self.printed = False
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def _poll(self) -> None:
        last = None
        while not self._stop.wait(self.every):
            try:
                text = self.path.read_text()
                line = progress_line(json.loads(text))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if text != last:
                self.write(f"{self.label}: {line}")
                last, self.printed = text, True

    def __enter__(self) -> ProgressPrinter:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
