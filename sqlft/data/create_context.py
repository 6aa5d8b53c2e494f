"""b-mc2/sql-create-context: WikiSQL and Spider questions with CREATE TABLE context and no rows.

The context and the answer are transpiled to SQLite and the answer must execute on the empty
database the context builds (it returns no rows, which is fine): that drops answers naming
columns the context lacks and SQL that SQLite cannot run.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlft.data.records import Example, LoadReport
from sqlft.data.sqlite_context import QUERIES, READ_DIALECTS, TIMEOUT_S, checked_example
from sqlft.data.user_files import collect, open_source, require_columns, text

HUB_ID = "b-mc2/sql-create-context"
FIELDS = ("question", "context", "answer")


def load_create_context(
    path: str | Path | None,
    split: str | None = "train",
    *,
    strict: bool = False,
    limit: int | None = None,
    hub_id: str = HUB_ID,
    dialect_fallbacks: Sequence[str | None] = READ_DIALECTS,
    statements: Sequence[str] = QUERIES,
    timeout_s: float = TIMEOUT_S,
) -> tuple[list[Example], LoadReport]:
    """From `hub_id` when path is None (one split: train), else a JSON/JSONL/CSV/parquet file or folder."""
    split = split or "train"
    rows, total, report = open_source("sql-create-context", path, split, hub_id, strict)
    seen: set[tuple[str, str, str]] = set()
    count = itertools.count(1)

    def make(where: str, record: dict[str, Any]) -> Example | None:
        question, context, sql = (text(record.get(f)) for f in FIELDS)
        return checked_example(
            report, where, seen, question, context, sql,
            source="sql-create-context",
            db_id=f"sql-create-context-{next(count)}",
            extra={},
            dialects=dialect_fallbacks, kinds=statements, timeout_s=timeout_s,
        )  # fmt: skip

    def check_columns(record: dict[str, Any]) -> None:
        fix = f"give the file {hub_id}'s fields ({', '.join(FIELDS)})"
        require_columns(record, dict.fromkeys(FIELDS, fix), report.path)

    return collect(rows, total, report, make, check_columns, limit), report
