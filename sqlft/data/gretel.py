"""gretelai/synthetic_text_to_sql: mixed-dialect contexts and gold, kept only where the gold runs in SQLite.

Each record's `sql_context` (CREATE TABLE and INSERT statements in MySQL, Postgres, T-SQL ...)
and `sql` are transpiled to SQLite with sqlglot and checked by execution in an in-memory
database (`sqlft.data.sqlite_context`). By default only queries are kept (`statements=("SELECT",)`):
phase 1 anchors query syntax, and gretel's INSERT/UPDATE/DELETE tasks would teach the model to
write where Spider asks it to read. Pass e.g. `statements=("SELECT", "INSERT", "UPDATE", "DELETE")`
to keep them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlft.data.records import Example, LoadReport
from sqlft.data.sqlite_context import QUERIES, READ_DIALECTS, TIMEOUT_S, checked_example
from sqlft.data.user_files import collect, open_source, require_columns, text

HUB_ID = "gretelai/synthetic_text_to_sql"
FIELDS = (
    "id",
    "domain",
    "domain_description",
    "sql_complexity",
    "sql_complexity_description",
    "sql_task_type",
    "sql_task_type_description",
    "sql_prompt",
    "sql_context",
    "sql",
    "sql_explanation",
)
REQUIRED = ("sql_prompt", "sql_context", "sql")
KEPT_FIELDS = ("id", "domain", "sql_complexity", "sql_task_type", "sql_explanation")


def load_gretel(
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
    """From `hub_id` when path is None, else a parquet/JSONL/JSON/CSV file or a folder holding `<split>.*`."""
    split = split or "train"
    rows, total, report = open_source("gretel", path, split, hub_id, strict)
    seen: set[tuple[str, str, str]] = set()

    def make(where: str, record: dict[str, Any]) -> Example | None:
        question, context, sql = (text(record.get(f)) for f in REQUIRED)
        return checked_example(
            report, where, seen, question, context, sql,
            source="gretel",
            db_id=f"gretel-{text(record.get('id')) or where}",
            extra={f: record.get(f) for f in KEPT_FIELDS if f in record},
            dialects=dialect_fallbacks, kinds=statements, timeout_s=timeout_s,
        )  # fmt: skip

    def check_columns(record: dict[str, Any]) -> None:
        fix = f"give the file {hub_id}'s fields ({', '.join(FIELDS)})"
        require_columns(record, dict.fromkeys(REQUIRED, fix), report.path)

    return collect(rows, total, report, make, check_columns, limit), report
