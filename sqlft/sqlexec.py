"""Run untrusted SQL against SQLite safely: read-only, time-limited, size-limited.

Predictions are untrusted code. A database is opened read-only and immutable (no journal or
lock file is created), an authorizer refuses everything but reading, a progress handler
interrupts a query that runs past its time limit, and rows and string sizes are capped, so a
hostile query ends as an error for its record while the run goes on.
"""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

# Authorizer action codes a read-only query needs; everything else (writes, DDL, ATTACH,
# PRAGMA, transactions, ...) is denied.
_ALLOWED_ACTIONS = {
    sqlite3.SQLITE_SELECT,
    sqlite3.SQLITE_READ,
    sqlite3.SQLITE_FUNCTION,
    sqlite3.SQLITE_RECURSIVE,
}
_DENIED_FUNCTIONS = {"load_extension", "readfile", "writefile", "edit", "fts3_tokenizer"}
MAX_VALUE_BYTES = 10_000_000
MAX_SQL_BYTES = 1_000_000
# SQLite's own allocations, process-wide: a runaway sort fails with "out of memory" instead of
# taking the machine.
MAX_HEAP_BYTES = 2 << 30
# SQLite VM steps between deadline checks: about 0.1 ms of work, so a limit holds to well under a
# millisecond while the Python callback costs nothing measurable (every 1,000 steps it was 10%
# of an evaluation's execution time).
PROGRESS_STEPS = 20_000
# Building an in-memory database from a context may create and fill tables, never touch files.
_BUILD_DENIED_ACTIONS = {sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH, sqlite3.SQLITE_PRAGMA}


class QueryError(Exception):
    """A query failed; `kind` is one of: syntax, schema, timeout, limit, denied, runtime."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def _authorize(action: int, arg1: Any, arg2: Any, db_name: Any, trigger: Any) -> int:
    if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_OK if action in _ALLOWED_ACTIONS else sqlite3.SQLITE_DENY


def _authorize_build(action: int, arg1: Any, arg2: Any, db_name: Any, trigger: Any) -> int:
    if action == sqlite3.SQLITE_FUNCTION and str(arg2).lower() in _DENIED_FUNCTIONS:
        return sqlite3.SQLITE_DENY
    return sqlite3.SQLITE_DENY if action in _BUILD_DENIED_ACTIONS else sqlite3.SQLITE_OK


def _lenient_text(raw: bytes) -> str:
    return raw.decode(errors="ignore")


def _harden(conn: sqlite3.Connection) -> sqlite3.Connection:
    conn.text_factory = _lenient_text
    conn.execute("PRAGMA temp_store = MEMORY")  # sorts and temp b-trees never spill to files
    conn.execute(f"PRAGMA hard_heap_limit = {MAX_HEAP_BYTES}")
    conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, MAX_VALUE_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_SQL_LENGTH, MAX_SQL_BYTES)
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_authorize)
    return conn


def connect_readonly(db_path: str | Path) -> sqlite3.Connection:
    """Open an existing database file so that nothing can write to it or create files beside it."""
    path = Path(db_path).resolve()
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such database file")
    conn = sqlite3.connect(f"{path.as_uri()}?mode=ro&immutable=1", uri=True, check_same_thread=False)
    return _harden(conn)


def connect_memory(statements: str | list[str] | None = None, timeout_s: float = 60.0) -> sqlite3.Connection:
    """An in-memory database built from schema statements, then locked down like a file.

    The statements may create and fill tables but not attach files or run pragmas, and must
    finish within `timeout_s` (else sqlite3.OperationalError "interrupted").
    """
    conn = sqlite3.connect(":memory:", check_same_thread=False)
    conn.text_factory = _lenient_text
    conn.setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 0)
    conn.set_authorizer(_authorize_build)
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_STEPS)
    for statement in [statements] if isinstance(statements, str) else statements or []:
        conn.executescript(statement)
    conn.set_progress_handler(None, 0)
    conn.set_authorizer(None)
    return _harden(conn)


def _classify(error: sqlite3.Error) -> str:
    text = str(error).lower()
    if "interrupted" in text:
        return "timeout"
    if any(s in text for s in ("too big", "too many", "too large", "out of memory")):
        return "limit"
    if "not authorized" in text or "authorization denied" in text:
        return "denied"
    if any(
        s in text
        for s in ("syntax error", "incomplete input", "unrecognized token", "one statement", "null char")
    ):
        return "syntax"
    if "no such" in text or "ambiguous column" in text:
        return "schema"
    return "runtime"


def run_query(
    conn: sqlite3.Connection,
    sql: str,
    timeout_s: float = 10.0,
    max_rows: int | None = 100_000,
    *,
    truncate: bool = False,
    columns: list[str] | None = None,
) -> list[tuple]:
    """Execute one statement and return its rows, or raise QueryError.

    More than `max_rows` rows raises a `limit` error, or with `truncate` returns the first
    `max_rows` rows and stops reading (an evaluator that needs n rows reads n + 1 to learn
    "more than n" cheaply). The time limit interrupts SQLite itself. A `columns` list is filled
    with the result's column names.
    """
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), PROGRESS_STEPS)
    try:
        cursor = conn.execute(sql)
        if columns is not None:
            columns[:] = [d[0] for d in cursor.description or ()]
        rows: list[tuple] = []
        while batch := cursor.fetchmany(1000 if max_rows is None else min(1000, max_rows + 1 - len(rows))):
            rows.extend(batch)
            if max_rows is not None and len(rows) > max_rows:
                if truncate:
                    return rows[:max_rows]
                raise QueryError("limit", f"more than {max_rows} result rows")
        return rows
    except sqlite3.Warning as error:  # e.g. "You can only execute one statement at a time."
        raise QueryError("syntax", str(error)) from error
    except (sqlite3.Error, OverflowError, MemoryError) as error:
        kind = _classify(error) if isinstance(error, sqlite3.Error) else "limit"
        raise QueryError(kind, str(error)) from error
    except ValueError as error:  # a NUL character or a lone surrogate in the query text
        raise QueryError("syntax", str(error)) from error
    finally:
        conn.set_progress_handler(None, 0)
