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


def _execute(candidates: Sequence[str], run: Run) -> list[tuple | Exception]:
    keys: list[tuple | Exception] = []
    for sql in candidates:
        try:
            keys.append(denotation(run(sql)))
        except Exception as error:  # any failure means "does not execute"
            keys.append(error)
    return keys


def self_consistency(candidates: Sequence[str], run: Run, scores: Sequence[float] | None = None) -> Choice:
    """Majority vote over execution results; ties go to the group holding the best score,
    then to the earliest candidate. With nothing executable, the best-scored candidate."""
    if not candidates:
        return Choice("", -1)
    scores = list(scores) if scores is not None else [0.0] * len(candidates)
    if len(scores) != len(candidates):
        raise ValueError(f"{len(scores)} scores for {len(candidates)} candidates")
    keys = _execute(candidates, run)
    errors = [str(k) if isinstance(k, Exception) else None for k in keys]
    groups: dict[tuple, list[int]] = {}
    for i, key in enumerate(keys):
        if not isinstance(key, Exception):
            groups.setdefault(key, []).append(i)
    executed = sum(len(g) for g in groups.values())
    if not groups:
        best = max(range(len(candidates)), key=lambda i: (scores[i], -i))
        return Choice(candidates[best], best, 0, 0, errors)

    def rank(members: list[int]) -> tuple[Any, ...]:
        return (len(members), max(scores[i] for i in members), -min(members))

    winner = max(groups.values(), key=rank)
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
    return {"samples": samples, "vote": vote, **row, "greedy_exec_accuracy": summary["exec_accuracy"]}


def runner(executor: Any, db_id: str | None = None, context: Any = None, max_rows: int = 10_000) -> Run:
    """`run` for one record from an `Executor` (its databases, time limit and clean-up)."""
    return lambda sql: executor.rows(sql, db_id=db_id, context=context, max_rows=max_rows)
