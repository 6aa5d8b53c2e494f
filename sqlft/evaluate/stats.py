"""Uncertainty of accuracies: how far a few hundred questions let a number be trusted."""

from __future__ import annotations

import math
from collections.abc import Sequence

Z95 = 1.96


def interval(p: float, n: int) -> float:
    """Half-width of the normal-approximation 95% interval of an accuracy `p` over `n` questions."""
    return Z95 * math.sqrt(p * (1 - p) / n) if n else float("nan")


def paired_difference(after: Sequence[bool], before: Sequence[bool]) -> tuple[float, float]:
    """Mean gain of `after` over `before` on the same questions, with its 95% half-width.

    Paired: the questions both got right or both got wrong cancel, so the interval is narrower
    than two separate intervals would suggest.
    """
    if len(after) != len(before):
        raise ValueError(f"paired outcomes need the same questions: {len(after)} vs {len(before)}")
    n = len(after)
    if n == 0:
        return float("nan"), float("nan")
    diffs = [int(a) - int(b) for a, b in zip(after, before, strict=True)]
    mean = sum(diffs) / n
    variance = sum((d - mean) ** 2 for d in diffs) / (n - 1) if n > 1 else 0.0
    return mean, Z95 * math.sqrt(variance / n)
