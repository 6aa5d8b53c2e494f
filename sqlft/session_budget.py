"""Whether each Kaggle kernel fits one 12-hour session, at a throughput chosen to be pessimistic.

A kernel loads the model, trains (a phase's `max_minutes` caps it), decodes the dev set and saves. The
sum must stay under 11 hours, an hour short of Kaggle's limit, so that the kernel ends by itself with
its output saved. The throughput is an assumption until the GPU check measures one: training at 10%
of a T4's 65 TFLOPS fp16 peak (gpu_check's estimate assumes 15%), decoding at 25% of its 320 GB/s
(gpu_check: 50%), the hub at 25 MB/s. `budget_minutes` is what a phase's `max_minutes` may be.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from sqlft.plan import QUANT_BYTES, ModelShape

SESSION_HOURS = 12  # Kaggle's GPU session limit
TARGET_HOURS = 11  # every kernel ends by itself before this
T4_FP16_FLOPS = 65e12  # NVIDIA T4 datasheet, tensor-core mixed precision peak
T4_BANDWIDTH = 320e9  # bytes/s
TRAIN_UTILISATION = 0.10  # pessimistic: QLoRA on a T4 (NF4 dequantisation, checkpoint recompute)
DECODE_UTILISATION = 0.25  # pessimistic share of the bandwidth one decode step reaches
DOWNLOAD_BYTES_S = 25e6  # the hub, pessimistic; the model is read in 16 bits and quantised on load
START_MINUTES = 10.0  # pip install, imports, data preparation
SAVE_MINUTES = 10.0  # adapter, last checkpoint, executed notebook; Kaggle copying /kaggle/working
DEV_QUESTIONS = {"spider": 1034, "bird": 500}  # Spider dev; BIRD mini-dev
TRAIN_EXAMPLES = {"spider": 8659, "bird": 9428}  # train_spider.json + train_others.json; BIRD train.json
# gpu_check: Spider dev by a BPE tokenizer; gretel assumed. A source not listed (BIRD: not measured) counts
# every example at the preset's max_length, the most a kept record can have.
TOKENS_PER_EXAMPLE = {"spider": 400, "gretel": 300}
STEP_PHASES = {"baseline": None, "phase1": "phase1", "phase2": "phase2", "phase3": "phase3"}


@dataclass
class KernelBudget:
    """One kernel's minutes: load, train (capped by max_minutes), dev predictions, save."""

    step: str
    load: float
    train: float
    predict: float
    save: float
    full_data_train: float | None = None  # minutes all the planned data would take
    max_minutes: float = 0.0

    @property
    def total(self) -> float:
        return self.load + self.train + self.predict + self.save

    @property
    def fits(self) -> bool:
        return self.total <= TARGET_HOURS * 60

    @property
    def planned_share(self) -> float | None:
        """Share of the planned data the budget lets this kernel see, at the pessimistic rate."""
        if not self.full_data_train:
            return None
        return min(1.0, self.train / self.full_data_train)


def load_minutes(shape: ModelShape) -> float:
    return START_MINUTES + shape.total_params() * 2 / DOWNLOAD_BYTES_S / 60


def predict_minutes(preset, shape: ModelShape) -> float:
    """Greedy decoding of the dev set on one GPU (each step reads the 4-bit weights), times the extra
    passes the preset asks for (sampled candidates, schema-constrained decoding)."""
    e = preset.eval
    known = DEV_QUESTIONS.get(e.data.source)
    questions = min(e.data.limit or known, known) if known else e.data.limit or 0
    weight_bytes = shape.block_linear_params() * QUANT_BYTES["nf4"] + shape.embedding_params() * 2
    step_s = weight_bytes / (T4_BANDWIDTH * DECODE_UTILISATION)
    passes = (1 + (e.samples if e.samples > 1 else 0)) * (2 if e.schema_constrained else 1)
    return math.ceil(questions / e.batch_size) * e.max_new_tokens * step_s * passes / 60


def full_data_minutes(preset, phase: str, shape: ModelShape, gpus: int) -> float | None:
    """Minutes the phase's planned data takes at the pessimistic rate (6 FLOPs per parameter per token)."""
    section = getattr(preset, phase)
    source = section.data.source
    examples = section.data.limit or TRAIN_EXAMPLES.get(source, 0)
    if not examples:
        return None
    tokens = examples * TOKENS_PER_EXAMPLE.get(source, preset.prompt.max_length) * section.epochs
    if phase == "phase3":  # each question's group of completions: generated, then trained on
        tokens *= section.num_generations * 2
    processes = gpus if preset.model.placement in ("ddp", "auto") else 1
    return 6 * shape.total_params() * tokens / (T4_FP16_FLOPS * TRAIN_UTILISATION * processes) / 60


def budget_minutes(preset, phase: str, shape: ModelShape) -> int:
    """The largest `max_minutes` (a multiple of 10) with which the phase's kernel ends within 11 h."""
    spare = TARGET_HOURS * 60 - load_minutes(shape) - predict_minutes(preset, shape) - SAVE_MINUTES
    return int(spare // 10 * 10)


def kernel_budgets(preset, shape: ModelShape, gpus: int = 2) -> list[KernelBudget]:
    """The series' kernels that train or predict, each against one session."""
    rows = []
    for step, phase in STEP_PHASES.items():
        if phase == "phase3" and not preset.phase3.enabled:
            continue
        full = full_data_minutes(preset, phase, shape, gpus) if phase else None
        cap = getattr(preset, phase).max_minutes if phase else 0.0
        train = (min(full, cap) if full is not None and cap else cap or full or 0.0) if phase else 0.0
        rows.append(
            KernelBudget(
                step, load_minutes(shape), train, predict_minutes(preset, shape), SAVE_MINUTES, full, cap
            )
        )
    return rows


def budget_table(preset, shape: ModelShape, gpus: int = 2) -> str:
    """`sqlft plan`'s per-kernel table: hours per part, the total against 11 h, the data each phase sees."""
    head = (
        f"{'kernel':<9} {'load':>5} {'train':>6} {'dev':>5} {'save':>5} {'total':>6}  "  # hours
        f"{'max_minutes':>11}  planned data seen"
    )
    lines = [head]
    for row in kernel_budgets(preset, shape, gpus):
        share = "" if row.planned_share is None else f"{row.planned_share:.0%}"
        cap = f"{row.max_minutes:g}" if row.max_minutes else ("none" if row.step != "baseline" else "")
        verdict = "" if row.fits else f"  over {TARGET_HOURS} h: lower max_minutes"
        lines.append(
            f"{row.step:<9} {row.load / 60:>5.2f} {row.train / 60:>6.2f} {row.predict / 60:>5.2f} "
            f"{row.save / 60:>5.2f} {row.total / 60:>6.2f}  {cap:>11}  {share}{verdict}"
        )
    lines.append(
        f"hours at a pessimistic rate: training at {TRAIN_UTILISATION:.0%} of a T4's fp16 peak, decoding at "
        f"{DECODE_UTILISATION:.0%} of its bandwidth, the hub at {DOWNLOAD_BYTES_S / 1e6:g} MB/s; each kernel "
        f"must end within {TARGET_HOURS} h of Kaggle's {SESSION_HOURS}. A phase its budget stops is finished "
        "with its adapter; one cut off earlier continues in a part-2 kernel (README: On Kaggle)."
    )
    return "\n".join(lines)
