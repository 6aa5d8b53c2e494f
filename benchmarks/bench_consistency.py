"""Best-of decoding's execution vote, rule by rule, on held-out questions the rules were not chosen on.

An adapter answers held-out questions greedily and samples n candidates each (temperature 0.7,
top-p 0.95), schema-constrained with `--constrained`. `sqlft eval` scores greedy, today's vote and
execution-guided (the likeliest answer that runs); then the same answers are voted again under each
rule the vote has had, so that each rule's gain is measured on the same samples:

- the majority of the samples' execution results;
- ... results holding a value first (an empty result loses, as in execution-guided decoding);
- ... from queries whose JOINs all have a condition first (today's rule): a JOIN without one is a
  cross product, what the constraint's closing writes when a select list names a table its FROM
  lacks;
- and, not adopted, today's rule with the greedy answer voting too.

The join rule was found by reading bench_peers' failures on every second held-out question
(`--every 2`); `--offset 1 --every 2` scores the other half, which that reading never saw.

    OMP_NUM_THREADS=2 python benchmarks/bench_consistency.py --constrained --offset 1 --every 2 \\
        --adapter runs/bench/peers-sqlft-default/train/adapter [--samples 4] [--rescore]

`--rescore` votes the saved answers of the same settings again, after a change to the vote's rule.

The adapter defaults to bench_learning.py's (runs/bench/main/train/adapter). Writes
benchmarks/results/bench_consistency.json (not for --limit, a check of the script).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import write_result
from learning import (
    RUNS,
    SAMPLING,
    Arm,
    executed_voters,
    headline,
    load_base,
    rescore,
    saved_predictions,
    score,
)
from spider_split import SPIDER, split_records

from sqlft.evaluate.consistency import VOTE_RULE, has_value, self_consistency, sound_result

RULES = {  # name: (the greedy answer votes too, what ranks first)
    "majority of the samples": (False, lambda sql, rows: True),
    "... results holding a value first": (False, lambda sql, rows: has_value(rows)),
    "... from queries whose JOINs all have a condition (today's rule)": (False, sound_result),
    "today's rule, the greedy answer voting too (not adopted)": (True, sound_result),
}


def rule_accuracy(out_dir: Path) -> dict[str, float]:
    """Each rule's accuracy, voting again on the saved answers of a scored run."""
    records = saved_predictions(out_dir)
    right = dict.fromkeys(RULES, 0)
    for r, (sqls, scores, ran, match) in zip(
        records, executed_voters(records, SPIDER / "database"), strict=True
    ):
        samples = len(r.get("candidates") or [])
        for name, (with_greedy, sound) in RULES.items():
            chosen = range(len(sqls)) if with_greedy else range(len(sqls) - samples, len(sqls))
            choice = self_consistency([sqls[i] for i in chosen], ran, [scores[i] for i in chosen], sound)
            right[name] += bool(choice.sql) and match[choice.sql]
    return {name: round(count / len(records), 4) for name, count in right.items()}


def decode(args: argparse.Namespace, out: Path) -> tuple[dict, float]:
    """Greedy and sampled answers of the adapter on the chosen held-out questions, scored into `out`."""
    from peft import PeftModel

    if not (args.adapter / "adapter_config.json").is_file():
        raise SystemExit(f"{args.adapter}: no adapter. Fix: run the benchmark that trains it first")
    arm = Arm("main", minutes=0)
    model, tokenizer = load_base()
    _, heldout, prepared = split_records(tokenizer, arm.schema, arm.sample_values)
    heldout = heldout[args.offset :: args.every][: args.limit]
    model = PeftModel.from_pretrained(model, str(args.adapter))
    schemas = None
    if args.constrained:
        from sqlft.constrained import record_schemas

        schemas = record_schemas(heldout, prepared.db_dir)
    scored = score(model, tokenizer, heldout, prepared.db_dir, out, args.samples, schemas, **SAMPLING)
    return scored.summary, scored.generate_seconds


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--every", type=int, default=3, help="score every n-th held-out question")
    parser.add_argument("--offset", type=int, default=0, help="... starting from this one")
    parser.add_argument("--limit", type=int, help="only the first N of those (a check, no result written)")
    parser.add_argument("--adapter", type=Path, default=RUNS / "main" / "train" / "adapter")
    parser.add_argument("--constrained", action="store_true", help="schema-constrained greedy and samples")
    parser.add_argument(
        "--rescore",
        action="store_true",
        help="vote the saved answers of the same settings again, no decoding",
    )
    args = parser.parse_args()
    out = RUNS / ("consistency-constrained" if args.constrained else "consistency")
    settings = {k: str(v) for k, v in vars(args).items() if k != "rescore"}
    if args.rescore:
        saved = json.loads((out / "settings.json").read_text()) if (out / "settings.json").is_file() else None
        if saved != settings:
            raise SystemExit(
                f"{out}: no saved answers of these settings ({saved}). Fix: run without --rescore"
            )
        s = rescore(out, SPIDER / "database")
        seconds = json.loads((out / "timing.json").read_text())["generate_seconds"]
    else:
        s, seconds = decode(args, out)
        (out / "settings.json").write_text(json.dumps(settings) + "\n")
    rows = {
        "greedy": headline(s)["exec_accuracy"],
        "self_consistency": s["self_consistency"]["exec_accuracy"],
        "execution_guided": s["execution_guided"]["exec_accuracy"],
    }
    rules = rule_accuracy(out)
    print(rows, rules, sep="\n")
    if args.limit:
        print("--limit: a check of the script, no result written")
        return
    write_result(
        "bench_consistency",
        {
            "adapter": str(args.adapter.resolve().relative_to(RUNS.parents[1])),
            "heldout_questions": s["n"],
            "every": args.every,
            "offset": args.offset,
            "schema_constrained": args.constrained,
            "samples": args.samples,
            **SAMPLING,
            "exec_accuracy": rows,
            "vote_rule": VOTE_RULE,
            "rules": rules,
            "greedy": headline(s),
            "generate_seconds": round(seconds, 1),
        },
    )


if __name__ == "__main__":
    main()
