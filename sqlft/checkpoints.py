"""Which `checkpoint-N/` folders of a phase can be resumed: shared by training, adoption and `sqlft run`.

Kept free of torch so that a run directory can be inspected (and adopted) before any model loads.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

# What the Trainer writes into a checkpoint, trainer_state.json last: all present means the save finished.
CHECKPOINT_FILES = ("trainer_state.json", "optimizer.pt", "scheduler.pt")
ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def checkpoint_problem(checkpoint: Path) -> str | None:
    """Why `checkpoint` cannot be resumed (a file the Trainer writes is missing or unreadable), or None."""
    missing = [name for name in CHECKPOINT_FILES if not (checkpoint / name).is_file()]
    if not any((checkpoint / name).is_file() for name in ADAPTER_WEIGHTS):
        missing.append("adapter weights")
    if missing:
        return f"no {', '.join(missing)}"
    try:
        json.loads((checkpoint / "trainer_state.json").read_text())
    except ValueError as error:
        return f"trainer_state.json unreadable ({error})"
    return None


def checkpoints(output_dir: Path) -> list[Path]:
    """checkpoint-N folders, newest first."""
    found = [p for p in Path(output_dir).glob("checkpoint-*") if p.is_dir() and p.name[11:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[11:]), reverse=True)


def checkpoint_step(checkpoint: Path) -> int:
    """The optimizer step a checkpoint folder was saved at (its name: checkpoint-N)."""
    return int(Path(checkpoint).name[11:])


def complete_checkpoint(output_dir: str | Path, log: Any = print, remove: bool = True) -> Path | None:
    """The newest checkpoint the Trainer finished writing; incomplete newer ones are removed (when
    `remove`), with a message.

    A kill or a full disk inside a save leaves a checkpoint without its trainer_state.json (written
    last) or with a part of it; resuming from it fails, and it would block every rerun.
    """
    for checkpoint in checkpoints(Path(output_dir)):
        problem = checkpoint_problem(checkpoint)
        if problem is None:
            return checkpoint
        if remove:
            log(f"{checkpoint}: incomplete ({problem}), left by an interrupted save; removed")
            shutil.rmtree(checkpoint, ignore_errors=True)
    return None
