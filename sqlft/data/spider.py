"""Spider (Yu et al., 2018): questions over named databases, schemas from tables.json.

A release folder holds `dev.json`, `train_spider.json`, `train_others.json`, `tables.json` and
`database/<db>/<db>.sqlite`. Where the split's json is missing the questions come from the hub
(`xlangai/spider`), the schemas still from a local tables.json. Spider's own fields (`sql`, the
parsed query that hardness is computed from, `query_toks`, ...) are kept in `extra`.
"""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path
from typing import Any

from sqlft.data.records import DataError, Example, LoadReport
from sqlft.data.user_files import collect, hub_rows, read_rows, require_columns, text
from sqlft.schema import load_tables_json
from sqlft.sqlexec import connect_readonly

HUB_ID = "xlangai/spider"
SPLIT_FILES = {"dev": ("dev.json",), "train": ("train_spider.json", "train_others.json")}
HUB_SPLITS = {"dev": "validation"}
REQUIRED = ("question", "query", "db_id")


def load_spider(
    path: str | Path | None,
    split: str | None = "dev",
    *,
    strict: bool = False,
    limit: int | None = None,
    hub_id: str = HUB_ID,
    tables_json: str | Path | None = None,
) -> tuple[list[Example], LoadReport]:
    """Load a split (`dev`; `train` = train_spider + train_others) from a release folder or the hub.

    `path` is the release folder (or one split json in it); `tables_json` defaults to its
    tables.json. Records whose db_id is not in tables.json are counted skips.
    """
    split = split or "dev"
    folder, files = _local_files(Path(path) if path is not None else None, split)
    tables = Path(tables_json) if tables_json is not None else (folder / "tables.json" if folder else None)
    if tables is None or not tables.is_file():
        raise DataError(
            f"no Spider tables.json at {tables or 'path=None'}: the schemas are needed for every question. "
            "Fix: pass tables_json= or path= to a Spider release folder"
        )
    schemas = load_tables_json(tables)
    if files:
        report = LoadReport("spider", " + ".join(str(f) for f in files), strict)
        rows = (
            (f"{file.name} {where}" if len(files) > 1 else where, record)
            for file in files
            for where, record in read_rows(file, report)
        )
        total = None
    else:
        hub_split = HUB_SPLITS.get(split, split)
        report = LoadReport("spider", f"{hub_id} [{hub_split}]", strict)
        rows, total = hub_rows(hub_id, hub_split)

    checked: dict[str, str | None] = {}

    def make(where: str, record: dict[str, Any]) -> Example | None:
        question, sql, db_id = (text(record.get(f)) for f in REQUIRED)
        if not question or not sql:
            report.skip(where, "empty question or sql", f"question={question!r}, query={sql!r}")
            return None
        if db_id not in schemas:
            report.skip(
                where, "unknown db_id", f"{db_id!r} is not in {tables}", "add its entry to tables.json"
            )
            return None
        if folder and db_id not in checked:
            checked[db_id] = database_problem(folder, db_id)  # each database opened once per load
        if checked.get(db_id):  # kept: its schema comes from tables.json, but its gold cannot be run
            report.warn(f"{checked[db_id]}: its questions are kept, but none of them can be executed")
        extra = {k: v for k, v in record.items() if k not in REQUIRED}
        extra["split"] = split
        return Example(question, sql, "spider", db_id=db_id, extra=extra)

    def check_columns(record: dict[str, Any]) -> None:
        require_columns(
            record, dict.fromkeys(REQUIRED, "use Spider's json format (question, query, db_id)"), report.path
        )

    return collect(rows, total, report, make, check_columns, limit), report


def database_problem(folder: Path, db_id: str) -> str | None:
    """Why `<folder>/database/<db_id>/<db_id>.sqlite` cannot run queries, or None if it can.

    Only checked where the release has a `database/` folder (the hub's questions come without one).
    The file is opened read-only and immutable: checking never changes it.
    """
    if not (folder / "database").is_dir():
        return None
    path = folder / "database" / db_id / f"{db_id}.sqlite"
    if not path.is_file():
        return f"{path} is missing"
    if path.stat().st_size == 0:
        return f"{path} is empty (0 bytes)"
    try:
        with contextlib.closing(connect_readonly(path)) as conn:
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.Error as error:
        return f"{path} is not a SQLite database ({error})"
    return None


def _local_files(path: Path | None, split: str) -> tuple[Path | None, list[Path]]:
    """(release folder, the split's json files found there); no files means: use the hub."""
    if path is None:
        return None, []
    if path.is_file():
        return path.parent, [path]
    if not path.is_dir():
        raise DataError(
            f"{path}: no such Spider folder. Fix: point path= at the release folder, or None for the hub"
        )
    names = SPLIT_FILES.get(split, (f"{split}.json",))
    return path, [path / name for name in names if (path / name).is_file()]
