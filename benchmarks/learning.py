"""One learning "arm" on the fixed Spider split: train SmolLM2 with LoRA for a time budget on the
training databases, then score it on the held-out databases. Shared by bench_learning.py and
bench_ablations.py so every arm is trained and measured the same way.
"""

from __future__ import annotations

import dataclasses
import json
import resource
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from spider_split import SYSTEM, split_records

ROOT = Path(__file__).resolve().parents[1]
RUNS = ROOT / "runs" / "bench"
MODEL = "smollm2-135m"


@dataclass
class Arm:
    """What one run varies; everything else is fixed for all arms."""

    name: str
    minutes: float = 0.0  # training time on the Spider training databases ...
    steps: int = 0  # ... or a fixed number of optimizer steps (> 0), whatever else runs on the machine
    schema: str = "compact"
    sample_values: int = 0
    value_retrieval: int = 0  # database values the question names, per question (sqlft.values)
    lora: str = "all-linear"
    learning_rate: float = 1e-3
    scheduler: str = "constant"  # or "cosine": decays over the minutes (or steps), see sqlft.budget
    phase1_steps: int = 0  # > 0: first train this many steps on the demo's gretel-style data (two phases)
    phase1_learning_rate: float = 2e-3
    batch_size: int = 2  # x grad_accum 4 = 8 questions a step; batch 8 peaked at 16 GB RSS on CPU
    grad_accum: int = 4
    seed: int = 42
    samples: int = 1  # > 1: also best-of decoding, this many sampled answers and an execution vote


SAMPLING = {"temperature": 0.7, "top_p": 0.95}  # best-of decoding's sampled answers (bench_consistency's)


@dataclass
class Scored:
    summary: dict[str, Any]  # the report summary of `sqlft eval`
    generate_seconds: float


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def load_base(model: str = MODEL):
    from sqlft.model import load_model_and_tokenizer

    return load_model_and_tokenizer(model, quantization="none", compute_dtype="fp32", placement="cpu")


def score(
    model,
    tokenizer,
    records: list[dict],
    db_dir,
    out_dir: Path,
    samples: int = 1,
    schemas: list | None = None,
    **sampling: Any,
) -> Scored:
    """Greedy SQL for `records` (and `samples` sampled candidates each when > 1, with the summary's
    `best_of` row for the execution vote), scored; with `schemas`, every answer schema-constrained."""
    from sqlft.generate import add_sampled_candidates, merge_adapter, predict_records
    from sqlft.jsonl import write_jsonl

    model = merge_adapter(model)
    started = time.perf_counter()
    settings = {"batch_size": 16, "max_new_tokens": 128, "seed": 0, "schemas": schemas}
    predictions = predict_records(model, tokenizer, records, **settings)
    if samples > 1:
        add_sampled_candidates(model, tokenizer, predictions, samples, **settings, **sampling)
    seconds = time.perf_counter() - started
    out_dir.mkdir(parents=True, exist_ok=True)
    write_jsonl(predictions, out_dir / "predictions.jsonl")
    (out_dir / "timing.json").write_text(json.dumps({"generate_seconds": seconds}) + "\n")
    return Scored(evaluate_into(predictions, db_dir, out_dir, samples), round(seconds, 1))


def evaluate_into(predictions: list[dict], db_dir, out_dir: Path, samples: int) -> dict[str, Any]:
    """Score answers into `out_dir`/report.json; its summary, with the execution vote's `best_of`
    row where `samples` > 1."""
    from sqlft.evaluate import evaluate_predictions, write_report
    from sqlft.evaluate.consistency import best_of

    report = evaluate_predictions(predictions, db_dir)
    if samples > 1:
        report["summary"]["best_of"] = best_of(report["summary"], samples, "execution")
    write_report(report, out_dir / "report.json")
    return report["summary"]


def executed_voters(records: list[dict], db_dir) -> Iterator[tuple[list[str], list[float], Any, dict]]:
    """Per scored record: the SQL a vote may be over (`consistency.voters`: its greedy answer first,
    then its samples), their scores, `run` for the vote (each distinct SQL executed once) and
    whether each matches the gold."""
    from sqlft.evaluate.consistency import execute, runner, voters
    from sqlft.evaluate.execution import Executor

    executor = Executor(db_dir)
    for r in records:
        sqls, scores = voters(r, with_greedy=True)
        distinct = list(dict.fromkeys(sqls))
        results = dict(
            zip(distinct, execute(distinct, runner(executor, r.get("db_id"), r.get("context"))), strict=True)
        )

        def ran(sql: str, results=results) -> list[tuple]:
            if isinstance(results[sql], Exception):
                raise results[sql]
            return results[sql]

        match = {
            sql: executor.exec_match(sql, r["gold"], r.get("db_id"), r.get("context")).match
            for sql in distinct
        }
        yield sqls, scores, ran, match


def vote_spread(out_dir: Path, db_dir, k: int) -> dict[str, Any]:
    """The execution vote's accuracy on every k of a scored run's n sampled candidates per question:
    the mean over the subsets is best-of-k's expected accuracy, the min and max how far one draw
    of k strays (a small change to decoding draws other samples). Reads `out_dir`/predictions.jsonl."""
    from itertools import combinations

    from sqlft.evaluate.consistency import self_consistency

    records = saved_predictions(out_dir)
    n = len(records[0]["candidates"])
    if any(len(r["candidates"]) != n for r in records) or n < k:
        raise ValueError(f"{out_dir}: every question needs the same number of candidates, at least {k}")
    subsets = list(combinations(range(n), k))
    right = [0] * len(subsets)
    for sqls, scores, ran, match in executed_voters(records, db_dir):
        first = len(sqls) - n  # the samples follow greedy
        for i, subset in enumerate(subsets):
            chosen = [first + j for j in subset]
            choice = self_consistency([sqls[j] for j in chosen], ran, [scores[j] for j in chosen])
            right[i] += match[choice.sql]
    accuracy = [count / len(records) for count in right]
    return {
        "samples": n,
        "k": k,
        "subsets": len(subsets),
        "mean": round(sum(accuracy) / len(accuracy), 4),
        "min": round(min(accuracy), 4),
        "max": round(max(accuracy), 4),
    }


def saved_predictions(out_dir: Path) -> list[dict]:
    """A scored run's saved answers (`out_dir`/predictions.jsonl), every line readable."""
    from sqlft.jsonl import jsonl_lines

    predictions = [record for _, record, _ in jsonl_lines(out_dir / "predictions.jsonl")]
    if None in predictions:
        raise ValueError(f"{out_dir / 'predictions.jsonl'}: an unreadable line. Fix: decode the arm again")
    return predictions


def rescore(out_dir: Path, db_dir) -> dict[str, Any]:
    """A scored run's saved answers (`out_dir`/predictions.jsonl) scored again, after a change to
    how they are scored (the execution vote's rule): its new summary, the decoding untouched."""
    predictions = saved_predictions(out_dir)
    samples = max((len(p.get("candidates") or []) for p in predictions), default=0)
    return evaluate_into(predictions, db_dir, out_dir, samples)


def _phase(model, tokenizer, records, out_dir: Path, learning_rate: float, arm: Arm, *, minutes=0.0, steps=0):
    """Train for `steps` optimizer steps, or for `minutes`. Under the constant learning rate the first
    k steps of any run are the same k steps (its checkpoints every 16 steps are shorter runs of the
    arm); a cosine decays to zero at the end of the budget, so its checkpoints are only waypoints."""
    from sqlft.train import PhaseConfig, train

    if not minutes and not steps:
        raise ValueError(f"arm {arm.name}: give it minutes or steps; without either it would train 50 epochs")
    config = PhaseConfig(
        output_dir=str(out_dir),
        learning_rate=learning_rate,
        epochs=50,  # more than fits: the step or time budget ends the phase
        max_steps=steps or -1,
        max_minutes=minutes,
        batch_size=arm.batch_size,
        grad_accum=arm.grad_accum,
        warmup_ratio=0.0,
        scheduler=arm.scheduler,
        eval_steps=0,
        save_steps=16,
        save_total_limit=100,
        max_length=1024,
        seed=arm.seed,
    )
    wall, cpu = time.perf_counter(), cpu_seconds()
    result = train(model, tokenizer, records, None, config, skip_finished=False)
    wall, cpu = time.perf_counter() - wall, cpu_seconds() - cpu
    losses = [e["loss"] for e in result.losses]
    seen = result.global_step * arm.batch_size * arm.grad_accum
    return {
        "steps": result.global_step,
        "examples_seen": seen,
        "epochs_seen": round(seen / len(records), 2),
        "wall_minutes": round(wall / 60, 2),
        "cpu_minutes": round(cpu / 60, 2),
        "loss_first": round(sum(losses[:10]) / max(1, len(losses[:10])), 4),
        "loss_last": round(sum(losses[-10:]) / max(1, len(losses[-10:])), 4),
    }


def phase1_records(tokenizer, arm: Arm) -> list[dict]:
    from sqlft.data.prepare import prepare_records

    return prepare_records(
        "demo",
        None,
        "phase1",
        schema_style=arm.schema,
        sample_values=arm.sample_values,
        value_retrieval=arm.value_retrieval,
        tokenizer=tokenizer,
        max_length=1024,
        system=SYSTEM,
    ).records


def earlier_score(out_dir: Path, records: list[dict]) -> dict[str, Any] | None:
    """The base model's report from an earlier run on the same questions (greedy: same answers)."""
    report = out_dir / "report.json"
    if not report.is_file():
        return None
    earlier = json.loads(report.read_text())
    if [r["question"] for r in earlier["records"]] != [r["question"] for r in records]:
        return None
    timing = out_dir / "timing.json"
    seconds = json.loads(timing.read_text())["generate_seconds"] if timing.is_file() else None
    print(f"{report}: reusing the zero-shot report of an earlier run on the same questions")
    return {"summary": earlier["summary"], "generate_seconds": seconds}


def earlier_arm(arm: Arm, heldout: list[dict], runs: Path = RUNS) -> dict[str, Any] | None:
    """An arm's result from an earlier run with the same settings on the same questions."""
    path = runs / arm.name / "result.json"
    if not path.is_file():
        return None
    earlier = json.loads(path.read_text())
    same_arm = dataclasses.asdict(Arm(**earlier["arm"])) == dataclasses.asdict(arm)  # fills new fields
    if not same_arm or earlier["heldout_questions"] != len(heldout):
        return None
    print(f"{path}: reusing this arm's result from an earlier run")
    return earlier


def run_arm(
    arm: Arm,
    zero_shot: bool = False,
    every: int = 1,
    limit: int | None = None,
    model_name: str = MODEL,
    runs: Path = RUNS,
) -> dict[str, Any]:
    """Train the arm from the base model and score it on the held-out databases (and the base first).

    `every` > 1 scores every n-th held-out question (a fixed subset, to save CPU time); `limit`
    scores only the first ones: for a quick check of the script, not a result.
    """
    from sqlft.lora import add_lora

    out = runs / arm.name
    model, tokenizer = load_base(model_name)
    train_set, heldout, prepared = split_records(
        tokenizer, arm.schema, arm.sample_values, value_retrieval=arm.value_retrieval
    )
    heldout = heldout[::every][:limit]
    if not zero_shot and model_name == MODEL and (done := earlier_arm(arm, heldout, runs)):
        return done
    result: dict[str, Any] = {
        "arm": dataclasses.asdict(arm),
        "train_questions": len(train_set),
        "heldout_questions": len(heldout),
        "prompt_tokens": prepared.prompt_tokens,
    }
    if zero_shot:
        result["zero_shot"] = earlier_score(out / "zero_shot", heldout)
        if result["zero_shot"] is None:
            base = score(model, tokenizer, heldout, prepared.db_dir, out / "zero_shot")
            result["zero_shot"] = {"summary": base.summary, "generate_seconds": base.generate_seconds}
    model = add_lora(model, arm.lora)
    if arm.phase1_steps > 0:
        records = phase1_records(tokenizer, arm)
        result["phase1"] = _phase(
            model, tokenizer, records, out / "phase1", arm.phase1_learning_rate, arm, steps=arm.phase1_steps
        )
    result["training"] = _phase(
        model,
        tokenizer,
        train_set,
        out / "train",
        arm.learning_rate,
        arm,
        minutes=arm.minutes,
        steps=arm.steps,
    )
    sampling = SAMPLING if arm.samples > 1 else {}
    trained = score(model, tokenizer, heldout, prepared.db_dir, out / "trained", arm.samples, **sampling)
    result["trained"] = {"summary": trained.summary, "generate_seconds": trained.generate_seconds}
    (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    return result


def score_adapter(
    adapter: Path,
    arm: Arm,
    out_dir: Path,
    every: int = 1,
    limit: int | None = None,
    model_name: str = MODEL,
    constrained: bool = False,
) -> tuple[Scored, int]:
    """A saved adapter decoded again as `arm` decodes (best-of where it samples), on the same held-out
    questions as its training arm; with `constrained`, every answer schema-constrained. Returns the
    score and the number of questions."""
    from peft import PeftModel

    model, tokenizer = load_base(model_name)
    _, heldout, prepared = split_records(
        tokenizer, arm.schema, arm.sample_values, value_retrieval=arm.value_retrieval
    )
    heldout = heldout[::every][:limit]
    model = PeftModel.from_pretrained(model, str(adapter))
    schemas = None
    if constrained:
        from sqlft.constrained import record_schemas

        schemas = record_schemas(heldout, prepared.db_dir)
    sampling = SAMPLING if arm.samples > 1 else {}
    scored = score(model, tokenizer, heldout, prepared.db_dir, out_dir, arm.samples, schemas, **sampling)
    return scored, len(heldout)


def headline(summary: dict[str, Any]) -> dict[str, Any]:
    """The numbers a table shows for one scored model."""
    return {
        "exec_accuracy": summary["exec_accuracy"],
        "exec_accuracy_nonempty_gold": summary.get("exec_accuracy_nonempty_gold"),
        "exact_accuracy": summary["exact_accuracy"],
        "valid_rate": summary["valid_rate"],
        "rougeL": (summary.get("rouge") or {}).get("rougeL"),
        "by_hardness": {k: v["exec_accuracy"] for k, v in summary["by_hardness"].items()},
        **({"best_of": summary["best_of"]} if summary.get("best_of") else {}),
    }


def outcomes(run: Path, sampled: bool) -> dict[tuple[str, str], bool]:
    """Per held-out question of a scored run (`run`/trained/report.json), whether it was answered
    right: by the execution vote's pick where the run sampled, else by its greedy answer."""
    report = json.loads((run / "trained" / "report.json").read_text())
    key = "self_consistency_match" if sampled else "exec_match"
    return {(r["db_id"], r["question"]): bool(r.get(key)) for r in report["records"]}


def versus(run: Path, sampled: bool, reference: Path) -> dict[str, float | int]:
    """A run's paired difference from the reference run's greedy answers on the questions both
    answered, in points with the 95% half-width."""
    from sqlft.evaluate.stats import paired_difference

    mine, theirs = outcomes(run, sampled), outcomes(reference, sampled=False)
    both = [q for q in mine if q in theirs]
    mean, half = paired_difference([mine[q] for q in both], [theirs[q] for q in both])
    return {"points": round(100 * mean, 1), "half_width": round(100 * half, 1), "questions": len(both)}
