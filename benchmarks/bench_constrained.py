"""Schema-constrained decoding vs plain greedy decoding, SmolLM2-135M zero-shot, held-out databases.

On the fixed third of the held-out Spider questions the ablations use (`benchmarks/spider_split.py`),
the model answers greedily at batch 16, once plainly and once with `generate_sql(schemas=...)`.
Both are scored by `sqlft eval`'s execution match; "unknown name" counts answers whose execution
fails with SQLite's "no such table/column".

    OMP_NUM_THREADS=1 python benchmarks/bench_constrained.py [--every 3]
        [--train-minutes M | --adapter DIR [--label TEXT]] [--limit N] [--only constrained]

Each decoding's predictions and its unknown-name failures (answer, SQLite's error) are written
under runs/bench/constrained-<arm>/ (not in git). `--limit N` (the first N questions) and `--only`
are for quick looks: such a run prints its numbers and writes no result file.

Writes benchmarks/results/bench_constrained.json (the zero-shot arm), or
bench_constrained_adapter.json for an adapter: one given, or one trained here first for M minutes
on the training databases (the learning benchmark's recipe, shorter: not its 60-minute adapter).
"""

from __future__ import annotations

import argparse
import json
import re
import time
from collections import Counter
from pathlib import Path
from typing import Any

from common import write_result
from learning import RUNS, Arm, load_base
from learning import _phase as train_phase
from spider_split import split_records


def failure_class(sql: str, error: str, schema, raw: str | None = None) -> str:
    """Why an answer fails with SQLite's "no such table/column": the kind of name, and where it
    stands against the scopes of the query (sqlglot's) and the schema. With the model's `raw`
    output of a constrained answer: whether the constraint let it go (it rejects that text)."""
    import sqlglot
    from sqlglot.dialects.sqlite import SQLite
    from sqlglot.optimizer.scope import traverse_scope

    from sqlft.constrained import SchemaNames, sql_functions, start_state

    match = re.search(r"no such (table|column): (\S+)", error)
    if match is None:
        return "other"
    kind, name = match.group(1), match.group(2).lower()
    if raw is not None and start_state(schema).feed(raw) is None:
        return "released by the constraint (a state no token continues), then unconstrained"
    if " from " not in f" {sql.lower()} ":
        return "no FROM (cut off)"
    if kind == "table":
        return "unknown table"
    names = SchemaNames(schema)
    try:
        scopes = traverse_scope(sqlglot.parse_one(sql, read="sqlite"))
    except Exception:  # noqa: BLE001 - SQLite ran it; sqlglot may not parse it
        scopes = []
    qualifier, _, column = name.rpartition(".")
    if not qualifier:
        dialect_words = {w for text in SQLite.Tokenizer.KEYWORDS for w in text.lower().split()}
        if column in sql_functions():
            return "function name without a call"
        if column in dialect_words:
            return "another dialect's keyword as a name"
        if column not in names.all_columns:
            return "bare name in no table"
        joined = " on " in f" {sql.lower()} "
        return "bare column of a table not in its FROM" + (" (FROM with JOIN ... ON)" if joined else "")
    for scope in scopes:
        if not any((c.table or "").lower() == qualifier and c.name.lower() == column for c in scope.columns):
            continue
        chain, here = [], scope
        while here is not None:
            chain.append(here)
            here = here.parent
        sources = {alias.lower(): source for s in chain for alias, source in s.sources.items()}
        if qualifier in sources:
            source = sources[qualifier]
            if isinstance(source, sqlglot.exp.Table) and column in names.all_columns:
                return "qualified column its table lacks"
            return "qualified name in no table"
        if any(qualifier in {a.lower() for a in s.sources} for s in scopes):
            return "alias of another query (subquery, UNION branch)"
        if qualifier in names.tables:
            return "table name hidden by its alias or not in the FROM"
        return "qualifier defined nowhere"
    return "qualified (unparsed)"


def decode(model, tokenizer, records: list[dict], db_dir, schemas, out: Path | None = None) -> dict[str, Any]:
    """Greedy answers at batch 16, scored: accuracy, unknown names, valid SQL, speed; with `out`,
    the predictions and the unknown-name failures are written there."""
    from sqlft.constrained import record_schemas
    from sqlft.evaluate import evaluate_predictions
    from sqlft.generate import predict_records
    from sqlft.jsonl import write_jsonl

    started = time.perf_counter()
    predictions = predict_records(
        model, tokenizer, records, batch_size=16, max_new_tokens=128, progress=False, schemas=schemas
    )
    seconds = time.perf_counter() - started
    tokens = sum(len(tokenizer(p["raw"], add_special_tokens=False)["input_ids"]) for p in predictions)
    report = evaluate_predictions(predictions, db_dir, with_rouge=False)
    unknown = [r for r in report["records"] if "no such" in (r.get("error") or "")]
    no_from = sum(" from " not in f" {r['pred'].lower()} " for r in unknown)
    schema_of = dict(zip((r["db_id"] for r in records), record_schemas(records, db_dir), strict=True))
    raw = {p["pred"]: p["raw"] for p in predictions} if schemas is not None else {}
    classes = [
        failure_class(r["pred"], r["error"], schema_of[r["db_id"]], raw.get(r["pred"])) for r in unknown
    ]
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        write_jsonl(predictions, out / "predictions.jsonl")
        write_jsonl(
            [{"db_id": r["db_id"], "pred": r["pred"], "error": r["error"]} for r in unknown],
            out / "unknown.jsonl",
        )
    s = report["summary"]
    return {
        "exec_accuracy": s["exec_accuracy"],
        "exec_accuracy_nonempty_gold": s.get("exec_accuracy_nonempty_gold"),
        "valid_rate": s["valid_rate"],
        "unknown_name_rate": round(len(unknown) / len(records), 4),
        "unknown_without_from_rate": round(no_from / len(records), 4),  # cut off before any FROM
        "errors": s["errors"],
        "unknown_name_classes": dict(Counter(classes).most_common()),
        "seconds": round(seconds, 1),
        "new_tokens": tokens,
        "tokens_per_s": round(tokens / seconds, 1),
        "seconds_per_token_ms": round(1000 * seconds / tokens, 2),
    }


def describe(args: argparse.Namespace) -> str:
    if args.train_minutes:
        return (
            f"with a {args.train_minutes:g}-minute LoRA adapter (not the learning benchmark's 60-minute one)"
        )
    if args.adapter:
        return f"with {args.label}" if args.label else f"with the adapter {args.adapter}"
    return "zero-shot"


def main() -> None:
    from sqlft.constrained import record_schemas
    from sqlft.generate import merge_adapter

    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=3, help="score every n-th held-out question")
    parser.add_argument("--adapter", help="a LoRA adapter folder trained on the training databases")
    parser.add_argument("--train-minutes", type=float, help="train an adapter this long first")
    parser.add_argument("--label", help="what the --adapter is, for the README table")
    parser.add_argument("--limit", type=int, help="only the first N of those questions (no result file)")
    parser.add_argument("--only", choices=("plain", "constrained"), help="one decoding (no result file)")
    args = parser.parse_args()
    arm = Arm("constrained", minutes=args.train_minutes or 0)
    model, tokenizer = load_base()
    train_set, heldout, prepared = split_records(tokenizer, arm.schema, arm.sample_values)
    heldout = heldout[:: args.every][: args.limit]
    training = None
    if args.train_minutes:
        out = RUNS / f"constrained-{args.train_minutes:g}min" / "train"
        if (out / "training.json").is_file():  # trained by an earlier run (e.g. a --limit look): reuse it
            print(f"{out}: reusing the adapter an earlier run trained")
            training = json.loads((out / "training.json").read_text())
        else:
            from sqlft.lora import add_lora

            model = add_lora(model, arm.lora)
            training = train_phase(
                model, tokenizer, train_set, out, arm.learning_rate, arm, minutes=arm.minutes
            )
            (out / "training.json").write_text(json.dumps(training) + "\n")
        args.adapter = str((out / "adapter").relative_to(RUNS.parents[1]))
    if args.adapter and not hasattr(model, "peft_config"):
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.adapter)
    model = merge_adapter(model)
    schemas = record_schemas(heldout, prepared.db_dir)
    runs = RUNS / (
        "constrained-"
        + (f"{args.train_minutes:g}min" if args.train_minutes else "adapter" if args.adapter else "zeroshot")
    )
    scored = {}
    for name in ("plain", "constrained"):
        if args.only in (None, name):
            scored[name] = decode(
                model,
                tokenizer,
                heldout,
                prepared.db_dir,
                schemas if name == "constrained" else None,
                runs / name,
            )
            print(name, scored[name], flush=True)
    if args.limit or args.only:
        return
    plain, constrained = scored["plain"], scored["constrained"]
    result = {
        "every": args.every,
        "model": "SmolLM2-135M " + describe(args),
        "heldout_questions": len(heldout),
        "batch_size": 16,
        "plain": plain,
        "constrained": constrained,
        "time_ratio": round(constrained["seconds"] / plain["seconds"], 3),
        "time_per_token_ratio": round(constrained["seconds_per_token_ms"] / plain["seconds_per_token_ms"], 3),
    }
    if training:
        result["training"] = training
    write_result("bench_constrained_adapter" if args.adapter else "bench_constrained", result)
    print("time ratio", result["time_ratio"], "per token", result["time_per_token_ratio"])


if __name__ == "__main__":
    main()
