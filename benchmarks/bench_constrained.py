"""Schema-constrained decoding vs plain greedy decoding, SmolLM2-135M zero-shot, held-out databases.

On the fixed third of the held-out Spider questions the ablations use (`benchmarks/spider_split.py`),
the model answers greedily at batch 16, once plainly and once with `generate_sql(schemas=...)`.
Both are scored by `sqlft eval`'s execution match; "unknown name" counts answers whose execution
fails with SQLite's "no such table/column".

    OMP_NUM_THREADS=1 python benchmarks/bench_constrained.py [--every 3] [--train-minutes M | --adapter DIR]

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
    unknown = sum("no such" in (r.get("error") or "") for r in report["records"])
    s = report["summary"]
    return {
        "exec_accuracy": s["exec_accuracy"],
        "exec_accuracy_nonempty_gold": s.get("exec_accuracy_nonempty_gold"),
        "valid_rate": s["valid_rate"],
        "unknown_name_rate": round(unknown / len(records), 4),
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
    return f"with the adapter {args.adapter}" if args.adapter else "zero-shot"


def main() -> None:
    from sqlft.constrained import record_schemas
    from sqlft.generate import merge_adapter

    parser = argparse.ArgumentParser()
    parser.add_argument("--every", type=int, default=3, help="score every n-th held-out question")
    parser.add_argument("--adapter", help="a LoRA adapter folder trained on the training databases")
    parser.add_argument("--train-minutes", type=float, help="train an adapter this long first")
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
