"""Pick one SQL from n candidates by executing them: self-consistency voting and
execution-guided fallback. Generation is elsewhere; `run` executes one query and returns its
rows or raises (e.g. `Executor(db_dir).rows` bound to a record's database, see `runner`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

Run = Callable[[str], list[tuple]]
VOTES = {"execution": "self_consistency", "executable": "execution_guided"}  # eval.vote -> its rule
VOTE_RULE = "majority, results holding a value first"  # what a benchmark result says its vote was


@dataclass
class Choice:
    """The chosen candidate; `index` is -1 when there were no candidates."""

    sql: str
    index: int
    votes: int = 0
    executed: int = 0
    errors: list[str | None] = field(default_factory=list)


def _value(v: Any) -> str:
    return repr(int(v)) if isinstance(v, float) and v.is_integer() else repr(v)


def denotation(rows: list[tuple]) -> tuple:
    """A key equal for results that hold the same bag of rows, whatever the row and column
    order; values compare as in execution match (1 == 1.0, 1 != '1')."""
    return tuple(sorted(repr(sorted(map(_value, row))) for row in rows))


def execute(candidates: Sequence[str], run: Run) -> list[list[tuple] | Exception]:
    """Each candidate's rows, or the exception it raised (any failure means "does not execute")."""
    results: list[list[tuple] | Exception] = []
    for sql in candidates:
        try:
            results.append(run(sql))
        except Exception as error:
            results.append(error)
    return results


def has_value(rows: list[tuple]) -> bool:
    """Whether a result holds a value: not no rows, nor only NULLs (an aggregate over no rows)."""
    return any(value is not None for row in rows for value in row)


def self_consistency(candidates: Sequence[str], run: Run, scores: Sequence[float] | None = None) -> Choice:
    """Majority vote over execution results, among those holding a value where any does (as
    execution-guided decoding counts an empty result a failure, Wang et al. 2018: on bench_peers'
    saved candidates of five arms, 0 to 4 more right of 239, never fewer); ties go to the group
    holding the best score, then to the earliest candidate. With nothing executable, the
    best-scored candidate."""
    if not candidates:
        return Choice("", -1)
    scores = list(scores) if scores is not None else [0.0] * len(candidates)
    if len(scores) != len(candidates):
        raise ValueError(f"{len(scores)} scores for {len(candidates)} candidates")
    results = execute(candidates, run)
    errors = [str(r) if isinstance(r, Exception) else None for r in results]
    groups: dict[tuple, list[int]] = {}
    valued: set[tuple] = set()  # the results that hold a value
    for i, rows in enumerate(results):
        if not isinstance(rows, Exception):
            key = denotation(rows)
            groups.setdefault(key, []).append(i)
            if has_value(rows):
                valued.add(key)
    executed = sum(len(g) for g in groups.values())
    if not groups:
        best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
        return Choice(candidates[best], best, 0, 0, errors)

    def rank(key: tuple) -> tuple[Any, ...]:
        members = groups[key]
        return (key in valued, len(members), max(scores[i] for i in members), -min(members))

    winner = groups[max(groups, key=rank)]
    best = max(winner, key=lambda i: (scores[i], -i))
    return Choice(candidates[best], best, len(winner), executed, errors)


def execution_guided(candidates: Sequence[str], run: Run) -> Choice:
    """The first candidate that executes without error, else the first candidate."""
    errors: list[str | None] = []
    for i, sql in enumerate(candidates):
        try:
            run(sql)
        except Exception as error:
            errors.append(str(error))
            continue
        return Choice(sql, i, 1, 1, errors + [None])
    return Choice(candidates[0], 0, 0, 0, errors) if candidates else Choice("", -1)


def best_of(summary: dict[str, Any], samples: int, vote: str) -> dict[str, Any] | None:
    """The best-of-n row of an evaluation summary: the accuracy of the candidate `vote` picks from
    `samples` sampled ones, beside greedy's; None where no record had candidates."""
    row = summary.get(VOTES[vote])
    if not row:
        return None
    rule = {"rule": VOTE_RULE} if vote == "execution" else {}
    return {"samples": samples, "vote": vote, **rule, **row, "greedy_exec_accuracy": summary["exec_accuracy"]}


def runner(executor: Any, db_id: str | None = None, context: Any = None, max_rows: int = 10_000) -> Run:
    """`run` for one record from an `Executor` (its databases, time limit and clean-up)."""
    return lambda sql: executor.rows(sql, db_id=db_id, context=context, max_rows=max_rows)
