"""Phase 3 (GRPO, execution reward) against as much more SFT, SmolLM2-135M on held-out databases.

An SFT adapter is trained for --sft-minutes on the training databases of the fixed split
(`benchmarks/spider_split.py`, the learning benchmark's recipe). From it, two arms train for the same
--minutes more on the same questions: GRPO with sqlft's execution and format rewards (`sqlft.rl`),
and plain SFT. Each of the three is scored greedily on every --every-th held-out question by
`sqlft eval`'s execution match, with a 95% Wilson interval and a paired bootstrap interval for each
arm's difference to SFT alone; also valid SQL, unknown-name failures, the reward's cost per
completion and the share of GRPO's time spent extracting and executing SQL. A short timing
compares the generator GRPO uses (TRL: the policy's own `model.generate`, sampling, adapter not
merged) with sqlft's `generate_sql` on the same prompts.

    OMP_NUM_THREADS=1 python benchmarks/bench_rl.py [--sft-minutes 10] [--minutes 8] [--every 3]

Writes benchmarks/results/bench_rl.json. Adapters go to runs/bench/rl-*/; a rerun reuses a
finished arm's adapter and training record.
"""

from __future__ import annotations

import argparse
import json
import math
import random
import time
from pathlib import Path
from typing import Any

from common import write_result
from learning import RUNS, Arm, load_base
from learning import _phase as sft_phase
from spider_split import split_records


def wilson(k: int, n: int, z: float = 1.96) -> list[float]:
    """95% Wilson score interval of a proportion k / n."""
    if n == 0:
        return [0.0, 0.0]
    p = k / n
    centre, half = p + z * z / (2 * n), z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n))
    return [round((centre - half) / (1 + z * z / n), 4), round((centre + half) / (1 + z * z / n), 4)]


def paired_interval(a: list[bool], b: list[bool], resamples: int = 2000) -> list[float]:
    """95% bootstrap interval of mean(b) - mean(a) over the same questions."""
    rng, n = random.Random(0), len(a)
    diffs = sorted(
        sum(b[i] - a[i] for i in (rng.randrange(n) for _ in range(n))) / n for _ in range(resamples)
    )
    return [round(diffs[int(0.025 * resamples)], 4), round(diffs[int(0.975 * resamples) - 1], 4)]


def scored(model, tokenizer, records: list[dict], db_dir) -> tuple[dict[str, Any], list[bool]]:
    """Greedy answers at batch 16 (adapter merged), scored: accuracy with its interval, failures."""
    from sqlft.evaluate import evaluate_predictions
    from sqlft.generate import merge_adapter, predict_records

    started = time.perf_counter()
    predictions = predict_records(
        merge_adapter(model), tokenizer, records, batch_size=16, max_new_tokens=128, progress=False
    )
    seconds = time.perf_counter() - started
    report = evaluate_predictions(predictions, db_dir, with_rouge=False)
    matches = [bool(r["exec_match"]) for r in report["records"]]
    unknown = sum("no such" in (r.get("error") or "") for r in report["records"])
    s = report["summary"]
    return {
        "exec_accuracy": s["exec_accuracy"],
        "exec_accuracy_95": wilson(sum(matches), len(matches)),
        "exec_accuracy_nonempty_gold": s.get("exec_accuracy_nonempty_gold"),
        "valid_rate": s["valid_rate"],
        "unknown_name_rate": round(unknown / len(records), 4),
        "errors": s["errors"],
        "generate_seconds": round(seconds, 1),
    }, matches


def grpo_phase(model, tokenizer, records, db_dir, out_dir: Path, minutes: float, args) -> dict[str, Any]:
    """GRPO for `minutes` on `records`, with the reward's own cost counted."""
    from functools import partial

    from sqlft.rl import RLConfig, SQLReward, build_grpo_trainer, plot_reward_curves, reward_curves
    from sqlft.train import train

    config = RLConfig(
        output_dir=str(out_dir),
        learning_rate=args.rl_learning_rate,
        epochs=50,  # more than fits: the time budget ends the phase
        max_minutes=minutes,
        # completions per device step: 8 at once took 15.5 GB RSS here and was killed (full-vocabulary
        # logits, as for SFT at batch 8); 2 x 4 accumulation is still two questions a step
        batch_size=2,
        grad_accum=args.num_generations * 2 // 2,
        warmup_ratio=0.0,
        scheduler="constant",
        eval_steps=0,
        save_steps=1000,
        save_total_limit=1,
        max_length=1024,
        num_generations=args.num_generations,
        max_completion_length=128,
        temperature=1.0,
    )
    reward = SQLReward(db_dir, timeout_s=10.0)
    wall = time.perf_counter()
    result = train(
        model,
        tokenizer,
        records,
        None,
        config,
        skip_finished=False,
        build=partial(build_grpo_trainer, reward=reward),
    )
    wall = time.perf_counter() - wall
    reward.close()
    log = json.loads((out_dir / "training_log.json").read_text())
    plot_reward_curves(log, out_dir / "reward_curves.png")
    rewards = [e for e in log if "reward" in e]
    stats = reward.stats
    return {
        "steps": result.global_step,
        "questions_seen": result.global_step * 2,
        "completions": stats["completions"],
        "wall_minutes": round(wall / 60, 2),
        "seconds_per_step": round(wall / max(result.global_step, 1), 1),
        "reward_ms_per_completion": round(1000 * stats["seconds"] / max(stats["completions"], 1), 2),
        "sql_share_of_time": round(stats["seconds"] / wall, 6),
        "outcomes": {k: stats[k] for k in ("match", "runs", "error", "unscored")},
        "reward_first": rewards[0]["reward"] if rewards else None,
        "reward_last": rewards[-1]["reward"] if rewards else None,
        "execution_reward_mean": round(
            sum(e["rewards/execution/mean"] for e in rewards) / max(len(rewards), 1), 4
        ),
        "frac_groups_without_signal": round(
            sum(e["frac_reward_zero_std"] for e in rewards) / max(len(rewards), 1), 3
        ),
        "learning_rate": args.rl_learning_rate,
        "num_generations": args.num_generations,
        "reward_curves": {  # per step: the weighted total and each reward function's mean
            name: [[step, round(value, 4)] for step, value in points]
            for name, points in reward_curves(log).items()
        },
    }


def generator_speed(model, tokenizer, prompts: list[str]) -> dict[str, Any]:
    """Seconds per new token for TRL's path (model.generate, sampling, unmerged adapter, left padding)
    against sqlft's generate_sql (greedy, unmerged too), the same prompts at once, up to 128 tokens."""
    import torch

    from sqlft.generate import generate_sql

    encoded = tokenizer(
        prompts, add_special_tokens=False, padding=True, padding_side="left", return_tensors="pt"
    )
    model.eval()
    started = time.perf_counter()
    with torch.no_grad():
        torch.manual_seed(0)
        out = model.generate(
            **encoded,
            max_new_tokens=128,
            do_sample=True,
            temperature=1.0,
            top_p=1.0,
            top_k=0,
            pad_token_id=tokenizer.pad_token_id,
        )
    trl_seconds = time.perf_counter() - started
    new = out[:, encoded["input_ids"].shape[1] :]
    trl_tokens = int(sum((row != tokenizer.pad_token_id).sum() for row in new))
    started = time.perf_counter()
    generations = generate_sql(
        model, tokenizer, prompts, batch_size=len(prompts), max_new_tokens=128, progress=False
    )
    sqlft_seconds = time.perf_counter() - started
    sqlft_tokens = sum(len(tokenizer(g.raw, add_special_tokens=False)["input_ids"]) for g in generations)
    return {
        "prompts": len(prompts),
        "trl_model_generate": {
            "seconds": round(trl_seconds, 1),
            "new_tokens": trl_tokens,
            "ms_per_token": round(1000 * trl_seconds / max(trl_tokens, 1), 2),
        },
        "sqlft_generate_sql": {
            "seconds": round(sqlft_seconds, 1),
            "new_tokens": sqlft_tokens,
            "ms_per_token": round(1000 * sqlft_seconds / max(sqlft_tokens, 1), 2),
        },
        "note": "TRL samples (temperature 1) and sqlft decodes greedily, so the token counts differ",
    }


def cached(out_dir: Path, run) -> dict[str, Any]:
    """The arm's training record if its adapter is already there, else train it (`run()`) and save."""
    record = out_dir / "bench_training.json"
    if record.is_file() and (out_dir / "adapter" / "adapter_config.json").is_file():
        return json.loads(record.read_text())
    info = run()
    record.write_text(json.dumps(info, indent=1) + "\n")
    return info


def main() -> None:
    from peft import PeftModel

    from sqlft.lora import add_lora

    parser = argparse.ArgumentParser()
    parser.add_argument("--sft-minutes", type=float, default=10.0, help="the SFT adapter both arms continue")
    parser.add_argument("--minutes", type=float, default=8.0, help="more training for each arm")
    parser.add_argument("--every", type=int, default=3, help="score every n-th held-out question")
    parser.add_argument("--rl-learning-rate", type=float, default=1e-4)
    parser.add_argument("--num-generations", type=int, default=4)
    args = parser.parse_args()
    arm = Arm("rl", minutes=args.sft_minutes)
    model, tokenizer = load_base()
    train_set, heldout, prepared = split_records(tokenizer, arm.schema, arm.sample_values)
    heldout = heldout[:: args.every]
    root = RUNS / f"rl-sft{args.sft_minutes:g}min"
    sft_dir = root / "sft"

    def continued():
        base, _ = load_base()
        return add_lora(base, adapter=str(sft_dir / "adapter"))

    training = {
        "sft": cached(
            sft_dir,
            lambda: sft_phase(
                add_lora(model, arm.lora, seed=arm.seed),
                tokenizer,
                train_set,
                sft_dir,
                arm.learning_rate,
                arm,
                minutes=args.sft_minutes,
            ),
        )
    }
    rl_dir, more_dir = root / f"grpo-{args.minutes:g}min", root / f"sft-more-{args.minutes:g}min"
    training["grpo"] = cached(
        rl_dir,
        lambda: grpo_phase(continued(), tokenizer, train_set, prepared.db_dir, rl_dir, args.minutes, args),
    )
    training["sft_more"] = cached(
        more_dir,
        lambda: sft_phase(
            continued(), tokenizer, train_set, more_dir, arm.learning_rate, arm, minutes=args.minutes
        ),
    )
    result = {
        "model": "SmolLM2-135M, LoRA all-linear, compact schema prompts",
        "split": "benchmarks/spider_split.py: trained on the training databases' questions",
        "every": args.every,
        "heldout_questions": len(heldout),
        "sft_minutes": args.sft_minutes,
        "more_minutes": args.minutes,
        "training": training,
        "complete": False,  # true once every arm is scored; each stage writes what it has so far
    }
    write_result("bench_rl", result)
    result["generators"] = generator_speed(continued(), tokenizer, [r["prompt"] for r in heldout[:8]])
    print("generators", result["generators"])
    arms, matches = {}, {}
    result["arms"] = arms
    for name, folder in (("sft", sft_dir), ("sft_plus_grpo", rl_dir), ("sft_plus_sft", more_dir)):
        base, _ = load_base()
        arms[name], matches[name] = scored(
            PeftModel.from_pretrained(base, str(folder / "adapter")), tokenizer, heldout, prepared.db_dir
        )
        if name != "sft":
            arms[name]["difference_to_sft_95"] = paired_interval(matches["sft"], matches[name])
        print(name, arms[name])
        write_result("bench_rl", result)
    result["complete"] = True
    write_result("bench_rl", result)


if __name__ == "__main__":
    main()
