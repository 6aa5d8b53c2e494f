"""Schema-constrained decoding vs plain greedy decoding, SmolLM2-135M zero-shot, held-out databases.

On the fixed third of the held-out Spider questions the ablations use (`benchmarks/spider_split.py`),
the model answers greedily at batch 16, once plainly and once with `generate_sql(schemas=...)`.
Both are scored by `sqlft eval`'s execution match; "unknown name" counts answers whose execution
fails with SQLite's "no such table/column".

    OMP_NUM_THREADS=1 python benchmarks/bench_constrained.py [--every 3]
        [--train-minutes M | --adapter DIR [--label TEXT]]

Writes benchmarks/results/bench_constrained.json (the zero-shot arm), or
bench_constrained_adapter.json for an adapter: one given, or one trained here first for M minutes
on the training databases (the learning benchmark's recipe, shorter: not its 60-minute adapter).
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from common import write_result
from learning import RUNS, Arm, load_base
from learning import _phase as train_phase
from spider_split import split_records


def decode(model, tokenizer, records: list[dict], db_dir, schemas) -> dict[str, Any]:
    """Greedy answers at batch 16, scored: accuracy, unknown names, valid SQL, speed."""
    from sqlft.evaluate import evaluate_predictions
    from sqlft.generate import predict_records

    started = time.perf_counter()
    predictions = predict_records(
        model, tokenizer, records, batch_size=16, max_new_tokens=128, progress=False, schemas=schemas
    )
    seconds = time.perf_counter() - started
    tokens = sum(len(tokenizer(p["raw"], add_special_tokens=False)["input_ids"]) for p in predictions)
    report = evaluate_predictions(predictions, db_dir, with_rouge=False)
    unknown = [r for r in report["records"] if "no such" in (r.get("error") or "")]
    no_from = sum(" from " not in f" {r['pred'].lower()} " for r in unknown)
    s = report["summary"]
    return {
        "exec_accuracy": s["exec_accuracy"],
        "exec_accuracy_nonempty_gold": s.get("exec_accuracy_nonempty_gold"),
        "valid_rate": s["valid_rate"],
        "unknown_name_rate": round(len(unknown) / len(records), 4),
        "unknown_without_from_rate": round(no_from / len(records), 4),  # cut off before any FROM
        "errors": s["errors"],
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
    args = parser.parse_args()
    arm = Arm("constrained", minutes=args.train_minutes or 0)
    model, tokenizer = load_base()
    train_set, heldout, prepared = split_records(tokenizer, arm.schema, arm.sample_values)
    heldout = heldout[:: args.every]
    training = None
    if args.train_minutes:
        from sqlft.lora import add_lora

        model = add_lora(model, arm.lora)
        out = RUNS / f"constrained-{args.train_minutes:g}min" / "train"
        training = train_phase(model, tokenizer, train_set, out, arm.learning_rate, arm, minutes=arm.minutes)
        args.adapter = str((out / "adapter").relative_to(RUNS.parents[1]))
    elif args.adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, args.adapter)
    model = merge_adapter(model)
    schemas = record_schemas(heldout, prepared.db_dir)
    plain = decode(model, tokenizer, heldout, prepared.db_dir, None)
    print("plain", plain)
    constrained = decode(model, tokenizer, heldout, prepared.db_dir, schemas)
    print("constrained", constrained)
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
