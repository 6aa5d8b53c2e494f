"""Sentences a notebook writes from its own run: what the preset made it do, and what the numbers show.

A notebook's fixed markdown stays true for every preset; where the words depend on a value
(QLoRA or plain LoRA, how much lower phase 2's learning rate is, how long a phase trained) the
notebook shows one of these, so text and output never disagree.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlft.evaluate.report import breakdown
from sqlft.evaluate.stats import interval, paired_difference

SMALL_GROUP = 20  # a hardness or difficulty group smaller than this gets a caveat: mostly noise
SEMANTICS_WORDS = {
    "spider": "Spider's test-suite semantics",
    "bird": "BIRD's semantics (sets of rows, column order counts)",
}


def _markdown(lines: list[str]):
    from IPython.display import Markdown

    return Markdown("\n".join(lines))


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def weights_sentence(config: Any) -> str:
    """QLoRA when the base is quantised, LoRA on the full-precision base when it is not."""
    m = config.model
    lora = f"a LoRA adapter (`{m.lora}` preset)"
    if m.quantization == "nf4":
        return f"**QLoRA**: {lora} trained on the base model loaded in 4-bit NF4 with double quantisation"
    if m.quantization == "int8":
        return f"{lora} trained on the base model loaded in 8-bit"
    dtype = "fp32" if m.compute_dtype in ("auto", "fp32") else m.compute_dtype
    return (
        f"**plain LoRA**: {lora} trained on the base model in full precision ({dtype}; "
        "`model.quantization: none`, so this is not QLoRA)"
    )


def budget_sentence(section: Any, records: int | None = None) -> str:
    """How long a phase trains, as the preset says: steps, epochs, and a time budget if any."""
    data = f" over {records} training records" if records is not None else ""
    if section.max_steps > 0:
        length = f"{section.max_steps} optimizer steps{data}"
    else:
        length = f"{section.epochs:g} epoch{'s' if section.epochs != 1 else ''}{data}"
    if section.max_minutes > 0:
        length += f", stopped after {section.max_minutes:g} minutes of training if sooner"
    batch = section.batch_size * section.grad_accum
    return f"{length}, {batch} records per step ({section.batch_size} x {section.grad_accum} accumulation)"


def describe_phase(config: Any, phase: str):
    """What this phase trains, on what, for how long and at which learning rate: from the preset."""
    section = getattr(config, phase)
    data = section.data
    where = f"`{data.source}`" + (f" split `{data.split}`" if data.split else "")
    if data.limit:
        where += f", first {data.limit} records"
    rate = f"learning rate {section.learning_rate:g} ({section.scheduler})"
    if phase == "phase2":
        before = config.phase1.learning_rate
        ratio = before / section.learning_rate if section.learning_rate else float("inf")
        relation = (
            f"{ratio:g} times lower than phase 1's {before:g}"
            if ratio > 1
            else f"equal to phase 1's {before:g}"
            if ratio == 1
            else f"higher than phase 1's {before:g}"
        )
        rate += f", {relation}"
    start = (
        "continuing phase 1's adapter (trainable)" if phase == "phase2" else "starting from the base model"
    )
    lines = [
        f"This run ({config.name}) trains {weights_sentence(config)}, {start}.",
        "",
        f"- data: {where}",
        f"- length: {budget_sentence(section)}",
        f"- {rate}",
        f"- prompts: `{config.prompt.schema}` schema, {config.prompt.sample_values} sample values per "
        f"column, {config.prompt.value_retrieval} retrieved values per question, at most "
        f"{config.prompt.max_length} tokens",
    ]
    return _markdown(lines)


def _phase_facts(run: Any, step: str) -> str | None:
    """`trained N steps in M min on K records` from the phase's marker and training file."""
    done = Path(run.step_dir(step)) / "phase_done.json"
    if not done.is_file():
        return None
    marker = json.loads(done.read_text())
    train = Path(run.step_dir(step)) / "train.jsonl"
    records = sum(1 for _ in train.open(encoding="utf-8")) if train.is_file() else None
    on = f" on {records} records" if records is not None else ""
    return f"trained {marker['global_step']} steps in {marker['seconds'] / 60:.1f} min{on}"


def _db_overlap(run: Any, step: str, report: dict[str, Any]) -> str | None:
    """A caveat when the dev questions' databases were also in the phase's training data."""
    train = Path(run.step_dir(step)) / "train.jsonl"
    if not train.is_file():
        return None
    trained = {json.loads(line).get("db_id") for line in train.open(encoding="utf-8")}
    dev = {r.get("db_id") for r in report["records"]}
    seen = sorted(d for d in dev & trained if d)
    if not seen:
        return f"none of the {len(dev)} dev databases was in {step}'s training data: a cross-database result"
    share = sum(r.get("db_id") in seen for r in report["records"]) / max(len(report["records"]), 1)
    return (
        f"{share:.0%} of the dev questions ask about databases {step} trained on ({', '.join(seen)}): "
        "unseen questions, seen schemas, so this overstates what it would do on a new database"
    )


def outcomes(report: dict[str, Any]) -> dict[tuple, bool]:
    """Each record's execution match, keyed by (db_id, question, gold) so runs can be paired."""
    return {
        (r.get("db_id"), r.get("question"), r["gold"]): bool(r.get("exec_match")) for r in report["records"]
    }


def comparison(report: dict[str, Any], earlier: dict[str, Any], name: str) -> str:
    """The gain over an earlier step on the questions both answered, with its paired 95% interval."""
    after, before = outcomes(report), outcomes(earlier)
    shared = [k for k in after if k in before]
    gain, half = paired_difference([after[k] for k in shared], [before[k] for k in shared])
    verdict = (
        "larger than its uncertainty" if abs(gain) > half else "within its uncertainty: it could be noise"
    )
    return (
        f"{100 * gain:+.1f} points of execution accuracy over {name} "
        f"(paired 95% interval ±{100 * half:.1f} on {len(shared)} shared questions; {verdict})"
    )


def what_this_shows(config: Any, run: Any, reports: dict[str, dict[str, Any]], step: str):
    """The closing cell: numbers with intervals, the change from the step before, and the caveats."""
    report = reports[step]
    s = report["summary"]
    acc = s["exec_accuracy"] or 0.0
    lines = ["## What this shows", ""]
    facts = _phase_facts(run, step)
    head = f"**{step}** ({config.model.name}, preset {config.name}"
    head += f", {facts})" if facts else ")"
    lines.append(
        f"- {head} answered {s['n']} dev questions ({s['scored']} scored): execution accuracy "
        f"**{_pct(acc)}** (95% interval ±{100 * interval(acc, s['scored']):.1f}), "
        f"valid SQL {_pct(s['valid_rate'])}, exact match {_pct(s['exact_accuracy'])}"
        + (
            f"; scored with {SEMANTICS_WORDS[s['semantics']]}."
            if s.get("semantics") in SEMANTICS_WORDS
            else "."
        )
    )
    best = s.get("best_of")
    if best:
        lines.append(
            f"- best of {best['samples']} sampled answers ({best['vote']} vote), scored apart from greedy: "
            f"**{_pct(best['exec_accuracy'])}** (95% interval ±"
            f"{100 * interval(best['exec_accuracy'] or 0.0, best['n']):.1f}) on {best['n']} questions."
        )
    kind, table = breakdown(s)
    if kind == "difficulty":
        levels = ", ".join(f"{level} {_pct(g['exec_accuracy'])} (n={g['n']})" for level, g in table.items())
        lines.append(f"- by BIRD's difficulty: {levels}.")
    earlier = [name for name in reports if name != step]
    if len(reports) > 2:
        path = " → ".join(f"{name} {_pct(r['summary']['exec_accuracy'])}" for name, r in reports.items())
        lines.append(f"- step by step, execution accuracy: {path}.")
    for name in earlier[-1:] + ([earlier[0]] if len(earlier) > 1 else []):
        lines.append(f"- {comparison(report, reports[name], name)}.")
    lines += ["", "Caveats:", ""]
    caveats = [_db_overlap(run, step, report)]
    small = [f"{level} (n={g['n']})" for level, g in table.items() if 0 < g["n"] < SMALL_GROUP]
    if small:
        caveats.append(f"small {kind} groups, whose accuracies are mostly noise: {', '.join(small)}")
    if s["empty_gold"]:
        caveats.append(
            f"{s['empty_gold_matches']} of {s['empty_gold']} questions whose gold result is empty were "
            "'matched' (an empty answer matches them); without them: "
            f"{_pct(s['exec_accuracy_nonempty_gold'])}"
        )
    else:
        caveats.append("no dev question has an empty gold result, so empty answers cannot inflate the score")
    if s["scored"] < s["n"]:
        caveats.append(f"{s['n'] - s['scored']} records could not be scored (their gold or database failed)")
        if s.get("semantics") == "bird":
            caveats.append(
                f"BIRD's evaluator counts those as wrong: {_pct(s['exec_accuracy_all'])} over all {s['n']}"
            )
    lines += [f"- {c}." for c in caveats if c]
    return _markdown(lines)
