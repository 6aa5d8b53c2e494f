"""Does LoRA teach SmolLM2-135M SQL for databases it never saw, within an hour of CPU training?

Spider dev is split by database (spider_split.py). The base model answers the held-out questions
zero-shot; then a LoRA adapter (all-linear, r16, lr 1e-3 decaying to zero over the budget on a
cosine) trains on the training databases' questions for a fixed time budget, and answers them
again. Same prompt both times (compact schema, the demo preset's system prompt), greedy decoding,
`sqlft eval` metrics.
Goal: at least +10 points of execution accuracy within 60 minutes of training on 2 cores.

    python benchmarks/bench_learning.py [--minutes 60] [--scheduler cosine|constant]

Run it alone on the machine: a second busy process halves its steps or worse (OpenMP).

Writes benchmarks/results/bench_learning.json (bench_learning_constant.json with the constant
rate); predictions and reports stay in runs/bench/main/ (main-constant/).
"""

from __future__ import annotations

import argparse

from common import write_result
from learning import Arm, headline, run_arm
from spider_split import HELDOUT_DBS, TRAIN_DBS

GOAL_POINTS, GOAL_MINUTES = 10, 60


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=60)
    parser.add_argument("--scheduler", choices=["cosine", "constant"], default="cosine")
    parser.add_argument("--limit", type=int, help="score only the first N held-out questions (a quick check)")
    args = parser.parse_args()
    constant = args.scheduler == "constant"  # the earlier schedule, kept beside the default for comparison
    arm = Arm("main-constant" if constant else "main", minutes=args.minutes, scheduler=args.scheduler)
    result = run_arm(arm, zero_shot=True, limit=args.limit)
    before, after = headline(result["zero_shot"]["summary"]), headline(result["trained"]["summary"])
    gain = 100 * (after["exec_accuracy"] - before["exec_accuracy"])
    print(
        f"held-out exec accuracy {before['exec_accuracy']:.3f} -> {after['exec_accuracy']:.3f} ({gain:+.1f})"
    )
    if args.limit:
        print("--limit given: a check of the script, no result written")
        return
    write_result(
        "bench_learning_constant" if constant else "bench_learning",
        {
            "split": {"train_dbs": TRAIN_DBS, "heldout_dbs": HELDOUT_DBS, "excluded": ["wta_1"]},
            **{k: result[k] for k in ("arm", "train_questions", "heldout_questions", "prompt_tokens")},
            "training": result["training"],
            "zero_shot": {**before, "generate_seconds": result["zero_shot"]["generate_seconds"]},
            "trained": {**after, "generate_seconds": result["trained"]["generate_seconds"]},
            "gain_points": round(gain, 1),
            "goal": {"min_gain_points": GOAL_POINTS, "max_minutes": GOAL_MINUTES},
            "goal_met": gain >= GOAL_POINTS and result["training"]["wall_minutes"] <= GOAL_MINUTES + 1,
        },
    )


if __name__ == "__main__":
    main()
