"""SQL sample callback: at every evaluation, answer a fixed handful of dev questions and show them.

The eval loss says little about whether the SQL runs; a few generated queries beside their gold,
with "executes?" and "matches?" (execution match, as in `sqlft.evaluate`), show what the model
writes as training goes. Rows go to stdout as a table, to a CSV in the run directory (one row per
question per evaluation, with the step) and to a W&B Table when a wandb run is active.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from transformers import TrainerCallback

from sqlft.progressbar import in_notebook

COLUMNS = ["step", "question", "gold", "generated", "executes", "matches"]


def _gold(record: dict[str, Any], eos: str | None) -> str:
    if record.get("sql"):
        return record["sql"]
    completion = record["completion"]
    return completion.removesuffix(eos) if eos else completion


def _short(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_table(rows: list[dict[str, Any]], width: int = 48) -> str:
    """A plain-text table of sample rows, one line each, long text cut to `width`."""
    lines = [f"{'question':<{width}} | {'gold':<{width}} | {'generated':<{width}} | exec | match"]
    for row in rows:
        lines.append(
            f"{_short(row['question'], width):<{width}} | {_short(row['gold'], width):<{width}} | "
            f"{_short(row['generated'], width):<{width}} | {'yes' if row['executes'] else 'no':<4} | "
            f"{'yes' if row['matches'] else 'no'}"
        )
    return "\n".join(lines)


class SQLSampleCallback(TrainerCallback):
    """Generates SQL for `records` (prompt + gold + db_id/context) greedily at each evaluation.

    `db_dir` holds `<db_id>/<db_id>.sqlite` for records with a db_id; records with a `context`
    (CREATE TABLE statements) run on an in-memory database built from it. The CSV goes to
    `csv_path`, default `<output_dir>/sql_samples.csv`. `every` > 0 samples every that many
    optimizer steps instead, for a trainer that never evaluates (phase 3's GRPO).
    """

    def __init__(
        self,
        tokenizer: Any,
        records: list[dict[str, Any]],
        *,
        db_dir: str | Path | None = None,
        max_new_tokens: int = 128,
        batch_size: int = 8,
        csv_path: str | Path | None = None,
        show: bool = True,
        schema_constrained: bool = False,
        every: int = 0,
    ):
        if not records:
            raise ValueError("SQLSampleCallback needs at least one record with a prompt")
        self.tokenizer = tokenizer
        self.records = records
        self.db_dir = db_dir
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size
        self.csv_path = Path(csv_path) if csv_path else None
        self.show = show
        self.every = every
        self.schemas = None
        if schema_constrained:  # the samples name only tables and columns of their schema
            from sqlft.constrained import record_schemas

            self.schemas = record_schemas(records, db_dir)
        self.history: list[dict[str, Any]] = []

    def sample(self, model: Any, step: int) -> list[dict[str, Any]]:
        """Generate, execute and compare; the model is back in its previous mode afterwards."""
        from sqlft.evaluate.bird import resolve_semantics
        from sqlft.evaluate.execution import Executor
        from sqlft.generate import generate_sql

        was_training = model.training
        try:
            generations = generate_sql(
                model,
                self.tokenizer,
                [r["prompt"] for r in self.records],
                batch_size=self.batch_size,
                max_new_tokens=self.max_new_tokens,
                progress=False,
                schemas=self.schemas,
            )
        finally:
            model.train(was_training)
        executor = Executor(self.db_dir, timeout_s=5.0, semantics=resolve_semantics("auto", self.records))
        rows = []
        try:
            for record, generation in zip(self.records, generations, strict=True):
                gold = _gold(record, self.tokenizer.eos_token)
                outcome = executor.exec_match(
                    generation.sql, gold, record.get("db_id"), record.get("context")
                )
                rows.append(
                    {
                        "step": step,
                        "question": record.get("question", ""),
                        "gold": gold,
                        "generated": generation.sql,
                        "executes": outcome.valid is True,
                        "matches": outcome.match,
                    }
                )
        finally:
            executor.close()
        return rows

    def on_evaluate(self, args, state, control, model=None, **kwargs):
        if not self.every:
            self._sample_and_show(args, state, model)

    def on_step_end(self, args, state, control, model=None, **kwargs):
        if self.every and (state.global_step % self.every == 0 or state.global_step >= state.max_steps):
            self._sample_and_show(args, state, model)

    def _sample_and_show(self, args, state, model) -> None:
        if model is None or not state.is_world_process_zero:  # one sampler under data parallelism
            return
        rows = self.sample(model, state.global_step)
        model.train()  # evaluation left it in eval mode; training resumes after this hook
        self.history.extend(rows)
        if self.show:
            matched, ran = sum(r["matches"] for r in rows), sum(r["executes"] for r in rows)
            print(f"SQL samples at step {state.global_step}: {ran}/{len(rows)} execute, {matched} match")
            if not in_notebook():  # a notebook shows the samples once, in full, after training
                print(format_table(rows))
        self._write_csv(rows, self.csv_path or Path(args.output_dir) / "sql_samples.csv")
        self._log_wandb(rows, state.global_step)

    @staticmethod
    def _write_csv(rows: list[dict[str, Any]], path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        new = not path.exists()
        with path.open("a", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=COLUMNS)
            if new:
                writer.writeheader()
            writer.writerows(rows)

    def _log_wandb(self, rows: list[dict[str, Any]], step: int) -> None:
        """A table of every sample so far (W&B tables are immutable, so each log carries the history)."""
        try:
            import wandb
        except ImportError:
            return
        if wandb.run is None:
            return
        table = wandb.Table(columns=COLUMNS, data=[[r[c] for c in COLUMNS] for r in self.history])
        # the step goes in as HF's WandbCallback step metric, so this log never rewinds wandb's own step
        wandb.log({"sql_samples": table, "train/global_step": step})
