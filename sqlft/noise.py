"""Known third-party noise, silenced where it starts, so notebooks and logs show sqlft's own words.

Each entry is a message that says nothing about the run: arguments that transformers 5.24 renamed
(gradient_checkpointing to activation_checkpointing, past_key_values to cache) and that peft, TRL
and sqlft's trainer settings still pass under the old names, which older 5.x releases need; tqdm
asking for ipywidgets in a headless kernel; the Trainer noting that file times cannot order
checkpoints; and the kernels-community family (`KERNELS_FAMILY`).
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
    # checkpoint rotation on tmpfs-like filesystems; sqlft orders checkpoints by step number itself
    ("transformers.trainer_utils", "mtime may not be reliable on this filesystem"),
)


# The kernels-community family, one rule keyed on what it is, not on its wording. On CPUs with
# avx512_bf16, bitsandbytes asks the `kernels` package for an optional CPU kernel from the Hub repo
# kernels-community/quantization-bitsandbytes and falls back to its own when that fails. Offline,
# `kernels` explains itself (kernels 0.19: "Skipping publisher trust check ...") and bitsandbytes
# reports the fallback ("Failed to load CPU gemm_4bit_forward from kernels-community ..."). Neither
# changes a result. So: whatever the `kernels` package logs below ERROR, and whatever bitsandbytes
# logs that names kernels-community. An error from `kernels`, or any other unknown line, still shows.
KERNELS_FAMILY = ("kernels", "bitsandbytes", "kernels-community")


class _DropMessage(logging.Filter):
    def __init__(self, start: str):
        super().__init__()
        self.start = start

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self.start)


class _DropMention(logging.Filter):
    """Drops the records of a logger and its children whose message names `word`."""

    def __init__(self, package: str, word: str):
        super().__init__()
        self.package, self.word = package, word

    def filter(self, record: logging.LogRecord) -> bool:
        in_package = record.name == self.package or record.name.startswith(self.package + ".")
        return not (in_package and self.word in record.getMessage())


def _silence_kernels_family() -> None:
    """Quiets the `kernels` package below ERROR and bitsandbytes' kernels-community fallback notice."""
    kernels, bitsandbytes, word = KERNELS_FAMILY
    # A logger's level is inherited by its children (kernels._internals.hf_hub, ...); its filters are not.
    logging.getLogger(kernels).setLevel(logging.ERROR)
    # bitsandbytes logs the fallback on a child logger; a filter acts only on the logger it is added to.
    for name in (bitsandbytes, f"{bitsandbytes}.backends.cpu.ops"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMention) for f in logger.filters):
            logger.addFilter(_DropMention(bitsandbytes, word))


def silence_known_noise() -> None:
    """Install the filters (idempotent); loggers are configured before their modules import."""
    for category, message in WARNINGS:
        warnings.filterwarnings("ignore", message=message, category=category)
    for name, start in LOG_LINES:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _DropMessage) and f.start == start for f in logger.filters):
            logger.addFilter(_DropMessage(start))
    _silence_kernels_family()
