"""BIRD's R-VES (reward-based valid efficiency score, mini-dev's `evaluation_ves.py`; beta, say its
authors): how fast a correct prediction runs relative to its gold.

For each matched record both queries run `repeats` times (the official: 100), alternately; the
ratios gold_time / pred_time outside mean ± 3 standard deviations are dropped and the rest averaged;
the mean ratio falls into a reward bucket (REWARD_BUCKETS); an unmatched record gets 0. R-VES is
100 x the mean of sqrt(reward) over all records. Times here cover execute and fetch on one open
read-only connection (the official opens a fresh connection for every run and times closing it
too), so compare R-VES values measured the same way, on the same machine. Where every ratio is the
same the official's outlier filter keeps none and scores 0; here they are all kept.
"""

from __future__ import annotations

import math
import statistics
import time
from typing import Any

from sqlft.evaluate.execution import Executor
from sqlft.sqlexec import QueryError, run_query

# (lowest time ratio gold/pred, reward), first match wins; a ratio under 0.25 earns 0.25
REWARD_BUCKETS = ((2.0, 1.25), (1.0, 1.0), (0.5, 0.75), (0.25, 0.5), (0.0, 0.25))


def reward(ratio: float) -> float:
    """The reward for a mean time ratio (gold time / predicted time) of a matched prediction."""
    return next(value for low, value in REWARD_BUCKETS if ratio >= low)


def _seconds(conn, sql: str, timeout_s: float) -> float:
    start = time.perf_counter()
    run_query(conn, sql, timeout_s, max_rows=None)
    return max(time.perf_counter() - start, 1e-9)


def time_ratio(conn, pred: str, gold: str, repeats: int, timeout_s: float) -> float:
    """Mean of gold_time / pred_time over `repeats` alternating runs, outliers (3 sigma) left out."""
    ratios = [_seconds(conn, gold, timeout_s) / _seconds(conn, pred, timeout_s) for _ in range(repeats)]
    if len(ratios) > 1 and statistics.pstdev(ratios) > 0:
        mean, spread = statistics.fmean(ratios), 3 * statistics.pstdev(ratios)
        ratios = [r for r in ratios if mean - spread < r < mean + spread] or ratios
    return statistics.fmean(ratios)


def add_ves(records: list[dict[str, Any]], executor: Executor, repeats: int) -> None:
    """Give every scored record `ves_reward` (0 unless it matched) and matched ones `time_ratio`."""
    try:
        for record in records:
            if record.get("error_kind") in ("input", "gold", "unknown_db", "context"):
                continue
            record["ves_reward"] = 0.0
            if not record.get("exec_match"):
                continue
            try:
                _, conn = executor.connections(record.get("db_id"), record.get("context"))[0]
                ratio = time_ratio(conn, record["pred"], record["gold"], repeats, executor.timeout_s)
            except (QueryError, LookupError):
                continue
            record["time_ratio"] = ratio
            record["ves_reward"] = reward(ratio)
    finally:
        executor.close()


def r_ves(rewards: list[float]) -> float | None:
    """100 x mean of sqrt(reward), BIRD's formula."""
    return 100 * sum(math.sqrt(r) for r in rewards) / len(rewards) if rewards else None


def summarize_ves(records: list[dict[str, Any]], repeats: int) -> dict[str, Any]:
    """R-VES overall and per difficulty, with the buckets and repeat count it was measured with."""
    timed = [r for r in records if "ves_reward" in r]
    groups: dict[str, list[float]] = {}
    for record in timed:
        groups.setdefault(record.get("difficulty") or "unknown", []).append(record["ves_reward"])
    return {
        "r_ves": r_ves([r["ves_reward"] for r in timed]),
        "n": len(timed),
        "repeats": repeats,
        "by_difficulty": {level: r_ves(values) for level, values in groups.items()},
        "buckets": {f"time ratio >= {low:g}": value for low, value in REWARD_BUCKETS},
        "note": "times cover execute and fetch on one open connection; compare runs on one machine",
    }
