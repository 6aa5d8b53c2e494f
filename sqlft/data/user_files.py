"""Records from files (CSV, JSON Lines, JSON, parquet) or the hub, and the loader for a user's own file.

`read_rows` and `hub_rows` are shared by every loader; `load_user_file` reads QueryCraft-style
files (question, query and context columns, names configurable) whose schema is either inline
(a context column, checked like gretel's) or a database file `db_dir/<db_id>/<db_id>.sqlite`.
"""

from __future__ import annotations

import csv
import json
import re
import sqlite3
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlft.data.records import DataError, Example, LoadReport
from sqlft.data.sqlite_context import (
    QUERIES,
    READ_DIALECTS,
    TIMEOUT_S,
    Rejected,
    check,
    check_gold,
    quiet_sqlglot,
    scratch_copy,
)
from sqlft.jsonl import jsonl_lines

SUFFIXES = (".parquet", ".jsonl", ".ndjson", ".json", ".csv")
PROGRESS_MIN = 1000  # no progress bar below this many rows


def progress(rows: Iterable, total: int | None, desc: str) -> Iterable:
    """A tqdm bar on an interactive terminal for large inputs; the rows unchanged otherwise."""
    if not sys.stderr.isatty() or (total is not None and total < PROGRESS_MIN):
        return rows
    from tqdm import tqdm

    return tqdm(rows, total=total, desc=desc, unit=" rows")


def find_split_file(folder: Path, split: str) -> Path:
    """`<split>.<suffix>` in a folder, else a file whose name ends with `_<split>` (hub downloads)."""
    for pattern in (f"{split}.*", f"*_{split}.*", f"*-{split}.*", f"*{split}*"):
        found = sorted(p for p in folder.glob(pattern) if p.is_file() and _suffix(p) in SUFFIXES)
        if found:
            return found[0]
    raise DataError(
        f"{folder}: no file for split {split!r} (looked for {split}.parquet/.jsonl/.json/.csv). "
        "Fix: pass the file itself as path, or name the split that exists"
    )


def _suffix(path: Path) -> str:
    return path.suffix.lower()


def count_rows(path: Path) -> int | None:
    """Rows in a parquet file (cheap, from its metadata); None for text formats."""
    if _suffix(path) == ".parquet":
        import pyarrow.parquet as pq

        return pq.ParquetFile(path).metadata.num_rows
    return None


def read_rows(path: str | Path, report: LoadReport) -> Iterator[tuple[str, dict[str, Any]]]:
    """(where, record) for each record of a file, by suffix; malformed records are counted skips.

    `where` names the record within the file ('line 7', 'row 3', 'record 12'); the report names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. Fix: check the path (a folder needs a split name)")
    readers = {".parquet": _parquet_rows, ".csv": _csv_rows, ".jsonl": _jsonl_rows, ".ndjson": _jsonl_rows}
    readers[".json"] = _json_rows
    reader = readers.get(_suffix(path))
    if reader is None:
        raise DataError(
            f"{path}: unsupported file type {path.suffix!r}. Fix: use one of {', '.join(SUFFIXES)}"
        )
    return _without_undecodable(reader(path, report), report)


UNDECODABLE = re.compile("[\udc80-\udcff]")  # what errors="surrogateescape" makes of bytes that are not UTF-8


def _without_undecodable(
    rows: Iterator[tuple[str, dict[str, Any]]], report: LoadReport
) -> Iterator[tuple[str, dict[str, Any]]]:
    """Count a record holding bytes that are not UTF-8 as a skip naming its field; keep every other."""
    for where, record in rows:
        bad = next((k for k, v in record.items() if isinstance(v, str) and UNDECODABLE.search(v)), None)
        if bad is None:
            yield where, record
            continue
        report.read += 1
        report.skip(where, "undecodable bytes", f"field {bad!r} is not UTF-8", "save the file as UTF-8")


def _parquet_rows(path: Path, report: LoadReport) -> Iterator[tuple[str, dict[str, Any]]]:
    import pyarrow.parquet as pq

    index = 0
    for batch in pq.ParquetFile(path).iter_batches(batch_size=4096):
        for record in batch.to_pylist():
            index += 1
            yield f"row {index}", record


def _csv_rows(path: Path, report: LoadReport) -> Iterator[tuple[str, dict[str, Any]]]:
    csv.field_size_limit(2**31 - 1)  # contexts with many INSERT rows exceed the 128 KiB default
    with path.open(newline="", encoding="utf-8-sig", errors="surrogateescape") as handle:
        reader = csv.DictReader(handle)
        for index, record in enumerate(reader, start=1):
            where = f"row {index} (line {reader.line_num})"
            if None in record:
                report.read += 1
                report.skip(
                    where, "malformed CSV row", "more fields than the header", "quote fields with commas"
                )
                continue
            yield where, record


def _jsonl_rows(path: Path, report: LoadReport) -> Iterator[tuple[str, dict[str, Any]]]:
    for number, record, problem in jsonl_lines(path):
        if problem:
            report.read += 1
            report.skip(f"line {number}", "malformed JSON line", problem, "write one JSON object per line")
            continue
        yield f"line {number}", record


def _json_rows(path: Path, report: LoadReport) -> Iterator[tuple[str, dict[str, Any]]]:
    """A JSON array of objects (sql-create-context's release file), or JSON Lines named .json."""
    try:
        records = json.loads(path.read_text(encoding="utf-8", errors="surrogateescape"))
    except json.JSONDecodeError as error:
        if "Extra data" not in str(error):
            raise DataError(
                f"{path}: not valid JSON ({error}). Fix: write a JSON array or JSON Lines"
            ) from error
        yield from _jsonl_rows(path, report)
        return
    if isinstance(records, dict):  # {"data": [...]} style wrappers
        records = next((v for v in records.values() if isinstance(v, list)), None)
    if not isinstance(records, list):
        raise DataError(
            f"{path}: expected a JSON array of records. Fix: write a list of objects or JSON Lines"
        )
    for index, record in enumerate(records, start=1):
        where = f"record {index}"
        if not isinstance(record, dict):
            report.read += 1
            report.skip(where, "malformed record", f"a {type(record).__name__}, not an object")
            continue
        yield where, record


def hub_rows(hub_id: str, split: str) -> tuple[Iterator[tuple[str, dict[str, Any]]], int]:
    """Records of a hub dataset split (needs the network or the HF cache) and their number."""
    import datasets

    try:
        dataset = datasets.load_dataset(hub_id, split=split)
    except Exception as error:  # offline, unknown id or split: all surface here
        raise DataError(
            f"cannot load {hub_id!r} split {split!r} from the Hugging Face hub "
            f"({type(error).__name__}: {error}). Fix: go online, or pass path= to a local copy"
        ) from error
    rows = ((f"row {i + 1}", record) for i, record in enumerate(dataset))
    return rows, len(dataset)


def open_source(
    source: str, path: str | Path | None, split: str, hub_id: str, strict: bool
) -> tuple[Iterable[tuple[str, dict[str, Any]]], int | None, LoadReport]:
    """Rows of a hub dataset (path None) or of a local file or folder (`<split>.*`), and the report."""
    if path is None:
        rows, total = hub_rows(hub_id, split)
        return rows, total, LoadReport(source, f"{hub_id} [{split}]", strict)
    file = find_split_file(Path(path), split) if Path(path).is_dir() else Path(path)
    report = LoadReport(source, str(file), strict)
    return read_rows(file, report), count_rows(file), report


def require_columns(record: dict[str, Any], fixes: dict[str, str], source: str) -> None:
    """DataError naming the file, the missing column, the columns present and the fix (`fixes[column]`)."""
    for name, fix in fixes.items():
        if name not in record:
            raise DataError(
                f"{source}: no column {name!r} (columns present: {', '.join(map(str, record))}). Fix: {fix}"
            )


def collect(
    rows: Iterable[tuple[str, dict[str, Any]]],
    total: int | None,
    report: LoadReport,
    make: Callable[[str, dict[str, Any]], Example | None],
    check_columns: Callable[[dict[str, Any]], None],
    limit: int | None,
) -> list[Example]:
    """Run `make(where, record)` over the rows, counting; stop at `limit` kept.

    `check_columns(first_record)` raises a DataError when the file lacks a needed column;
    `make` returns an Example, or None after calling `report.skip`.
    """
    examples: list[Example] = []
    if limit is not None and limit <= 0:
        return examples
    first = True
    with quiet_sqlglot():
        for where, record in progress(rows, total, report.source):
            if first:
                check_columns(record)
                first = False
            report.read += 1
            example = make(where, record)
            if example is not None:
                examples.append(example)
                report.kept += 1
                if limit is not None and report.kept >= limit:
                    break
    return examples


def text(value: Any) -> str:
    """A field as stripped text; None and NaN (pandas, parquet) count as empty."""
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value).strip()


def load_user_file(
    path: str | Path | None,
    split: str | None = None,
    *,
    strict: bool = False,
    limit: int | None = None,
    question_col: str = "question",
    sql_col: str = "query",
    context_col: str = "context",
    db_id_col: str = "db_id",
    db_dir: str | Path | None = None,
    dialect: str | None = None,
    statements: Sequence[str] = QUERIES,
    timeout_s: float = TIMEOUT_S,
) -> tuple[list[Example], LoadReport]:
    """Load a user's CSV/JSONL/JSON/parquet file of questions and SQL; every gold must execute.

    A row's schema is its `context_col` (CREATE TABLE/INSERT text, transpiled to SQLite like
    gretel's) or, when that is empty, the database `db_dir/<db_id>/<db_id>.sqlite`. `dialect`
    names the SQL dialect of the file; by default SQLite-compatible, MySQL, Postgres, T-SQL are tried.
    """
    if path is None:
        raise DataError("the csv source needs a path to the user's file. Fix: pass path=")
    path = Path(path)
    if path.is_dir():
        path = find_split_file(path, split or "train")
    report = LoadReport("csv", str(path), strict)
    columns = _UserColumns(question_col, sql_col, context_col, db_id_col)
    databases = _Databases(Path(db_dir) if db_dir is not None else None)
    dialects = (dialect,) if dialect is not None else READ_DIALECTS
    seen: set[tuple[str, str, str]] = set()

    def make(where: str, record: dict[str, Any]) -> Example | None:
        return _user_example(record, where, report, seen, databases, columns, dialects, statements, timeout_s)

    def check_columns(record: dict[str, Any]) -> None:
        _check_columns(record, path, columns, db_dir)

    try:
        rows = read_rows(path, report)
        return collect(rows, count_rows(path), report, make, check_columns, limit), report
    finally:
        databases.close()


@dataclass(frozen=True)
class _UserColumns:
    question: str
    sql: str
    context: str
    db_id: str


def _check_columns(
    record: dict[str, Any], path: Path, columns: _UserColumns, db_dir: str | Path | None
) -> None:
    require_columns(
        record,
        {
            columns.question: "set question_col= to the column that holds the questions",
            columns.sql: "set sql_col= to the column that holds the SQL",
        },
        str(path),
    )
    if columns.context not in record and columns.db_id not in record:
        raise DataError(
            f"{path}: no schema column: neither {columns.context!r} nor {columns.db_id!r} "
            f"(columns present: {', '.join(map(str, record))}). "
            "Fix: set context_col= to the column with CREATE TABLE text, or db_id_col= and db_dir="
        )
    if columns.context not in record and db_dir is None:
        raise DataError(
            f"{path}: rows name a database ({columns.db_id!r}) but no db_dir= was given. "
            "Fix: pass db_dir= holding <db_id>/<db_id>.sqlite, or add a context column"
        )


def _user_example(
    record: dict[str, Any],
    where: str,
    report: LoadReport,
    seen: set[tuple[str, str, str]],
    databases: _Databases,
    columns: _UserColumns,
    dialects: Sequence[str | None],
    statements: Sequence[str],
    timeout_s: float,
) -> Example | None:
    question, sql = text(record.get(columns.question)), text(record.get(columns.sql))
    context, db_id = text(record.get(columns.context)), text(record.get(columns.db_id)) or None
    if not question or not sql:
        report.skip(where, "empty question or sql", f"{columns.question}={question!r}, {columns.sql}={sql!r}")
        return None
    key = (" ".join(question.split()).lower(), context or db_id or "", " ".join(sql.split()))
    if key in seen:
        report.skip(where, "duplicate")
        return None
    seen.add(key)
    extra = {
        k: v
        for k, v in record.items()
        if k not in (columns.question, columns.sql, columns.context, columns.db_id)
    }
    try:
        if context:
            checked = check(context, sql, dialects, statements, timeout_s)
            extra.update(
                original_sql=sql, original_context=context, kind=checked.kind, gold_rows=checked.rows
            )
            return Example(question, checked.sql, "csv", db_id=db_id, context=checked.context, extra=extra)
        if db_id is None:
            report.skip(
                where, "no schema", f"empty {columns.context!r} and {columns.db_id!r}", "fill one of them"
            )
            return None
        gold, kind, rows = databases.check(db_id, sql, dialects, statements, timeout_s)
    except Rejected as rejected:
        report.skip(where, rejected.reason, rejected.detail)
        return None
    extra.update(original_sql=sql, kind=kind, gold_rows=rows)
    return Example(question, gold, "csv", db_id=db_id, extra=extra)


class _Databases:
    """Read-only connections to `db_dir/<db_id>/<db_id>.sqlite`, opened once each."""

    def __init__(self, db_dir: Path | None):
        self.db_dir = db_dir
        self._open: dict[str, sqlite3.Connection | None] = {}

    def check(
        self,
        db_id: str,
        sql: str,
        dialects: Sequence[str | None],
        statements: Sequence[str],
        timeout_s: float,
    ) -> tuple[str, str, int]:
        conn = self._connection(db_id)
        if {s.upper() for s in statements} == {"SELECT"}:
            return check_gold(conn, sql, dialects, statements, timeout_s)
        scratch = scratch_copy(conn)  # a write gold runs on a copy, never on the user's file
        try:
            return check_gold(scratch, sql, dialects, statements, timeout_s)
        finally:
            scratch.close()

    def _connection(self, db_id: str) -> sqlite3.Connection:
        if db_id not in self._open:
            path = self.db_dir / db_id / f"{db_id}.sqlite" if self.db_dir is not None else None
            if path is None or not path.is_file():
                self._open[db_id] = None
            else:
                conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
                conn.text_factory = lambda raw: raw.decode(errors="ignore")
                self._open[db_id] = conn
        conn = self._open[db_id]
        if conn is None:
            where = f"no {self.db_dir}/{db_id}/{db_id}.sqlite" if self.db_dir else "no db_dir= given"
            raise Rejected("unknown db_id", f"{db_id!r}: {where}")
        return conn

    def close(self) -> None:
        for conn in self._open.values():
            if conn is not None:
                conn.close()
