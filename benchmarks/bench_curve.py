"""Learning curve of the bench_learning.py run: held-out accuracy against training time.

The run saves a checkpoint every 16 steps. Every `--every-steps` steps, the checkpoint's adapter
answers the same held-out third as the ablations; the zero-shot and the final points are the run's
own reports, restricted to those questions. Under the constant rate (`--run main-constant`) a
checkpoint is a shorter run of the same arm; under the default cosine it is only a waypoint, taken
while the rate was still high.

    python benchmarks/bench_curve.py [--every-steps 32] [--run main|main-constant]

Needs runs/bench/<run> from bench_learning.py. Writes benchmarks/results/bench_curve.json
(bench_curve_constant.json for main-constant).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import write_result
from learning import RUNS, Arm, headline, load_base, score
from spider_split import split_records

EVERY = 3  # the ablations' held-out third


def checkpoint_minutes(checkpoint: Path) -> float:
    history = json.loads((checkpoint / "trainer_state.json").read_text())["log_history"]
    return round(history[-1]["train_runtime"] / 60, 2)


def report_point(report: Path, step: int, minutes: float) -> dict:
    """A point from a full held-out report, on the held-out third only."""
    from sqlft.evaluate.report import summarize

    records = json.loads(report.read_text())["records"][::EVERY]
    return {"step": step, "minutes": minutes, **headline(summarize(records, with_rouge=False))}


def main() -> None:
    from peft import PeftModel

    parser = argparse.ArgumentParser()
    parser.add_argument("--every-steps", type=int, default=32)
    parser.add_argument("--run", choices=["main", "main-constant"], default="main")
    args = parser.parse_args()
    main_run = RUNS / args.run
    final = json.loads((main_run / "result.json").read_text())
    arm = Arm(**final["arm"])
    points = [report_point(main_run / "zero_shot" / "report.json", 0, 0.0)]
    tokenizer, heldout, db_dir = None, None, None
    for checkpoint in sorted(
        (main_run / "train").glob("checkpoint-*"), key=lambda p: int(p.name.split("-")[1])
    ):
        step = int(checkpoint.name.split("-")[1])
        if step % args.every_steps or step >= final["training"]["steps"]:
            continue
        model, tokenizer = load_base()
        if heldout is None:
            _, heldout, prepared = split_records(tokenizer, arm.schema, arm.sample_values)
            heldout, db_dir = heldout[::EVERY], prepared.db_dir
        model = PeftModel.from_pretrained(model, str(checkpoint))
        scored = score(model, tokenizer, heldout, db_dir, RUNS / "curve" / args.run / checkpoint.name)
        points.append({"step": step, "minutes": checkpoint_minutes(checkpoint), **headline(scored.summary)})
        print(points[-1]["step"], points[-1]["exec_accuracy"])
    t = final["training"]
    points.append(report_point(main_run / "trained" / "report.json", t["steps"], t["wall_minutes"]))
    name = "bench_curve_constant" if args.run == "main-constant" else "bench_curve"
    write_result(name, {"scheduler": arm.scheduler, "heldout_every": EVERY, "points": points})


if __name__ == "__main__":
    main()
