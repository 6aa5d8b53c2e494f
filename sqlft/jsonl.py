"""JSON Lines reading and writing shared by the loaders, `sqlft predict` and `sqlft eval`; each caller decides
what a bad line means for it (an error, a counted skip, a record marked bad)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any


def jsonl_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, object, None) for each non-blank line, or (line number, None, what is wrong).

    Lines are decoded one by one, so bytes that are not UTF-8 cost their own line only.
    """
    offset = 0
    with open(path, "rb") as lines:
        for number, raw in enumerate(lines, start=1):
            start, offset = offset, offset + len(raw)
            try:
                line = raw.decode("utf-8-sig" if number == 1 else "utf-8")
            except UnicodeDecodeError as error:
                yield number, None, f"undecodable bytes (not UTF-8) at byte {start + error.start}"
                continue
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                yield number, None, f"not valid JSON ({error.msg})"
                continue
            if not isinstance(record, dict):
                yield number, None, f"not a JSON object (a {type(record).__name__})"
                continue
            yield number, record, None


def write_jsonl(records: Iterable[dict[str, Any]], path: str | Path) -> Path:
    """One JSON object per line (UTF-8, not escaped), creating the folder; returns the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as out:
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    return path
