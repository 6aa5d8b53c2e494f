"""JSON Lines reading shared by the loaders, `sqlft predict` and `sqlft eval`; each caller decides
what a bad line means for it (an error, a counted skip, a record marked bad)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any


def jsonl_lines(path: str | Path) -> Iterator[tuple[int, dict[str, Any] | None, str | None]]:
    """(line number, object, None) for each non-blank line, or (line number, None, what is wrong)."""
    with open(path, encoding="utf-8") as lines:
        for number, line in enumerate(lines, start=1):
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
