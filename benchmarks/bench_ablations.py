"""Ablations on the fixed Spider split: which choices matter for held-out-database accuracy?

Each arm trains SmolLM2-135M with LoRA from the base model for the same number of optimizer steps
(batch 8, constant learning rate) on the training databases and is scored on the same fixed third
of the held-out questions (every third one). A step budget, not a time budget, so that arms stay
comparable when the machine is shared; CPU minutes are measured per arm. Against the reference
arm (compact schema, no sample values, all-linear LoRA, one phase), each other arm changes one
thing:

- schema as `ddl` instead of `compact`;
- one sample value per column in the schema (three would almost triple the prompt: bench_prompts.py);
- LoRA on the attention projections only;
- two phases: first half as many steps on the demo's gretel-style data (DDL context + SQL), then the
  same Spider budget;
- schema as `mschema` (XiYan's M-Schema);
- value retrieval: up to 5 database values the question names, beside their columns (sqlft.values);
- best of 4: the reference's adapter (not trained again), 4 sampled answers per question
  (temperature 0.7) and the majority of their execution results, beside its greedy answers;
- the three together.

Accuracy is reported with its cost (prompt tokens, optimizer steps, CPU minutes) and, for each arm,
its paired difference from the reference on the questions both answered (for best-of arms: the
vote's answers against the reference's greedy ones).

    python benchmarks/bench_ablations.py [--steps 16]
    python benchmarks/bench_ablations.py --steps 64 --only attention   # a longer round of one arm

Writes benchmarks/results/bench_ablations.json; runs stay in runs/bench/ablation-*/.
"""

from __future__ import annotations

import argparse
import dataclasses
import json

from common import write_result
from learning import RUNS, Arm, headline, run_arm, score_adapter, versus

DEFAULT_STEPS = 16


def arms(steps: int) -> list[tuple[str, Arm]]:
    def name(arm: str) -> str:  # runs of another length keep their own folders
        return f"ablation-{arm}" if steps == DEFAULT_STEPS else f"ablation-{arm}-{steps}steps"

    return [
        ("reference: compact, no values, all-linear, one phase", Arm(name("reference"), steps=steps)),
        ("attention-only LoRA", Arm(name("attention"), steps=steps, lora="attention")),
        ("schema as ddl", Arm(name("ddl"), steps=steps, schema="ddl")),
        ("two phases (gretel-style first)", Arm(name("two-phases"), steps=steps, phase1_steps=steps // 2)),
        ("1 sample value per column", Arm(name("values"), steps=steps, sample_values=1)),
        ("schema as mschema", Arm(name("mschema"), steps=steps, schema="mschema")),
        ("value retrieval, 5 per question", Arm(name("retrieval"), steps=steps, value_retrieval=5)),
        ("best of 4 (execution vote)", Arm(name("best-of"), steps=steps, samples=4)),
        (
            "mschema + value retrieval + best of 4",
            Arm(name("combined"), steps=steps, schema="mschema", value_retrieval=5, samples=4),
        ),
    ]


def decoded_only(arm: Arm, reference: Arm, every: int) -> dict | None:
    """An arm that only decodes differently from the reference: the reference's adapter, scored
    with the arm's sampling (its training figures are the reference's); None for any other arm."""
    if arm.samples == 1 or dataclasses.replace(arm, name=reference.name, samples=1) != reference:
        return None
    result = RUNS / reference.name / "result.json"
    if not result.is_file():
        raise SystemExit(f"{result}: not there. Fix: run the reference arm first (--only reference)")
    done = json.loads(result.read_text())
    adapter = RUNS / reference.name / "train" / "adapter"
    scored, _ = score_adapter(adapter, arm, RUNS / arm.name / "trained", every=every)
    return {
        **done,
        "arm": dataclasses.asdict(arm),
        "trained": {"summary": scored.summary, "generate_seconds": scored.generate_seconds},
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--steps", type=int, default=DEFAULT_STEPS)
    parser.add_argument("--every", type=int, default=3, help="score every n-th held-out question")
    parser.add_argument("--only", help="run only the arms whose name contains this text")
    args = parser.parse_args()
    rows = []
    reference = arms(args.steps)[0][1]
    for label, arm in arms(args.steps):
        if args.only and args.only not in arm.name:
            continue
        result = decoded_only(arm, reference, args.every) or run_arm(arm, every=args.every)
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
        if arm != reference and (RUNS / reference.name / "trained" / "report.json").is_file():
            row["vs_reference"] = versus(RUNS / arm.name, arm.samples > 1, RUNS / reference.name)
        print(label, row["trained"]["exec_accuracy"], row["training"])
        rows.append(row)
    settings = {"steps_per_arm": args.steps, "heldout_every": args.every}
    if args.steps != DEFAULT_STEPS:  # a longer (or shorter) round of some arms: a file of its own
        write_result(f"bench_ablations_{args.steps}steps", {**settings, "arms": rows})
    elif not args.only:
        write_result("bench_ablations", {**settings, "arms": rows})


if __name__ == "__main__":
    main()
