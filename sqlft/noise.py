"""Known third-party noise, silenced where it starts, so notebooks and logs show sqlft's own words.

Each entry is a message that says nothing about the run: arguments that transformers 5.24 renamed
(gradient_checkpointing to activation_checkpointing, past_key_values to cache) and that peft, TRL
and sqlft's trainer settings still pass under the old names, which older 5.x releases need; tqdm
asking for ipywidgets in a headless kernel; bitsandbytes announcing on every import, on CPUs with
avx512_bf16, that an optional kernels package is absent, and kernels (0.19) that it skipped a
publisher check because the hub is offline; the Trainer noting that file times cannot
order checkpoints.
"""

from __future__ import annotations

import logging
import warnings

WARNINGS = (
    (FutureWarning, r"`(is_)?gradient_checkpointing(_kwargs)?` is deprecated"),
    (FutureWarning, r"`past_key_values` is deprecated"),  # TRL's GRPO still passes the old name
    (Warning, r"IProgress not found"),  # tqdm's TqdmWarning, raised when huggingface_hub imports tqdm.auto
)
LOG_LINES = (
    ("bitsandbytes.backends.cpu.ops", "Failed to load CPU gemm_4bit_forward from kernels-community"),
    # kernels 0.19 on a bitsandbytes import with the hub offline: it says offline, nothing about the run
    ("kernels._internals.hf_hub", "Skipping publisher trust check for"),
    # checkpoint rotation on tmpfs-like filesystems; sqlft orders checkpoints by step number itself
    ("transformers.trainer_utils", "mtime may not be reliable on this filesystem"),
)


class _DropMessage(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


def silence_known_noise() -> None:
    """Install the filters (idempotent); loggers are configured before their modules import."""
    for category, message in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, start in LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.start == start for f in logger.filters):
            logger.addFilter(_DropMessage(start))
