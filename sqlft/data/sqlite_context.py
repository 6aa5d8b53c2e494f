"""Bring a record's schema context and gold SQL to SQLite and check that the gold executes.

Sources such as gretel mix dialects (MySQL, PostgreSQL, T-SQL, ...). A text is parsed with
each read dialect in turn and written as SQLite by sqlglot; the context's statements build an
in-memory database and the gold must execute there within a time limit. A record that cannot
be used raises `Rejected`, whose `reason` is the LoadReport counter key.
"""

from __future__ import annotations

import logging
import re
import sqlite3
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import sqlglot
from sqlglot import exp
from sqlglot.errors import ErrorLevel, SqlglotError

from sqlft.data.records import Example, LoadReport

READ_DIALECTS: tuple[str | None, ...] = (None, "mysql", "postgres", "tsql")
QUERIES = ("SELECT",)  # statement kinds kept by default: phase 1 teaches queries, not writes
TIMEOUT_S = 2.0
MAX_ROWS = 10_000  # rows of a gold result counted; more still passes
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


class Rejected(Exception):
    """A record that cannot be used; `reason` is short and fixed (a counter key), `detail` specific."""

    def __init__(self, reason: str, detail: str = ""):
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True)
class Checked:
    """A record's context and gold in SQLite, the gold's statement kind and result size."""

    context: str
    sql: str
    kind: str
    rows: int


def statement_kind(expression: exp.Expression) -> str:
    """SELECT for any query (WITH, UNION, parenthesised); otherwise sqlglot's name (INSERT, UPDATE...)."""
    if isinstance(expression, (exp.Select, exp.SetOperation, exp.Subquery)):
        return "SELECT"
    return expression.key.upper()


@contextmanager
def quiet_sqlglot() -> Iterator[None]:
    """Silence sqlglot's per-statement warnings (fallbacks to Command) while a large file loads."""
    logger = logging.getLogger("sqlglot")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _deny_attach(action: int, *args: object) -> int:
    """Contexts are data, not trusted code: no ATTACH (nor VACUUM INTO) that would write files."""
    return (
        sqlite3.SQLITE_DENY if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH) else sqlite3.SQLITE_OK
    )


def _connect() -> sqlite3.Connection:
    conn = sqlite3.connect(":memory:", isolation_level=None)
    conn.text_factory = lambda raw: raw.decode(errors="ignore")
    conn.set_authorizer(_deny_attach)
    return conn


def _execute(conn: sqlite3.Connection, sql: str, timeout_s: float) -> int:
    """Run one statement to the end under a time limit; return the number of result rows seen."""
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 1000)
    try:
        cursor = conn.execute(sql)
        rows = 0
        while rows < MAX_ROWS and (batch := cursor.fetchmany(500)):
            rows += len(batch)
        return rows
    finally:
        conn.set_progress_handler(None, 0)


def _error(error: Exception) -> str:
    if "interrupted" in str(error):
        return "timeout"
    return type(error).__name__


def _plain(error: Exception) -> str:
    """sqlglot's message without its terminal colour codes."""
    return f"{type(error).__name__}: " + _ANSI.sub("", str(error))


def _national_to_plain(node: exp.Expression) -> exp.Expression:
    """T-SQL's N'text' stays N'text' in sqlglot's SQLite output, which SQLite rejects."""
    return exp.Literal.string(node.this) if isinstance(node, exp.National) else node


def to_sqlite(text: str, dialect: str | None, strict: bool = False) -> list[tuple[exp.Expression, str]]:
    """Parse `text` as `dialect` and write each statement as SQLite; `strict` raises on unsupported syntax."""
    level = ErrorLevel.RAISE if strict else ErrorLevel.IGNORE
    return [(e, e.sql("sqlite", copy=False, unsupported_level=level)) for e in parse(text, dialect)]


def parse(text: str, dialect: str | None) -> list[exp.Expression]:
    """The statements of `text` read as `dialect` (raises sqlglot's errors), ready for SQLite output."""
    parsed = [e for e in sqlglot.parse(text, read=dialect) if e]
    if "n'" in text.lower():
        parsed = [e.transform(_national_to_plain) for e in parsed]
    if _DATE_WORDS.search(text):
        parsed = [e.transform(_sqlite_dates) for e in parsed]
    return parsed


# sqlglot 30 leaves these as they are in SQLite output, which SQLite then refuses (YEAR, NOW,
# INTERVAL) or, for WEEK, silently answers NULL; rewritten here into SQLite's date idioms.
_DATE_WORDS = re.compile(
    r"(?i)\b(now|getdate|sysdate|curdate|year|month|day|extract|date_?add|date_sub|interval)\b"
)
_PARTS = {"YEAR": "%Y", "MONTH": "%m", "DAY": "%d", "HOUR": "%H", "MINUTE": "%M", "SECOND": "%S"}
_NOW = {"NOW": exp.CurrentTimestamp, "GETDATE": exp.CurrentTimestamp, "SYSDATE": exp.CurrentTimestamp}
_NOW["CURDATE"] = exp.CurrentDate


def _part(unit: str, value: exp.Expression) -> exp.Expression:
    return exp.cast(exp.func("STRFTIME", exp.Literal.string(_PARTS[unit]), value), "INTEGER")


def _shift(
    node: exp.Expression, this: exp.Expression, amount: exp.Expression, unit: Any, sign: int
) -> exp.Expression:
    """SQLite's DATE(this, '±n unit'); `node` itself when the shift is not a literal amount."""
    if isinstance(amount, exp.Interval):
        amount, unit = amount.this, amount.args.get("unit")
    if isinstance(amount, exp.Neg) and isinstance(amount.this, exp.Literal):
        amount, sign = amount.this, -sign
    if not isinstance(amount, exp.Literal):
        return node
    number, _, word = amount.name.strip().partition(" ")
    unit_name = (word or (unit.name if unit is not None else "")).strip().upper().rstrip("S")
    try:
        value = float(number) * sign
    except ValueError:
        return node
    if unit_name == "WEEK":
        value, unit_name = value * 7, "DAY"
    if unit_name not in _PARTS:
        return node
    count = exp.Literal.number(int(value) if value.is_integer() else value)
    return exp.DateAdd(this=this, expression=count, unit=exp.var(unit_name))


def _sqlite_dates(node: exp.Expression) -> exp.Expression:
    if isinstance(node, exp.Anonymous) and node.name.upper() in _NOW and not node.expressions:
        return _NOW[node.name.upper()]()
    if isinstance(node, (exp.Year, exp.Month, exp.Day)):
        return _part(node.key.upper(), node.this)
    if isinstance(node, exp.Extract) and node.this.name.upper() in _PARTS:
        return _part(node.this.name.upper(), node.expression)
    if isinstance(node, (exp.DateAdd, exp.DateSub)):
        sign = -1 if isinstance(node, exp.DateSub) else 1
        return _shift(node, node.this, node.expression, node.args.get("unit"), sign)
    if isinstance(node, (exp.Add, exp.Sub)) and isinstance(node.expression, exp.Interval):
        sign = -1 if isinstance(node, exp.Sub) else 1
        return _shift(node, node.this, node.expression, None, sign)
    return node


def materialise(
    context: str, dialects: Sequence[str | None] = READ_DIALECTS, timeout_s: float = TIMEOUT_S
) -> tuple[sqlite3.Connection, list[str], str | None]:
    """Build an in-memory database from `context`: (connection, SQLite statements, dialect that worked)."""
    failure: Rejected | None = None
    for dialect in dialects:
        try:
            statements = [sql for _, sql in to_sqlite(context, dialect)]
        except SqlglotError as error:
            failure = failure or Rejected("context does not parse", _plain(error))
            continue
        if not statements:
            raise Rejected("empty context")
        conn = _connect()
        try:
            for statement in statements:
                _execute(conn, statement, timeout_s)
        except (sqlite3.Error, sqlite3.Warning) as error:
            conn.close()
            if failure is None or failure.reason == "context does not parse":
                failure = Rejected(
                    f"context fails to execute ({_error(error)})", f"{error} in {statement[:200]}"
                )
            continue
        return conn, statements, dialect
    assert failure is not None, "no read dialects given"
    raise failure


def check_gold(
    conn: sqlite3.Connection,
    sql: str,
    dialects: Sequence[str | None] = READ_DIALECTS,
    kinds: Sequence[str] = QUERIES,
    timeout_s: float = TIMEOUT_S,
) -> tuple[str, str, int]:
    """Transpile the gold to SQLite and execute it on `conn`: (SQLite gold, kind, result rows).

    The first read dialect whose output executes wins. Only one statement is allowed, of a
    kind in `kinds`. A write statement changes `conn`: pass a scratch database.
    """
    failure: Rejected | None = None
    kinds = {k.upper() for k in kinds}
    verbatim = _verbatim(conn, sql, kinds, timeout_s)
    if verbatim is not None:
        return verbatim
    for dialect in dialects:
        try:
            parsed = parse(sql, dialect)
        except SqlglotError as error:
            failure = failure or Rejected("gold does not parse", _plain(error))
            continue
        if len(parsed) != 1:
            raise Rejected("gold is not one statement", f"{len(parsed)} statements")
        kind = statement_kind(parsed[0])
        if kind not in kinds:
            raise Rejected(f"gold is {kind}, not kept", f"kept kinds: {', '.join(sorted(kinds))}")
        try:
            text = parsed[0].sql("sqlite", copy=False, unsupported_level=ErrorLevel.RAISE)
        except SqlglotError as error:
            if failure is None or failure.reason == "gold does not parse":
                failure = Rejected("gold does not transpile", _plain(error))
            continue
        try:
            return text, kind, _execute(conn, text, timeout_s)
        except (sqlite3.Error, sqlite3.Warning) as error:
            if failure is None or not failure.reason.startswith("gold fails"):
                failure = Rejected(f"gold fails to execute ({_error(error)})", f"{error} in {text[:200]}")
    assert failure is not None, "no read dialects given"
    raise failure


def _verbatim(
    conn: sqlite3.Connection, sql: str, kinds: set[str], timeout_s: float
) -> tuple[str, str, int] | None:
    """The gold as written, when it is one statement of a kept kind that SQLite already runs.

    Keeping the author's spelling (`x NOT IN (...)`, aliases, quoting) matters: a sqlglot round trip
    would teach phase 1 a different style from the Spider-style golds of phase 2.
    """
    text = sql.strip().rstrip(";").strip()
    try:
        parsed = parse(text, None)
    except SqlglotError:
        return None
    if len(parsed) != 1 or statement_kind(parsed[0]) not in kinds:
        return None
    try:
        return text, statement_kind(parsed[0]), _execute(conn, text, timeout_s)
    except (sqlite3.Error, sqlite3.Warning):
        return None


def check(
    context: str,
    sql: str,
    dialects: Sequence[str | None] = READ_DIALECTS,
    kinds: Sequence[str] = QUERIES,
    timeout_s: float = TIMEOUT_S,
) -> Checked:
    """Context and gold to SQLite; the gold must execute on the database the context builds.

    The gold is tried first in the dialect that read the context, then in the others.
    """
    conn, statements, dialect = materialise(context, dialects, timeout_s)
    try:
        order = [dialect, *(d for d in dialects if d != dialect)]
        gold, kind, rows = check_gold(conn, sql, order, kinds, timeout_s)
    finally:
        conn.close()
    return Checked(";\n".join(statements) + ";", gold, kind, rows)


def scratch_copy(conn: sqlite3.Connection) -> sqlite3.Connection:
    """An in-memory copy of a (read-only) database, for checking a write statement."""
    copy = _connect()
    conn.backup(copy)
    return copy


def checked_example(
    report: LoadReport,
    where: str,
    seen: set[tuple[str, str, str]],
    question: str,
    context: str,
    sql: str,
    *,
    source: str,
    db_id: str,
    extra: dict[str, Any],
    dialects: Sequence[str | None] = READ_DIALECTS,
    kinds: Sequence[str] = QUERIES,
    timeout_s: float = TIMEOUT_S,
) -> Example | None:
    """The record path of the inline-context sources: empty fields, duplicates, then `check`.

    Returns the Example (SQLite context and gold; the originals and the gold's kind and result
    size in `extra`), or None after counting the skip in `report`.
    """
    if not question or not sql:
        report.skip(where, "empty question or sql", f"question={question!r}, sql={sql!r}")
        return None
    if not context:
        report.skip(where, "empty context")
        return None
    key = (" ".join(question.split()).lower(), " ".join(context.split()), " ".join(sql.split()))
    if key in seen:
        report.skip(where, "duplicate", "same question, context and sql as an earlier record")
        return None
    seen.add(key)
    try:
        checked = check(context, sql, dialects, kinds, timeout_s)
    except Rejected as rejected:
        report.skip(where, rejected.reason, rejected.detail)
        return None
    extra = {
        **extra,
        "original_sql": sql,
        "original_context": context,
        "kind": checked.kind,
        "gold_rows": checked.rows,
    }
    return Example(question, checked.sql, source, db_id=db_id, context=checked.context, extra=extra)
