"""Ablations on the fixed Spider split: which choices matter for held-out-database accuracy?

Each arm trains SmolLM2-135M with LoRA from the base model for the same short time budget on the
training databases and is scored on the same fixed half of the held-out questions (every second
one). Against the reference arm (compact schema, no sample values, all-linear LoRA, one phase),
each other arm changes one thing:

- schema as `ddl` instead of `compact`;
- 3 sample values per column in the schema;
- LoRA on the attention projections only;
- two phases: first the demo's gretel-style data (DDL context + SQL), then the same Spider budget.

Accuracy is reported with its cost: prompt tokens, optimizer steps and CPU minutes.

    python benchmarks/bench_ablations.py [--minutes 5]

Writes benchmarks/results/bench_ablations.json; runs stay in runs/bench/ablation-*/.
"""

from __future__ import annotations

import argparse

from common import write_result
from learning import Arm, headline, run_arm


def arms(minutes: float) -> list[tuple[str, Arm]]:
    return [
        ("reference: compact, no values, all-linear, one phase", Arm("ablation-reference", minutes)),
        ("schema as ddl", Arm("ablation-ddl", minutes, schema="ddl")),
        ("3 sample values per column", Arm("ablation-values", minutes, sample_values=3)),
        ("attention-only LoRA", Arm("ablation-attention", minutes, lora="attention")),
        ("two phases (gretel-style first)", Arm("ablation-two-phases", minutes, phase1_minutes=minutes / 2)),
    ]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=5)
    parser.add_argument("--every", type=int, default=2, help="score every n-th held-out question")
    parser.add_argument("--only", help="run only the arms whose name contains this text")
    args = parser.parse_args()
    rows = []
    for label, arm in arms(args.minutes):
        if args.only and args.only not in arm.name:
            continue
        result = run_arm(arm, every=args.every)
        row = {
            "label": label,
            "arm": result["arm"],
            "heldout_questions": result["heldout_questions"],
            "prompt_tokens": result["prompt_tokens"],
            "training": result["training"],
            "phase1": result.get("phase1"),
            "trained": headline(result["trained"]["summary"]),
            "generate_seconds": result["trained"]["generate_seconds"],
        }
        print(label, row["trained"]["exec_accuracy"], row["training"])
        rows.append(row)
    if not args.only:
        settings = {"minutes_per_arm": args.minutes, "heldout_every": args.every}
        write_result("bench_ablations", {**settings, "arms": rows})


if __name__ == "__main__":
    main()
