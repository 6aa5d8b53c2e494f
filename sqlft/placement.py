"""Where a model goes: one GPU, one model split over two GPUs, one replica per DDP process, or CPU.

The choice comes from a preset value and the GPUs visible; each choice carries a sentence saying
what will run and why, so notebooks can print it.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

MODES = ("auto", "single", "split", "ddp", "cpu")


@dataclass
class Placement:
    mode: str  # what will run: single, split, ddp or cpu
    device_map: str | dict | None
    max_memory: dict | None = None
    sentence: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def on_gpu(self) -> bool:
        return self.mode != "cpu"


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def choose_placement(
    mode: str = "auto",
    *,
    max_memory_per_gpu: str | None = None,
    gpu_count: int | None = None,
    local_rank: int | None = None,
) -> Placement:
    """Turn a preset's placement (`auto`, `single`, `split`, `ddp`, `cpu`) into a device_map.

    Asking for more GPUs than are visible degrades (split -> single -> cpu) and says so, so a
    Kaggle preset still runs on a laptop. `max_memory_per_gpu` (e.g. "13GiB") caps each GPU in
    split mode, leaving room for activations. DDP reads LOCAL_RANK, which `accelerate launch`
    and `torchrun` set for each process. A single process with several GPUs visible pins GPU 0 (the
    Trainer then counts one device: `sqlft.train.pin_one_gpu`), never a DataParallel the trainers refuse.
    """
    if mode not in MODES:
        raise ValueError(f"unknown placement {mode!r}; choose one of {', '.join(MODES)}")
    gpus = _gpu_count() if gpu_count is None else gpu_count
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("LOCAL_RANK", "0")) if local_rank is None else local_rank
    notes: list[str] = []
    if mode == "auto":
        mode = "cpu" if gpus == 0 else "ddp" if world > 1 else "single"
        notes.append(f"placement 'auto' picked '{mode}' ({gpus} GPU(s), WORLD_SIZE={world})")
        if mode == "single" and gpus > 1:
            notes.append(
                f"sqlft's training step starts one replica per GPU under `accelerate launch` (DDP) for "
                f"'auto'; a process without a launcher, like this one, pins GPU 0 ({gpus} visible)"
            )
    elif mode == "single" and gpus > 1 and world == 1:
        notes.append(f"placement 'single' pins GPU 0: the trainer uses one of the {gpus} visible GPUs")
    if mode in ("single", "split", "ddp") and gpus == 0:
        notes.append(f"placement '{mode}' asked for a GPU but none is visible: running on CPU")
        mode = "cpu"
    if mode == "split" and gpus < 2:
        notes.append("placement 'split' needs two GPUs but only one is visible: using one GPU")
        mode = "single"
    if mode == "ddp" and rank >= gpus:
        raise ValueError(f"LOCAL_RANK={rank} but only {gpus} GPU(s) are visible; launch one process per GPU")

    if mode == "cpu":
        return Placement("cpu", {"": "cpu"}, None, _join(notes, "the whole model runs on the CPU"), notes)
    if mode == "single":
        return Placement("single", {"": 0}, None, _join(notes, "the whole model sits on GPU 0"), notes)
    if mode == "ddp":
        sentence = f"one full replica per process (DDP): this process (LOCAL_RANK={rank}) uses GPU {rank}"
        return Placement("ddp", {"": rank}, None, _join(notes, sentence), notes)
    max_memory = {i: max_memory_per_gpu for i in range(gpus)} if max_memory_per_gpu else None
    cap = f", at most {max_memory_per_gpu} each" if max_memory_per_gpu else ""
    sentence = f"one model split layer-wise over {gpus} GPUs (device_map='auto'{cap}); one process trains it"
    return Placement("split", "auto", max_memory, _join(notes, sentence), notes)


def _join(notes: list[str], sentence: str) -> str:
    return "; ".join([*notes, sentence]) + "."
