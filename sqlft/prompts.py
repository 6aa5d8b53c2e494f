"""Prompt/completion records: a template file filled with schema and question, passed through the
tokenizer's chat template, and the gold SQL ending in EOS so a trained model learns to stop.

Templates are text files with the fields `{schema}` and `{question}`, and optionally `{evidence}`
(BIRD's external knowledge): a shipped name (`default`, `plain`) or a path to the user's own file.
The line that holds `{evidence}` is left out whole when a record has no evidence, so Spider's
prompts read as they would without the slot. A length guard drops (never truncates)
records that do not fit `max_length`: a cut-off SQL target teaches the model to write cut-off SQL.
"""

from __future__ import annotations

import math
import string
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from sqlft.data.records import DataError, Example, LoadReport
from sqlft.values import grouped

TEMPLATE_FIELDS = {"schema", "question"}
OPTIONAL_FIELDS = {"evidence"}


@dataclass(frozen=True)
class Template:
    """A prompt template and where it came from (for error messages)."""

    text: str
    origin: str

    @property
    def has_evidence(self) -> bool:
        return "evidence" in _fields(self.text)

    def fill(self, schema: str, question: str, evidence: str = "") -> str:
        text = self.text
        if not evidence.strip():  # the evidence line goes, with its label
            text = "".join(line for line in text.splitlines(keepends=True) if "evidence" not in _fields(line))
        return text.format(schema=schema, question=question, evidence=" ".join(evidence.split())).strip()


def _fields(text: str) -> set[str]:
    """The replacement fields of a template text (`{{` and `}}` are literal braces, not fields)."""
    return {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}


def shipped_templates() -> list[str]:
    return sorted(
        p.name.removesuffix(".txt")
        for p in resources.files("sqlft.templates").iterdir()
        if p.name.endswith(".txt")
    )


def load_template(name_or_path: str | Path = "default") -> Template:
    """A shipped template by name, or the user's own file; its fields are checked here, not at use."""
    path = Path(name_or_path)
    if path.suffix == ".txt" or len(path.parts) > 1:
        if not path.is_file():
            raise DataError(
                f"{path}: prompt template not found. Fix: give an existing file or one of "
                f"the shipped templates: {', '.join(shipped_templates())}"
            )
        text, origin = path.read_text(encoding="utf-8"), str(path)
    else:
        shipped = resources.files("sqlft.templates") / f"{name_or_path}.txt"
        if not shipped.is_file():
            raise DataError(
                f"unknown prompt template {name_or_path!r}. Fix: use one of "
                f"{', '.join(shipped_templates())} or a path to a template file"
            )
        text, origin = shipped.read_text(encoding="utf-8"), f"sqlft/templates/{name_or_path}.txt"
    try:
        fields = _fields(text)
    except ValueError as error:
        raise DataError(
            f"{origin}: malformed template ({error}). Fix: write literal braces as {{{{ and }}}}"
        ) from error
    if not TEMPLATE_FIELDS <= fields <= TEMPLATE_FIELDS | OPTIONAL_FIELDS:
        raise DataError(
            f"{origin}: template fields are {sorted(fields)}, expected {{schema}} and {{question}} "
            "(and optionally {evidence}). Fix: use those fields, and write literal braces as {{ and }}"
        )
    return Template(text, origin)


def render_prompt(
    template: Template,
    schema: str,
    question: str,
    tokenizer: Any = None,
    system: str | None = None,
    evidence: str = "",
) -> str:
    """The text the model sees before its answer: through the chat template when the tokenizer has one."""
    user = template.fill(schema, question, evidence)
    if tokenizer is None or not getattr(tokenizer, "chat_template", None):
        return user + "\n"
    messages = [{"role": "system", "content": system}] if system else []
    messages.append({"role": "user", "content": user})
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def completion_text(sql: str, tokenizer: Any = None) -> str:
    """The supervised answer: the SQL alone, then EOS so that the model learns to stop."""
    eos = getattr(tokenizer, "eos_token", None) or ""
    return sql.strip() + eos


@dataclass
class LengthGuard:
    """Counts prompt+completion tokens; records over `max_length` are dropped and counted."""

    tokenizer: Any
    max_length: int
    prompt_lengths: list[int] = field(default_factory=list)

    def fits(self, prompt: str, completion: str) -> tuple[bool, int]:
        n_prompt = len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        n_total = n_prompt + len(self.tokenizer(completion, add_special_tokens=False)["input_ids"])
        if n_total <= self.max_length:
            self.prompt_lengths.append(n_prompt)
        return n_total <= self.max_length, n_total


def build_records(
    examples: list[Example],
    schema_for: Any,
    report: LoadReport,
    *,
    template: Template | None = None,
    tokenizer: Any = None,
    style: str = "ddl",
    max_length: int | None = None,
    system: str | None = None,
    values_for: Any = None,
) -> list[dict[str, Any]]:
    """Prompt/completion records for `examples`; `schema_for(example)` returns a Schema.

    `values_for(example)`, when given, returns the database values its question mentions
    (`sqlft.values`): kept in `extra["retrieved_values"]` and shown beside their columns. A record
    whose database cannot be searched keeps an empty list and counts as a warning in `report`.

    Examples whose schema cannot be found, or that do not fit `max_length`, are skipped with a
    reason in `report` (an error in strict mode); the others are kept in order.
    """
    template = template or load_template("default")
    if max_length is not None and tokenizer is None:
        raise DataError("a length guard needs a tokenizer. Fix: pass --tokenizer with --max-length")
    guard = LengthGuard(tokenizer, max_length) if max_length is not None else None
    records = []
    shortest_too_long = None
    for index, example in enumerate(examples):
        where = f"record {index} (db_id={example.db_id})"
        try:
            schema = schema_for(example)
        except DataError as error:
            report.skip(where, "schema not found", str(error))
            continue
        values = None
        if values_for is not None:
            try:
                example.extra["retrieved_values"] = values_for(example)
            except DataError as error:  # the record stays, without values, and the report says so
                report.warn(f"no values retrieved: {error}")
                example.extra["retrieved_values"] = []
            values = grouped(example.extra["retrieved_values"])
        schema_text = schema.render(style, values)
        evidence = example.extra.get("evidence") or ""
        if evidence and not template.has_evidence:
            report.warn(f"{template.origin} has no {{evidence}} slot: these records' evidence is left out")
        prompt = render_prompt(template, schema_text, example.question, tokenizer, system, evidence)
        completion = completion_text(example.sql, tokenizer)
        if guard is not None:
            fits, n_tokens = guard.fits(prompt, completion)
            if not fits:
                shortest_too_long = min(n_tokens, shortest_too_long or n_tokens)
                report.skip(
                    where,
                    f"longer than max_length={max_length} tokens",
                    f"{n_tokens} tokens",
                    fix="raise --max-length or use --schema compact",
                )
                continue
        records.append({**example.to_dict(), "prompt": prompt, "completion": completion})
    report.kept = len(records)
    if not records and shortest_too_long is not None:
        raise DataError(
            f"{report.path}: no record fits max_length={max_length} tokens (the shortest needs "
            f"{shortest_too_long}). Fix: raise prompt.max_length (--max-length) to at least "
            f"{shortest_too_long}, or use the compact schema"
        )
    return records


def length_stats(lengths: list[int]) -> dict[str, int]:
    """p50, p95 and max of token lengths (nearest-rank percentiles)."""
    if not lengths:
        return {}
    ordered = sorted(lengths)

    def rank(q: float) -> int:
        return ordered[max(0, math.ceil(q * len(ordered)) - 1)]

    return {"count": len(ordered), "p50": rank(0.50), "p95": rank(0.95), "max": ordered[-1]}
