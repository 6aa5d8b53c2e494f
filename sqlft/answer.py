"""Ask a trained model a question about any SQLite file: the prompt is built as in training (same
template, schema serialisation and sample values), the answer is decoded so that it names only the
file's tables and columns (`sqlft.constrained`), the SQL runs read-only under the safe executor's
limits, and the answer carries the SQL, the first rows or the error, and its `outcome`.

    model, tokenizer, prompt = load_for_ask("smollm2-135m", adapter="runs/demo/phase2/adapter")
    answer = ask("How many singers are there?", "concert_singer.sqlite", model, tokenizer, prompt=prompt)
    print(answer.table())
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from sqlft.config import ModelSection, PromptSection, load_preset
from sqlft.data.records import DataError

if TYPE_CHECKING:
    from sqlft.schema import Schema

CELL_CHARS = 40  # longer values are cut in the printed table
# `sqlft ask`'s exit status per outcome (README, "Ask your own database"); 2 is bad input
EXIT_STATUS = {"rows": 0, "no_sql": 3, "sql_error": 4}
BAD_INPUT = 2


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
    schema_constrained: bool = True  # how it was decoded, for the hint when it fails
    num_samples: int = 1

    @property
    def outcome(self) -> str:
        """rows (the query ran), no_sql (the model wrote none) or sql_error (SQLite refused or failed it)."""
        return "no_sql" if not self.sql else "sql_error" if self.error else "rows"

    @property
    def exit_status(self) -> int:
        return EXIT_STATUS[self.outcome]

    def hint(self) -> str | None:
        """One line for a failed answer: what was tried and what may work better."""
        if self.outcome == "rows":
            return None
        tried = "schema-constrained" if self.schema_constrained else "unconstrained"
        tried += " greedy decoding" if self.num_samples == 1 else f" sampling, {self.num_samples} answers"
        more = (
            "an adapter trained on databases like this one (--adapter)"
            if self.num_samples > 1
            else "-n 8 (eight sampled answers, the majority result wins)"
        )
        fixes = [more, "a preset with sample values (prompt.sample_values) so the prompt shows real values"]
        if not self.schema_constrained:
            fixes.insert(0, "leave out --no-schema-constrained")
        return f"tried {tried}; try {'; '.join(fixes)}"

    def to_dict(self) -> dict[str, Any]:
        rows = [list(row) for row in self.rows]
        return {**asdict(self), "rows": rows, "outcome": self.outcome, "hint": self.hint()}

    def table(self) -> str:
        """The SQL, then the rows as a Markdown table (or the error and what to try)."""
        lines = [self.sql or "(no SQL in the model's answer)"]
        if self.outcome != "rows":
            return "\n".join([*lines, f"error: {self.error}", f"hint: {self.hint()}"])
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
    (Spider, the demo) is what training read, so it wins; any other file is read through PRAGMA.
    A missing file, one that is not SQLite and one without tables are errors that say so."""
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
        schema = Schema.from_sqlite(db, sample_values=sample_values)
    except sqlite3.DatabaseError as error:
        raise DataError(f"{db}: not readable as SQLite ({error}). Fix: give an SQLite file") from error
    if not schema.tables:
        raise DataError(f"{db}: no tables. Fix: point --db at an SQLite file with tables")
    return schema


def schema_text(schema: Schema, question: str, prompt: PromptSection) -> str:
    """The schema as the prompt shows it for `question`: where value retrieval (issue 25) plugs in,
    putting the database values the question mentions beside their columns, as training did."""
    return schema.render(prompt.schema)


def prompt_and_schema(
    question: str, db: str | Path, tokenizer: Any, prompt: PromptSection | None = None
) -> tuple[str, Schema]:
    """The prompt training would have built for `question` on the database file `db`, and the
    Schema it shows (what constrained decoding allows)."""
    from sqlft.prompts import load_template, render_prompt

    prompt = prompt or PromptSection()
    schema = read_schema(db, prompt.sample_values)
    text = schema_text(schema, question, prompt)
    return render_prompt(load_template(prompt.template), text, question, tokenizer, prompt.system), schema


def build_prompt(question: str, db: str | Path, tokenizer: Any, prompt: PromptSection | None = None) -> str:
    """The prompt training would have built for `question` on the database file `db`."""
    return prompt_and_schema(question, db, tokenizer, prompt)[0]


def ask(
    question: str,
    db: str | Path,
    model: Any,
    tokenizer: Any,
    *,
    prompt: PromptSection | None = None,
    num_samples: int = 1,
    schema_constrained: bool = True,
    max_rows: int = 10,
    max_new_tokens: int = 256,
    timeout_s: float = 10.0,
    seed: int = 0,
) -> Answer:
    """Generate SQL for `question` on the SQLite file `db` and run it read-only.

    With `schema_constrained` (the default) every table and column the answer names is one of the
    file's. With `num_samples` > 1, that many answers are sampled and the one whose result most of
    them agree on is kept (execution-guided self-consistency, `sqlft.evaluate.consistency`).
    """
    from sqlft.evaluate.consistency import self_consistency
    from sqlft.generate import generate_sql
    from sqlft.sqlexec import QueryError, connect_readonly, run_query

    text, schema = prompt_and_schema(question, db, tokenizer, prompt)
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
        schemas=[schema] if schema_constrained else None,
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
        answer.schema_constrained, answer.num_samples = schema_constrained, num_samples
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


def load_settings(preset: str | Path | None = None, adapter: str | Path | None = None) -> ModelSection:
    """How training loaded its model: from `preset`, else the adapter's run folder, else unquantised on
    CPU or GPU 0 (an adapter from elsewhere, or a base model alone)."""
    source = preset or (run_preset(adapter) if adapter else None)
    if source:
        return load_preset(source).model
    return ModelSection(quantization="none", placement="auto")


def load_for_ask(
    model: str,
    adapter: str | Path | None = None,
    preset: str | Path | None = None,
    *,
    quantization: str | None = None,
    allow_other_base: bool = False,
    settings: ModelSection | None = None,
) -> tuple[Any, Any, PromptSection]:
    """Model, tokenizer and the prompt settings training used (preset, else the adapter's run folder).

    The model loads as training loaded it: the preset's quantisation (`quantization` overrides it),
    compute dtype and placement (`settings`, a preset's model section, overrides them all), in one
    process (`ddp`, one replica per GPU, becomes one GPU): a model that trained on a T4 in 4 bits is
    asked in 4 bits on the same kind of GPU.
    """
    from sqlft.inference import load_for_inference

    prompt = prompt_settings(preset, adapter)
    settings = settings or load_settings(preset, adapter)
    loaded, tokenizer = load_for_inference(
        model,
        adapter,
        quantization or settings.quantization,
        allow_other_base=allow_other_base,
        compute_dtype=settings.compute_dtype,
        placement="single" if settings.placement == "ddp" else settings.placement,
        max_memory_per_gpu=settings.max_memory_per_gpu,
    )
    return loaded, tokenizer, prompt


def ask_skip_reason(
    settings: ModelSection, *, max_new_tokens: int = 256, prompt_tokens: int = 1024
) -> str | None:
    """Why the model cannot be asked on this machine's GPU, or None: its planned generation memory
    (`sqlft.plan`) against the GPU's free memory. A CPU placement is not checked."""
    import torch

    from sqlft.placement import choose_placement
    from sqlft.plan import GIB, ModelShape, Setup, generation_plan, read_config

    placement = "single" if settings.placement == "ddp" else settings.placement
    where = choose_placement(placement, max_memory_per_gpu=settings.max_memory_per_gpu)
    if not where.on_gpu:
        return None
    gpus = torch.cuda.device_count() if where.mode == "split" else 1
    free = min(torch.cuda.mem_get_info(i)[0] for i in range(gpus)) / GIB
    quantization = None if settings.quantization == "none" else settings.quantization
    shape = ModelShape.from_config(read_config(settings.name, hub=False)[0], settings.name)
    setup = Setup(quantization=quantization, placement=where.mode, gpus=gpus, gpu_gib=free)
    need = generation_plan(shape, setup, 1, prompt_tokens, max_new_tokens, settings.name).per_gpu_gib
    if need <= free:
        return None
    return (
        f"asking {settings.name} ({settings.quantization}) needs about {need:.1f} GiB per GPU and the "
        f"GPU has {free:.1f} GiB free: run `sqlft ask` where the model fits (a larger GPU, or "
        "--quantization nf4)"
    )


def notebook_ask(config: Any, adapter: str | Path, db: str | Path, question: str) -> str:
    """What 04's "ask your own database" cell prints: the answer, or why it was skipped. It runs after
    the evaluation is marked done, so a model that does not fit says so instead of failing the kernel."""
    reason = ask_skip_reason(config.model)
    if reason:
        return f"skipped: {reason}"
    try:
        model, tokenizer, _ = load_for_ask(config.model.name, adapter, settings=config.model)
    except (DataError, OSError, RuntimeError) as error:  # RuntimeError: CUDA out of memory
        return f"skipped: loading {config.model.name} for asking failed ({error})"
    answer = ask(question, db, model, tokenizer, prompt=config.prompt)
    return f"database {Path(db).name}\n{answer.table()}"
