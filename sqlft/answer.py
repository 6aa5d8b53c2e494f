"""Ask a trained model a question about any SQLite file: the prompt is built as in training (same
template, schema serialisation and sample values), the SQL runs read-only under the safe
executor's limits, and the answer carries the SQL, the first rows and any error.

    model, tokenizer, prompt = load_for_ask("smollm2-135m", adapter="runs/demo/phase2/adapter")
    answer = ask("How many singers are there?", "concert_singer.sqlite", model, tokenizer, prompt=prompt)
    print(answer.table())
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from sqlft.config import PromptSection, load_preset
from sqlft.data.records import DataError

CELL_CHARS = 40  # longer values are cut in the printed table


@dataclass
class Answer:
    """The model's SQL for a question and what it returned on the database (or why it did not run)."""

    question: str
    sql: str
    columns: list[str] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    more_rows: bool = False  # the result had more than the rows kept
    error: str | None = None
    candidates: list[str] = field(default_factory=list)  # sampled SQL when asked for n > 1

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "rows": [list(row) for row in self.rows]}

    def table(self) -> str:
        """The SQL, then the rows as a Markdown table (or the error)."""
        lines = [self.sql or "(no SQL in the model's answer)"]
        if self.error:
            return "\n".join([*lines, f"error: {self.error}"])
        cut = [[_cell(v) for v in row] for row in self.rows]
        lines += ["", "| " + " | ".join(self.columns) + " |", "|" + "---|" * len(self.columns)]
        lines += ["| " + " | ".join(row) + " |" for row in cut]
        if self.more_rows:
            lines.append(f"(first {len(self.rows)} rows shown)")
        elif not self.rows:
            lines.append("(no rows)")
        return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "NULL" if value is None else str(value).replace("|", "\\|").replace("\n", " ")
    return text if len(text) <= CELL_CHARS else text[: CELL_CHARS - 1] + "…"


def run_preset(adapter: str | Path) -> Path | None:
    """The preset.yaml of the run folder an adapter came from (<run>/<phase>/adapter), if any."""
    for folder in Path(adapter).resolve().parents[:3]:
        if (folder / "preset.yaml").is_file():
            return folder / "preset.yaml"
    return None


def prompt_settings(preset: str | Path | None = None, adapter: str | Path | None = None) -> PromptSection:
    """How training built its prompts: from `preset`, else the adapter's run folder, else the defaults."""
    source = preset or (run_preset(adapter) if adapter else None)
    return load_preset(source).prompt if source else PromptSection()


def read_schema(db: str | Path, sample_values: int = 0):
    """The schema as training saw it: a Spider-style `tables.json` beside `database/<id>/<id>.sqlite`
    (Spider, the demo) is what training read, so it wins; any other file is read through PRAGMA."""
    from sqlft.schema import Schema, load_tables_json

    db = Path(db)
    if not db.is_file():
        raise DataError(f"{db}: no such SQLite file. Fix: check the path given to --db")
    tables = db.resolve().parents[2] / "tables.json" if len(db.resolve().parents) > 2 else None
    if tables is not None and tables.is_file():
        entry = load_tables_json(tables).get(db.stem)
        if entry is not None:
            return Schema.from_spider(entry, db, sample_values)
    try:
        return Schema.from_sqlite(db, sample_values=sample_values)
    except sqlite3.DatabaseError as error:
        raise DataError(f"{db}: not readable as SQLite ({error}). Fix: give an SQLite file") from error


def build_prompt(question: str, db: str | Path, tokenizer: Any, prompt: PromptSection | None = None) -> str:
    """The prompt training would have built for `question` on the database file `db`."""
    from sqlft.prompts import load_template, render_prompt

    prompt = prompt or PromptSection()
    schema = read_schema(db, prompt.sample_values)
    if not schema.tables:
        raise DataError(f"{db}: no tables. Fix: point --db at an SQLite file with tables")
    text = schema.render(prompt.schema)
    return render_prompt(load_template(prompt.template), text, question, tokenizer, prompt.system)


def ask(
    question: str,
    db: str | Path,
    model: Any,
    tokenizer: Any,
    *,
    prompt: PromptSection | None = None,
    num_samples: int = 1,
    max_rows: int = 10,
    max_new_tokens: int = 256,
    timeout_s: float = 10.0,
    seed: int = 0,
) -> Answer:
    """Generate SQL for `question` on the SQLite file `db` and run it read-only.

    With `num_samples` > 1, that many answers are sampled and the one whose result most of them
    agree on is kept (execution-guided self-consistency, `sqlft.evaluate.consistency`).
    """
    from sqlft.evaluate.consistency import self_consistency
    from sqlft.generate import generate_sql
    from sqlft.sqlexec import QueryError, connect_readonly, run_query

    text = build_prompt(question, db, tokenizer, prompt)
    sampling = num_samples > 1
    [generation] = generate_sql(
        model,
        tokenizer,
        [text],
        max_new_tokens=max_new_tokens,
        do_sample=sampling,
        num_return_sequences=num_samples,
        seed=seed if sampling else None,
        progress=False,
    )
    conn = connect_readonly(db)
    try:
        sql, candidates = generation.sql, [c.sql for c in generation.candidates]
        if sampling:
            vote = self_consistency(
                candidates,
                lambda q: run_query(conn, q, timeout_s, max_rows=10_000, truncate=True),
                [c.score for c in generation.candidates],
            )
            sql = vote.sql
        answer = Answer(question, sql, candidates=candidates)
        if not sql:
            answer.error = "the model's answer holds no SQL"
            return answer
        try:
            rows = run_query(
                conn, sql, timeout_s, max_rows=max_rows + 1, truncate=True, columns=answer.columns
            )
        except QueryError as error:
            answer.error = f"{error.kind}: {error}"
            return answer
        answer.rows, answer.more_rows = rows[:max_rows], len(rows) > max_rows
        return answer
    finally:
        conn.close()


def load_for_ask(
    model: str,
    adapter: str | Path | None = None,
    preset: str | Path | None = None,
    *,
    quantization: str | None = None,
    allow_other_base: bool = False,
) -> tuple[Any, Any, PromptSection]:
    """Model, tokenizer and the prompt settings training used (preset, else the adapter's run folder)."""
    from sqlft.inference import load_for_inference

    prompt = prompt_settings(preset, adapter)
    loaded, tokenizer = load_for_inference(model, adapter, quantization, allow_other_base=allow_other_base)
    return loaded, tokenizer, prompt
