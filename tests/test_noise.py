"""The known-noise filters drop the lines they name and nothing else."""

import logging

import pytest

from sqlft.noise import silence_known_noise


def shown(logger_name: str, level: int, message: str) -> list[str]:
    """What a handler on the emitting logger receives, after sqlft's level and filters.

    The handler sits on that logger itself: a library may stop its records from reaching the root
    (transformers does once imported), which must not make a dropped line look dropped.
    """
    silence_known_noise()
    seen: list[str] = []

    class Keep(logging.Handler):
        def emit(self, record):
            seen.append(f"{record.name}: {record.getMessage()}")

    logger = logging.getLogger(logger_name)
    handler = Keep(level=logging.DEBUG)
    logger.addHandler(handler)
    try:
        logger.log(level, message)
    finally:
        logger.removeHandler(handler)
    return seen


@pytest.mark.parametrize(
    "logger_name, message",
    [
        # kernels 0.19.1, offline: the line that failed the report test on a fresh install
        (
            "kernels._internals.hf_hub",
            "Skipping publisher trust check for 'kernels-community/quantization-bitsandbytes' because "
            "Hugging Face Hub is in offline mode.",
        ),
        # the same package, reworded or from another of its modules
        ("kernels._internals.digest", "Cannot cache kernel digest verifications: read-only file system"),
        ("kernels", "Publisher trust cannot be verified while offline"),
        # bitsandbytes' own fallback notice on CPUs with avx512_bf16
        (
            "bitsandbytes.backends.cpu.ops",
            "Failed to load CPU gemm_4bit_forward from kernels-community: offline. Please make sure ...",
        ),
        ("bitsandbytes", "Could not fetch kernels-community/quantization-bitsandbytes (offline)"),
    ],
)
def test_kernels_community_family_is_dropped(logger_name, message):
    assert shown(logger_name, logging.WARNING, message) == []


@pytest.mark.parametrize(
    "logger_name, level, message",
    [
        ("kernels._internals.load", logging.ERROR, "Kernel kernels-community/x failed its signature check"),
        ("bitsandbytes.backends.cpu.ops", logging.WARNING, "4-bit weights were repacked"),
        ("transformers.modeling_utils", logging.WARNING, "Some weights were not initialized"),
        ("kernelsx", logging.WARNING, "a package whose name only starts like kernels"),
    ],
)
def test_other_lines_still_show(logger_name, level, message):
    assert shown(logger_name, level, message) == [f"{logger_name}: {message}"]
