"""From a source to training/eval records in one call: load, find schemas, build prompts, guard length.

The `sqlft data` command and the notebooks both call `prepare_records`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlft.data import load_examples
from sqlft.data.records import LoadReport
from sqlft.prompts import build_records, length_stats, load_template


@dataclass
class Prepared:
    records: list[dict[str, Any]]
    report: LoadReport
    prompt_tokens: dict[str, int]

    def summary(self) -> str:
        lines = [self.report.summary()]
        if self.prompt_tokens:
            t = self.prompt_tokens
            lines.append(f"prompt tokens: p50 {t['p50']}, p95 {t['p95']}, max {t['max']} (n={t['count']})")
        return "\n".join(lines)

    def write_jsonl(self, path: str | Path) -> Path:
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", encoding="utf-8") as out:
            for record in self.records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        return path


def source_root(source: str, path: str | Path | None) -> Path | None:
    """The folder that holds `tables.json` and `database/` for a source, when there is one."""
    if source == "demo":
        from sqlft.data.demo import demo_dir

        return Path(path) if path else demo_dir()
    if path is None:
        return None
    path = Path(path)
    return path if path.is_dir() else path.parent


def prepare_records(
    source: str,
    path: str | Path | None = None,
    split: str | None = None,
    *,
    schema_style: str = "ddl",
    sample_values: int = 0,
    tokenizer: Any = None,
    max_length: int | None = None,
    template: str | Path = "default",
    db_dir: str | Path | None = None,
    tables_json: str | Path | None = None,
    strict: bool = False,
    limit: int | None = None,
    system: str | None = None,
    **loader_options: Any,
) -> Prepared:
    """Load `source` and turn every example into a prompt/completion record with its schema."""
    from sqlft.schema import SchemaStore

    root = source_root(source, path)
    if root is not None:
        db_dir = db_dir or (root / "database" if (root / "database").is_dir() else None)
        tables_json = tables_json or (root / "tables.json" if (root / "tables.json").is_file() else None)
    if source == "spider" and tables_json is not None:
        loader_options.setdefault("tables_json", tables_json)
    if source == "csv" and db_dir is not None:
        loader_options.setdefault("db_dir", db_dir)
    examples, report = load_examples(source, path, split, strict=strict, limit=limit, **loader_options)
    store = SchemaStore(db_dir=db_dir, tables_json=tables_json, sample_values=sample_values)
    tmpl = load_template(template)
    records = build_records(
        examples,
        store.for_example,
        report,
        template=tmpl,
        tokenizer=tokenizer,
        style=schema_style,
        max_length=max_length,
        system=system,
    )
    lengths = []
    if tokenizer is not None:
        lengths = [len(tokenizer(r["prompt"], add_special_tokens=False)["input_ids"]) for r in records]
    return Prepared(records, report, length_stats(lengths))
