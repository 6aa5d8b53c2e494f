"""Self-consistency vs greedy, with the adapter bench_learning.py trained.

On the same fixed third of the held-out questions the ablations use, the model answers greedily and
also samples n candidates (temperature 0.7, top-p 0.95). `sqlft eval` then reports, as separate
rows: greedy; self-consistency (execute every candidate, vote on the results, ties by model
score); and execution-guided (the most likely candidate that executes).

    python benchmarks/bench_consistency.py [--samples 4]

Needs runs/bench/main/train/adapter from bench_learning.py. Writes
benchmarks/results/bench_consistency.json.
"""

from __future__ import annotations

import argparse

from common import write_result
from learning import RUNS, Arm, headline, load_base, score
from spider_split import split_records

from sqlft.evaluate.consistency import VOTE_RULE


def main() -> None:
    from peft import PeftModel

    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--every", type=int, default=3, help="score every n-th held-out question")
    args = parser.parse_args()
    adapter = RUNS / "main" / "train" / "adapter"
    if not (adapter / "adapter_config.json").is_file():
        raise SystemExit(f"{adapter}: no adapter. Fix: run benchmarks/bench_learning.py first")
    arm = Arm("main", minutes=0)
    model, tokenizer = load_base()
    _, heldout, prepared = split_records(tokenizer, arm.schema, arm.sample_values)
    heldout = heldout[:: args.every]
    model = PeftModel.from_pretrained(model, str(adapter))
    scored = score(
        model,
        tokenizer,
        heldout,
        prepared.db_dir,
        RUNS / "consistency",
        samples=args.samples,
        temperature=0.7,
        top_p=0.95,
    )
    s = scored.summary
    rows = {
        "greedy": headline(s)["exec_accuracy"],
        "self_consistency": s["self_consistency"]["exec_accuracy"],
        "execution_guided": s["execution_guided"]["exec_accuracy"],
    }
    print(rows)
    write_result(
        "bench_consistency",
        {
            "adapter": str(adapter.relative_to(RUNS.parents[1])),
            "heldout_questions": len(heldout),
            "samples": args.samples,
            "temperature": 0.7,
            "top_p": 0.95,
            "exec_accuracy": rows,
            "vote_rule": VOTE_RULE,
            "greedy": headline(s),
            "generate_seconds": scored.generate_seconds,
        },
    )


if __name__ == "__main__":
    main()
