"""From a source to training/eval records in one call: load, find schemas, build prompts, guard length.

The `sqlft data` command and the notebooks both call `prepare_records`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlft.data import load_examples
from sqlft.data.records import DataError, LoadReport
from sqlft.jsonl import write_jsonl
from sqlft.prompts import build_records, length_stats, load_template


@dataclass
class Prepared:
    records: list[dict[str, Any]]
    report: LoadReport
    prompt_tokens: dict[str, int]
    db_dir: Path | None = None  # where records with a db_id find <db_id>/<db_id>.sqlite

    def summary(self) -> str:
        lines = [self.report.summary()]
        if self.prompt_tokens:
            t = self.prompt_tokens
            lines.append(f"prompt tokens: p50 {t['p50']}, p95 {t['p95']}, max {t['max']} (n={t['count']})")
        retrieved = [r["extra"]["retrieved_values"] for r in self.records if "retrieved_values" in r["extra"]]
        if retrieved:
            found = sum(map(len, retrieved))
            lines.append(
                f"value retrieval: {sum(map(bool, retrieved))} of {len(retrieved)} questions name database "
                f"values ({found / len(retrieved):.2f} values per question)"
            )
        return "\n".join(lines)

    def save(self, path: str | Path) -> Path:
        """Records as JSON Lines at `path`, and beside it `<name>.meta.json` (db_dir, report, lengths)."""
        path = write_jsonl(self.records, path)
        meta = {
            "db_dir": str(self.db_dir) if self.db_dir else None,
            "report": self.report.to_dict(),
            "prompt_tokens": self.prompt_tokens,
        }
        _meta_path(path).write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
        return path

    @classmethod
    def load(cls, path: str | Path) -> Prepared:
        """Read back what `save` wrote (the training step reads what the data step prepared)."""
        path = Path(path)
        meta = json.loads(_meta_path(path).read_text(encoding="utf-8"))
        report = LoadReport(meta["report"]["source"], meta["report"]["path"])
        report.read, report.kept = meta["report"]["read"], meta["report"]["kept"]
        report.dropped.update(meta["report"]["dropped"])
        report.samples = meta["report"]["samples"]
        with path.open(encoding="utf-8") as lines:
            records = [json.loads(line) for line in lines if line.strip()]
        return cls(records, report, meta["prompt_tokens"], Path(meta["db_dir"]) if meta["db_dir"] else None)


def _meta_path(path: Path) -> Path:
    return path.with_name(path.stem + ".meta.json")


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
    value_retrieval: int = 0,
    descriptions: bool = False,
    **loader_options: Any,
) -> Prepared:
    """Load `source` and turn every example into a prompt/completion record with its schema.

    `value_retrieval` > 0 adds up to that many database values the question mentions (sqlft.values);
    `descriptions` (BIRD) adds each database's column notes from its description CSVs to the schema.
    """
    from sqlft.schema import SchemaStore
    from sqlft.values import ValueRetriever

    root = source_root(source, path)
    if source == "bird":
        from sqlft.data.bird import database_dir, split_file

        db_dir = db_dir or database_dir(split_file(path, split or "dev"), split or "dev")
        loader_options.setdefault("db_dir", db_dir)
    elif root is not None:
        db_dir = db_dir or (root / "database" if (root / "database").is_dir() else None)
        tables_json = tables_json or (root / "tables.json" if (root / "tables.json").is_file() else None)
    if source == "spider" and tables_json is not None:
        loader_options.setdefault("tables_json", tables_json)
    if source == "csv" and db_dir is not None:
        loader_options.setdefault("db_dir", db_dir)
    examples, report = load_examples(source, path, split, strict=strict, limit=limit, **loader_options)
    store = SchemaStore(db_dir=db_dir, tables_json=tables_json, sample_values=sample_values)
    tmpl = load_template(template)
    schema_for = store.for_example
    if descriptions:
        if source != "bird" or db_dir is None:
            raise DataError(
                "column descriptions come from BIRD's database_description CSVs. Fix: use --source bird"
            )
        from sqlft.data.bird import with_descriptions

        schema_for = with_descriptions(schema_for, Path(db_dir), report)
    retriever = ValueRetriever(value_retrieval, db_dir) if value_retrieval else None
    try:
        records = build_records(
            examples,
            schema_for,
            report,
            template=tmpl,
            tokenizer=tokenizer,
            style=schema_style,
            max_length=max_length,
            system=system,
            values_for=retriever.for_example if retriever else None,
        )
    finally:
        if retriever is not None:
            retriever.close()
    lengths = []
    if tokenizer is not None:
        lengths = [len(tokenizer(r["prompt"], add_special_tokens=False)["input_ids"]) for r in records]
    return Prepared(records, report, length_stats(lengths), Path(db_dir) if db_dir else None)
