"""Loaders: every supported source becomes the same `Example` records plus a `LoadReport`.

Each loader has the signature `load(path, split, *, strict=False, limit=None, **options)` and
returns `(examples, report)`; it is imported only when its source is asked for.
"""

from __future__ import annotations

from importlib import import_module
from pathlib import Path

from sqlft.data.records import DataError, Example, LoadReport

__all__ = ["DataError", "Example", "LoadReport", "SOURCES", "load_examples"]

# source name -> "module:function"
SOURCES = {
    "spider": "sqlft.data.spider:load_spider",
    "gretel": "sqlft.data.gretel:load_gretel",
    "sql-create-context": "sqlft.data.create_context:load_create_context",
    "csv": "sqlft.data.user_files:load_user_file",
    "demo": "sqlft.data.demo:load_demo",
    "bird": "sqlft.data.bird:load_bird",
}


def load_examples(
    source: str,
    path: str | Path | None = None,
    split: str | None = None,
    *,
    strict: bool = False,
    limit: int | None = None,
    **options,
) -> tuple[list[Example], LoadReport]:
    """Load `source` from a local `path` (or, where the loader supports it, its hub id when path is None)."""
    if source not in SOURCES:
        raise DataError(f"unknown data source {source!r}: choose one of {', '.join(SOURCES)}")
    module_name, func_name = SOURCES[source].split(":")
    loader = getattr(import_module(module_name), func_name)
    return loader(path, split, strict=strict, limit=limit, **options)
