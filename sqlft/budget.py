"""A phase trained for a time budget: it stops when the time is spent, and a decaying learning
rate decays over that time rather than over an epoch count the budget will cut short.

Progress is the larger of the time spent and the steps done, each as a share of its budget, so the
rate reaches its end whichever budget runs out first. Under data parallelism every process uses
the slowest process's clock, so all of them stop at the same step with the same rate.
"""

from __future__ import annotations

import math
import time
from typing import Any

import torch
from transformers import TrainerCallback
from transformers.trainer_callback import ExportableState

DECAYS = ("cosine", "linear")


def schedule_factor(progress: float, decay: str, warmup: float = 0.0) -> float:
    """The learning-rate multiplier at `progress` (0 to 1) of the budget: linear warmup, then decay to 0."""
    if progress < warmup:
        return progress / warmup
    rest = min(1.0, (progress - warmup) / (1.0 - warmup)) if warmup < 1 else 1.0
    return 0.5 * (1.0 + math.cos(math.pi * rest)) if decay == "cosine" else 1.0 - rest


class TimeBudget(TrainerCallback, ExportableState):
    """Stops training once `minutes` have passed; the phase still ends as finished, with its adapter.

    With `decay` ("cosine" or "linear") it also drives the trainer's learning rate: call `attach`
    with the trainer, whose scheduler must be a constant LambdaLR (lr_scheduler_type="constant").
    The time trained so far travels in each checkpoint (transformers saves an `ExportableState`
    callback's `state()` in trainer_state.json); `restore` reads it back, so a resumed phase continues
    the same budget and schedule.
    """

    def __init__(self, minutes: float, decay: str | None = None, warmup: float = 0.0):
        if decay is not None and decay not in DECAYS:
            raise ValueError(f"decay {decay!r}: use one of {DECAYS} or None")
        self.seconds = minutes * 60
        self.decay, self.warmup = decay, warmup
        self.trainer: Any = None
        self.started: float | None = None
        self.time_share = 0.0  # of the minutes, as of the last step (the slowest process's clock)
        self.before = 0.0  # seconds trained in earlier sessions, from the checkpoint resumed

    def state(self) -> dict[str, Any]:
        """Saved in each checkpoint by process zero alone, so it reads the last step's shared clock."""
        return {
            "args": {"minutes": self.seconds / 60, "decay": self.decay, "warmup": self.warmup},
            "attributes": {"before": self.time_share * self.seconds},
        }

    def restore(self, trainer_state: dict[str, Any]) -> None:
        """Continue the budget saved in a checkpoint's trainer_state.json (a new budget if it has none)."""
        saved = trainer_state.get("stateful_callbacks", {}).get(type(self).__name__)
        if saved:
            self.before = float(saved["attributes"]["before"])
            self.time_share = self.before / self.seconds

    @property
    def spent(self) -> bool:
        return self.time_share >= 1

    def attach(self, trainer: Any) -> None:
        self.trainer = trainer

    def on_train_begin(self, args, state, control, **kwargs):
        self.started = time.monotonic()
        if self.decay:
            scheduler = self.trainer.lr_scheduler
            scheduler.lr_lambdas = [self._factor] * len(scheduler.base_lrs)
            for group, base in zip(scheduler.optimizer.param_groups, scheduler.base_lrs, strict=True):
                group["lr"] = base * self._factor(scheduler.last_epoch)  # the first step's rate
            scheduler._last_lr = [group["lr"] for group in scheduler.optimizer.param_groups]  # what is logged

    def on_step_end(self, args, state, control, **kwargs):
        self.time_share = self._elapsed() / self.seconds
        if self.spent:
            control.should_training_stop = True
        return control

    def _factor(self, step: int) -> float:
        max_steps = self.trainer.state.max_steps
        progress = max(self.time_share, step / max_steps if max_steps > 0 else 0.0)
        return schedule_factor(progress, self.decay, self.warmup)

    def _elapsed(self) -> float:
        seconds = self.before + time.monotonic() - self.started
        accelerator = getattr(self.trainer, "accelerator", None)
        if accelerator is not None and accelerator.num_processes > 1:
            seconds = accelerator.reduce(torch.tensor(seconds, device=accelerator.device), "max").item()
        return seconds
