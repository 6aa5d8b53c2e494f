"""Execution match with BIRD's semantics (bird-bench's `evaluation_ex.py`), on sqlft's own executor.

The official runs the prediction and the gold on `<db>/<db>.sqlite` with Python's sqlite3 and
scores 1 when `set(pred_rows) == set(gold_rows)`: row order and duplicates do not count, column
order does, values compare with Python's `==` and hash (1 == 1.0, 1 != '1'), NULL equals NULL.
Any error scores 0, and so does a pair whose two queries together run past 30 s (here the gold's
time, measured on its first run, comes off the prediction's limit); sqlite3 refuses a second
statement. Nothing is cleaned first: no DISTINCT removal, no operator fix-up, and text must decode
as UTF-8. Deliberate differences, all on the safe side: both queries run read-only with the
executor's limits (at most MAX_ROWS rows, SQLite's heap cap), so a prediction that writes is
denied (the official would run it and change the database), and a failing gold is reported as a
gold error for its record (the official scores it 0: `exec_accuracy_all` is BIRD's number then).
"""

from __future__ import annotations

import sqlite3
import time

from sqlft.evaluate.execution import SEMANTICS, ExecOutcome, Executor, _failed, _volatile
from sqlft.sqlexec import QueryError, run_query

MAX_ROWS = 1_000_000  # a prediction with more rows scores 0 (the official would read them all)


def bird_equal(pred_rows: list[tuple], gold_rows: list[tuple]) -> bool:
    """BIRD's comparison: the same set of rows (tuples, so column order counts)."""
    return set(pred_rows) == set(gold_rows)


def resolve_semantics(semantics: str, records: list[dict]) -> str:
    """`auto` is BIRD's semantics when every record came from the BIRD loader, else Spider's."""
    if semantics in SEMANTICS:
        return semantics
    if semantics != "auto":
        raise ValueError(f"unknown semantics {semantics!r}: choose auto, {', '.join(SEMANTICS)}")
    sources = {r.get("source") for r in records if r.get("error_kind") != "input"}
    return "bird" if sources == {"bird"} else "spider"


def bird_match(executor: Executor, pred: str, gold: str, db_id: str | None, context) -> ExecOutcome:
    """One record's verdict under BIRD's semantics (see the module docstring)."""
    try:
        key, conn = executor.connections(db_id, context)[0]
    except LookupError as error:
        return _failed("unknown_db", str(error))
    except (sqlite3.Error, ValueError) as error:
        return _failed("context", str(error))
    started = time.monotonic()
    gold_rows = executor._gold_rows(key, conn, gold)
    # the gold's first run is timed once: the official's limit covers both queries together
    gold_seconds = executor._gold_seconds.setdefault((key, gold), time.monotonic() - started)
    if isinstance(gold_rows, QueryError):
        return _failed("gold", f"{gold_rows.kind}: {gold_rows}")
    outcome = ExecOutcome(match=True, valid=True, gold_empty=not gold_rows)
    if pred == gold and not _volatile(gold):  # the same text on the same read-only database
        return outcome
    try:
        left = executor.timeout_s - gold_seconds
        if left <= 0:
            raise QueryError(
                "timeout", f"the gold alone took {gold_seconds:.1f} of the {executor.timeout_s:g} s"
            )
        pred_rows = run_query(conn, pred, left, MAX_ROWS)
    except QueryError as error:
        return _failed(error.kind, str(error), valid=False, gold_empty=outcome.gold_empty)
    outcome.match = bird_equal(pred_rows, gold_rows)
    return outcome
