"""BIRD (Li et al., 2023): questions with evidence over large real databases, graded by difficulty.

A release folder holds the split's json (`dev.json`, `train.json`, or mini-dev's
`mini_dev_sqlite.json`) beside its databases (`dev_databases/` or `train_databases/`), each
`<db>/<db>.sqlite` with `database_description/<table>.csv`. A record has `db_id`, `question`,
`evidence` (external knowledge the question needs: it goes into the prompt's evidence slot),
`SQL` and, in dev and mini-dev, `difficulty` (simple, moderate, challenging) and `question_id`.
Schemas come from the SQLite files; the description CSVs can add a note per column
(`column_notes`) where it says more than the column's name.
"""

from __future__ import annotations

import contextlib
import csv
import io
import re
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlft.data.records import DataError, Example, LoadReport
from sqlft.data.user_files import collect, read_rows, require_columns, text
from sqlft.sqlexec import connect_readonly

DIFFICULTIES = ("simple", "moderate", "challenging")
# split -> (json names it may have, folder of its databases)
SPLITS = {
    "dev": (("dev.json",), "dev_databases"),
    "train": (("train.json",), "train_databases"),
    "mini_dev": (("mini_dev_sqlite.json", "mini_dev_sqlite.jsonl"), "dev_databases"),
}
REQUIRED = ("question", "SQL", "db_id")
DESCRIPTION_COLUMNS = ("original_column_name", "column_name", "column_description", "value_description")


def load_bird(
    path: str | Path | None,
    split: str | None = "dev",
    *,
    strict: bool = False,
    limit: int | None = None,
    db_dir: str | Path | None = None,
) -> tuple[list[Example], LoadReport]:
    """Load a split (dev, train, mini_dev) from a release folder (or the split's json itself).

    Records whose database file is missing or unreadable are counted skips: their schema and
    gold result both come from that file. `db_dir` defaults to the split's `*_databases` folder.
    """
    split = split or "dev"
    json_path = split_file(path, split)
    databases = Path(db_dir) if db_dir is not None else database_dir(json_path, split)
    report = LoadReport("bird", str(json_path), strict)
    problems: dict[str, str | None] = {}

    def make(where: str, record: dict[str, Any]) -> Example | None:
        question, sql, db_id = (text(record.get(f)) for f in REQUIRED)
        if not question or not sql:
            report.skip(where, "empty question or SQL", f"question={question!r}, SQL={sql!r}")
            return None
        evidence = record.get("evidence")
        if evidence is not None and not isinstance(evidence, str):
            report.skip(
                where, "evidence is not text", f"a {type(evidence).__name__}", "write evidence as a string"
            )
            return None
        if db_id not in problems:  # each database opened once per load
            problems[db_id] = database_problem(databases, db_id)
        if problems[db_id]:
            report.skip(
                where, "database not usable", problems[db_id], f"put {db_id}/{db_id}.sqlite under {databases}"
            )
            return None
        if evidence is None:  # absent or null: the question comes without knowledge
            report.warn("no `evidence` given: its prompt has no evidence")
        difficulty = record.get("difficulty")
        if difficulty is not None and difficulty not in DIFFICULTIES:
            report.warn(f"difficulty {difficulty!r} is not one of {', '.join(DIFFICULTIES)}: reported as is")
        extra = {k: v for k, v in record.items() if k not in REQUIRED}
        extra.update(
            evidence=(evidence or "").strip(), split=split, db_path=str(databases / db_id / f"{db_id}.sqlite")
        )
        return Example(question, sql, "bird", db_id=db_id, extra=extra)

    def check_columns(record: dict[str, Any]) -> None:
        fix = "use BIRD's json format (db_id, question, evidence, SQL)"
        require_columns(record, dict.fromkeys(REQUIRED, fix), report.path)

    return collect(read_rows(json_path, report), None, report, make, check_columns, limit), report


def split_file(path: str | Path | None, split: str) -> Path:
    """The split's json: `path` itself, or its name in `path` or up to two folders below it."""
    if split not in SPLITS:
        raise DataError(f"unknown BIRD split {split!r}. Fix: use one of {', '.join(SPLITS)}")
    if path is None:
        raise DataError(
            "BIRD is read from a local release folder. Fix: pass --path to the folder with dev.json"
        )
    path = Path(path)
    if path.is_file():
        return path
    if not path.is_dir():
        raise DataError(
            f"{path}: no such BIRD folder. Fix: point --path at the folder that holds {SPLITS[split][0][0]}"
        )
    names = SPLITS[split][0]
    for depth in ("", "*/", "*/*/"):
        found = sorted(p for name in names for p in path.glob(depth + name) if p.is_file())
        if found:
            return found[0]
    raise DataError(
        f"{path}: no {' or '.join(names)} in it or two folders below. "
        f"Fix: point --path at the folder of BIRD's {split} release, or at the json itself"
    )


def database_dir(json_path: Path, split: str) -> Path:
    """The split's databases folder beside its json (mini-dev shares dev's `dev_databases`)."""
    return json_path.parent / SPLITS.get(split, SPLITS["dev"])[1]


def database_problem(db_dir: Path, db_id: str) -> str | None:
    """Why `<db_dir>/<db_id>/<db_id>.sqlite` cannot serve a question, or None if it can."""
    path = db_dir / db_id / f"{db_id}.sqlite"
    if not db_id or "/" in db_id or "\\" in db_id or db_id in {".", ".."}:
        return f"{db_id!r} is not a database name"
    if not path.is_file():
        return f"{path} is missing"
    try:
        with contextlib.closing(connect_readonly(path)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as error:
        return f"{path} is not a SQLite database ({error})"
    return None


# ----------------------------------------------------------------- column descriptions


def _words(name: str) -> str:
    return " ".join(re.sub(r"[_\W]+", " ", name).lower().split())


def read_description_csv(path: Path) -> list[dict[str, str]]:
    """One table's description rows; BIRD's CSVs come in UTF-8 (some with a BOM) or Windows-1252."""
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "cp1252", "latin-1"):
        with contextlib.suppress(UnicodeDecodeError):
            content = raw.decode(encoding)
            break
    rows = list(csv.DictReader(io.StringIO(content)))
    return [{(k or "").strip().lower(): (v or "").strip() for k, v in row.items()} for row in rows]


def column_notes(db_folder: Path, report: LoadReport | None = None) -> dict[tuple[str, str], str]:
    """(table, column) in lower case -> a note from `database_description/*.csv`, only where the
    description or value description says more than the column's own name."""
    notes: dict[tuple[str, str], str] = {}
    folder = db_folder / "database_description"
    for path in sorted(folder.glob("*.csv")) if folder.is_dir() else []:
        try:
            rows = read_description_csv(path)
        except csv.Error as error:
            if report is not None:
                report.warn(f"{path}: not readable as CSV ({error}), its descriptions are left out")
            continue
        if rows and "original_column_name" not in rows[0]:
            if report is not None:
                report.warn(f"{path}: no original_column_name column, its descriptions are left out")
            continue
        for row in rows:
            column = row.get("original_column_name", "")
            parts = [row.get("column_description", ""), row.get("value_description", "")]
            if row.get("column_name") and _words(row["column_name"]) != _words(column):
                parts[0] = parts[0] or row["column_name"]
            if _words(parts[0]) == _words(column):
                parts[0] = ""
            note = "; ".join(" ".join(p.split()) for p in parts if p)
            if column and note:
                notes[(path.stem.lower(), column.lower())] = note
    return notes


class DescribedSchema:
    """A schema whose rendering ends with the notes on its columns (`-- table.column: note`)."""

    def __init__(self, schema: Any, notes: dict[tuple[str, str], str]):
        self.schema = schema
        self.notes = notes

    def render(self, style: str = "ddl", values: Any = None) -> str:
        lines = [
            f"-- {table.name}.{column.name}: {self.notes[(table.name.lower(), column.name.lower())]}"
            for table in self.schema.tables
            for column in table.columns
            if (table.name.lower(), column.name.lower()) in self.notes
        ]
        body = self.schema.render(style, values)
        return body + ("\n\nColumn descriptions:\n" + "\n".join(lines) if lines else "")


def with_descriptions(schema_for: Callable, db_dir: Path, report: LoadReport | None = None) -> Callable:
    """`schema_for(example)` whose schemas carry their database's column notes."""
    cache: dict[str, dict[tuple[str, str], str]] = {}

    def described(example: Example) -> DescribedSchema:
        schema = schema_for(example)
        if example.db_id not in cache:
            cache[example.db_id] = column_notes(db_dir / example.db_id, report)
        return DescribedSchema(schema, cache[example.db_id])

    return described
