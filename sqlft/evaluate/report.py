"""Evaluate prediction records and write the report: per-record verdicts, a summary overall and
by hardness (Spider) or difficulty (BIRD), error counts, ROUGE, as JSON plus CSV, and a printable
table. The summary names the execution semantics that scored it (`spider` or `bird`).

A prediction record has `gold`, `pred` and `db_id` (or `context`: SQLite statements that build
an in-memory database); every other field is kept as it came.
"""

from __future__ import annotations

import csv
import io
import json
from collections import Counter
from pathlib import Path
from typing import Any

from sqlft.atomic import write_text_atomic
from sqlft.evaluate.bird import resolve_semantics
from sqlft.evaluate.exact import exact_match
from sqlft.evaluate.execution import ERROR_LABELS, Executor
from sqlft.evaluate.hardness import LEVELS, hardness
from sqlft.jsonl import jsonl_lines

# Longer predictions are scored invalid unread: Spider's longest gold is under 1,000 characters, and
# parsing or running megabytes of SQL costs minutes and gigabytes.
MAX_PRED_CHARS = 20_000
# errors that mean the record could not be scored at all (the gold side or the input failed)
UNSCORED_KINDS = ("input", "gold", "unknown_db", "context")
RESULT_FIELDS = ("exec_match", "exact_match", "valid", "hardness", "gold_empty", "error_kind", "error")


def read_predictions(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSON Lines file; a bad line becomes a record holding only its `error`."""
    records = []
    for number, record, problem in jsonl_lines(path):
        where = f"{path} line {number}"
        if problem:
            records.append(
                _bad(
                    where, problem, 'write one JSON object per line: {"db_id": ..., "gold": ..., "pred": ...}'
                )
            )
            continue
        problem = record_problem(record)
        if problem:
            record.update(_bad(where, *problem))
        records.append(record)
    return records


def record_problem(record: dict[str, Any]) -> tuple[str, str] | None:
    """(what is wrong, how to fix it) for a record that cannot be evaluated, else None."""
    missing = [k for k in ("gold", "pred") if not isinstance(record.get(k), str)]
    if missing:
        return f"missing or non-string {' and '.join(missing)}", "give `gold` and `pred` as SQL strings"
    if not record.get("db_id") and not record.get("context"):
        return "neither db_id nor context", "give `db_id` (a folder under --db-dir) or `context` (SQL)"
    wrong = [k for k in ("db_id", "context") if record.get(k) and not isinstance(record[k], str)]
    if wrong:
        kind = type(record[wrong[0]]).__name__
        return f"`{wrong[0]}` is a {kind}, not a string", f"give `{wrong[0]}` as one string"
    return None


def _bad(where: str, what: str, fix: str) -> dict[str, Any]:
    return {"error_kind": "input", "error": f"input: {where}: {what}; fix: {fix}"}


_worker: Executor | None = None


def _init_worker(db_dir: str | None, timeout_s: float, keep_distinct: bool, semantics: str) -> None:
    global _worker
    _worker = Executor(db_dir, timeout_s, keep_distinct, semantics)


def difficulty(record: dict[str, Any]) -> str | None:
    """BIRD's own grade of a question (simple, moderate, challenging), top level or in `extra`."""
    extra = record.get("extra") if isinstance(record.get("extra"), dict) else {}
    value = record.get("difficulty", extra.get("difficulty"))
    return value if isinstance(value, str) else None


def evaluate_record(executor: Executor, record: dict[str, Any]) -> dict[str, Any]:
    """The record with its verdict fields (RESULT_FIELDS) added."""
    out = dict(record)
    graded = difficulty(record)
    if graded is not None:  # BIRD grades its questions itself: Spider's hardness is not computed
        out["difficulty"] = graded
    out["hardness"] = hardness(record) if isinstance(record.get("gold"), str) and graded is None else None
    problem = record_problem(record) if out.get("error_kind") != "input" else None
    if problem:  # API callers skip read_predictions, which marks these already
        out.update(_bad("record", *problem))
    if out.get("error_kind") == "input":
        out.update(exec_match=False, exact_match=False, valid=None, gold_empty=None)
        return out
    if len(record["pred"]) > MAX_PRED_CHARS:
        error = f"prediction of {len(record['pred']):,} characters, over the {MAX_PRED_CHARS:,} scored"
        out.update(exec_match=False, exact_match=False, valid=False, gold_empty=None)
        out.update(error_kind="too_long", error=error, pred=record["pred"][:200] + " ...")
        return out
    outcome = executor.exec_match(record["pred"], record["gold"], record.get("db_id"), record.get("context"))
    # Queries equal after normalisation return the same rows, so a scored execution mismatch
    # settles exact match without parsing: sqlglot is the slowest part of an evaluation.
    settled = not outcome.match and outcome.error_kind not in UNSCORED_KINDS
    out.update(
        exec_match=outcome.match,
        exact_match=False if settled else exact_match(record["pred"], record["gold"]),
        valid=outcome.valid,
        gold_empty=outcome.gold_empty,
        error_kind=outcome.error_kind,
        error=outcome.error,
    )
    if record.get("candidates") and outcome.error_kind not in UNSCORED_KINDS:
        out.update(_selection_matches(executor, record))
    return out


SELECTIONS = ("self_consistency", "execution_guided")


def _selection_matches(executor: Executor, record: dict[str, Any]) -> dict[str, Any]:
    """Execution match of the candidate each selection rule picks from `candidates` (sampled SQL
    with model scores): reported beside the greedy verdict, never mixed into it."""
    from sqlft.evaluate.consistency import execution_guided, runner, self_consistency, voters

    candidates, scores = voters(record)
    run = runner(executor, record.get("db_id"), record.get("context"))
    likeliest_first = [candidates[i] for i in sorted(range(len(scores)), key=lambda i: -scores[i])]
    chosen = {
        "self_consistency": self_consistency(candidates, run, scores),
        "execution_guided": execution_guided(likeliest_first, run),  # the likeliest that runs
    }
    return {
        f"{rule}_match": executor.exec_match(
            choice.sql, record["gold"], record.get("db_id"), record.get("context")
        ).match
        for rule, choice in chosen.items()
    }


def _evaluate_in_worker(record: dict[str, Any]) -> dict[str, Any]:
    assert _worker is not None
    return evaluate_record(_worker, record)


def evaluate_predictions(
    records: list[dict[str, Any]],
    db_dir: str | Path | None,
    *,
    timeout_s: float = 30.0,
    keep_distinct: bool = False,
    workers: int = 1,
    with_rouge: bool = True,
    semantics: str = "auto",
    ves_repeats: int = 0,
) -> dict[str, Any]:
    """{"summary": ..., "records": [...]}: every record in order with its verdict fields.

    `semantics`: `spider` (test-suite), `bird` (BIRD's set comparison), or `auto`: BIRD's when
    every record came from the BIRD loader. `ves_repeats` > 0 adds BIRD's R-VES (sqlft.evaluate.ves).
    """
    semantics = resolve_semantics(semantics, records)
    settings = (str(db_dir) if db_dir is not None else None, timeout_s, keep_distinct, semantics)
    if workers > 1 and len(records) > 1:
        from concurrent.futures import ProcessPoolExecutor  # 20 ms of imports a plain run skips

        with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=settings) as pool:
            chunk = max(1, min(64, len(records) // (workers * 4)))
            results = list(pool.map(_evaluate_in_worker, records, chunksize=chunk))
    else:
        executor = Executor(*settings)
        try:
            results = [evaluate_record(executor, r) for r in records]
        finally:
            executor.close()
    if ves_repeats > 0:
        from sqlft.evaluate.ves import add_ves

        add_ves(results, Executor(*settings), ves_repeats)
    summary = summarize(results, with_rouge=with_rouge)
    summary["semantics"] = semantics
    summary["settings"] = {
        "db_dir": settings[0],
        "timeout_s": timeout_s,
        "keep_distinct": keep_distinct,
        "semantics": semantics,
    }
    if ves_repeats > 0:
        from sqlft.evaluate.ves import summarize_ves

        summary["r_ves"] = summarize_ves(results, ves_repeats)
    return {"summary": summary, "records": results}


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def duplicates(records: list[dict[str, Any]]) -> dict[str, Any]:
    """Records that repeat an earlier one's `id` (or its db_id and question where there is no id).

    Each is still scored as given; the count says how much the accuracy leans on repeats.
    """
    seen: set[str] = set()
    repeated = []
    for record in records:
        key = record.get("id")
        key = repr(key) if key is not None else repr((record.get("db_id"), record.get("question")))
        if key in seen and (record.get("id") is not None or record.get("question")):
            repeated.append(key)
        seen.add(key)
    return {"count": len(repeated), "examples": sorted(set(repeated))[:5]}


def summarize(records: list[dict[str, Any]], with_rouge: bool = True) -> dict[str, Any]:
    """Counts and accuracies. `exec_accuracy` is over scored records (gold executed);
    `exec_accuracy_all` over every record; `exec_accuracy_nonempty_gold` leaves out records
    whose gold result is empty (an empty prediction matches them)."""
    n = len(records)
    scored = [r for r in records if r.get("error_kind") not in UNSCORED_KINDS]
    nonempty = [r for r in scored if r.get("gold_empty") is False]
    matches = sum(bool(r["exec_match"]) for r in records)
    summary: dict[str, Any] = {
        "n": n,
        "scored": len(scored),
        "exec_match": matches,
        "exec_accuracy": _rate(matches, len(scored)),
        "exec_accuracy_all": _rate(matches, n),
        "empty_gold": sum(r.get("gold_empty") is True for r in scored),
        "empty_gold_matches": sum(bool(r["exec_match"]) for r in scored if r.get("gold_empty") is True),
        "nonempty_gold": len(nonempty),
        "exec_accuracy_nonempty_gold": _rate(sum(bool(r["exec_match"]) for r in nonempty), len(nonempty)),
        "exact_match": sum(bool(r["exact_match"]) for r in scored),
        "exact_accuracy": _rate(sum(bool(r["exact_match"]) for r in scored), len(scored)),
        "valid": sum(r.get("valid") is True for r in scored),
        "valid_rate": _rate(sum(r.get("valid") is True for r in scored), len(scored)),
        "errors": dict(Counter(r["error_kind"] for r in records if r.get("error_kind"))),
        "duplicates": duplicates(records),
    }
    by_hardness = {}
    for level in (*LEVELS, None):
        group = [r for r in scored if r.get("hardness") == level]
        if level is None and not group:
            continue
        hits = sum(bool(r["exec_match"]) for r in group)
        by_hardness[level or "unknown"] = {
            "n": len(group),
            "exec_match": hits,
            "exec_accuracy": _rate(hits, len(group)),
            "exact_accuracy": _rate(sum(bool(r["exact_match"]) for r in group), len(group)),
        }
    summary["by_hardness"] = by_hardness
    if any(r.get("difficulty") for r in records):
        summary["by_difficulty"] = _by_difficulty(records, scored)
    for rule in SELECTIONS:
        picked = [r for r in scored if f"{rule}_match" in r]
        if picked:
            hits = sum(bool(r[f"{rule}_match"]) for r in picked)
            summary[rule] = {"n": len(picked), "exec_match": hits, "exec_accuracy": _rate(hits, len(picked))}
    if with_rouge:
        from sqlft.evaluate.rouge import rouge

        pairs = [(r["pred"], r["gold"]) for r in records if r.get("error_kind") != "input"]
        summary["rouge"] = rouge([p for p, _ in pairs], [g for _, g in pairs])
    return summary


def _by_difficulty(records: list[dict[str, Any]], scored: list[dict[str, Any]]) -> dict[str, Any]:
    """BIRD's table: per difficulty, over scored records as elsewhere, and over every record
    (`exec_accuracy_all`, an unscored record counting 0 as in BIRD's own evaluator)."""
    from sqlft.data.bird import DIFFICULTIES

    levels = [
        *DIFFICULTIES,
        *sorted({r["difficulty"] for r in records if r.get("difficulty")} - set(DIFFICULTIES)),
    ]
    table = {}
    for level in [*levels, None]:
        every = [r for r in records if r.get("difficulty") == level]
        if not every:
            continue
        group = [r for r in scored if r.get("difficulty") == level]
        hits = sum(bool(r["exec_match"]) for r in group)
        table[level or "unknown"] = {
            "n": len(group),
            "exec_match": hits,
            "exec_accuracy": _rate(hits, len(group)),
            "exact_accuracy": _rate(sum(bool(r["exact_match"]) for r in group), len(group)),
            "n_all": len(every),
            "exec_accuracy_all": _rate(sum(bool(r["exec_match"]) for r in every), len(every)),
        }
    return table


def breakdown(summary: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """The table a report is read by: ("difficulty", ...) for BIRD's graded questions, else
    ("hardness", ...), Spider's levels."""
    if summary.get("by_difficulty"):
        return "difficulty", summary["by_difficulty"]
    return "hardness", summary.get("by_hardness", {})


_SCALAR = str | int | float | bool | None


def csv_columns(records: list[dict[str, Any]]) -> list[str]:
    """Scalar fields in first-seen order, verdict fields last (nested fields such as `sql` left out)."""
    seen: dict[str, None] = {}
    for record in records:
        for key, value in record.items():
            if key not in seen and key not in RESULT_FIELDS and isinstance(value, _SCALAR):
                seen[key] = None
    return [*seen, *RESULT_FIELDS]


def write_report(report: dict[str, Any], path: str | Path) -> tuple[Path, Path]:
    """Write REPORT.json and REPORT.csv (one row per record) beside it; returns both paths."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    # One record per line: json's C encoder does that, while `indent` falls back to its pure-Python
    # encoder, which took longer than executing every query. backslashreplace: a lone surrogate
    # from a JSON escape in the input comes out as the same escape.
    encode = json.JSONEncoder(ensure_ascii=False, check_circular=False, default=str).encode
    rest = {k: v for k, v in report.items() if k != "records"}
    head = json.dumps(rest, indent=1, ensure_ascii=False, default=str)[:-1].rstrip()  # open "{"
    lines = ",\n".join(map(encode, report["records"]))
    text = f'{head}{"," if rest else ""}\n "records": [\n{lines}\n ]\n}}\n'
    write_text_atomic(path, text, errors="backslashreplace")  # a kill never leaves half a report
    csv_path = path.with_suffix(".csv")
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, csv_columns(report["records"]), extrasaction="ignore")
    writer.writeheader()
    writer.writerows(report["records"])
    write_text_atomic(csv_path, out.getvalue(), errors="backslashreplace")
    return path, csv_path


SEMANTICS_NOTES = {
    "spider": "Spider's test-suite semantics (bags of rows, columns may be permuted, ORDER BY honoured)",
    "bird": "BIRD's semantics (sets of rows: order and duplicates ignored, column order counts)",
}


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def format_table(summary: dict[str, Any]) -> str:
    """The summary as a plain-text table for a terminal or a notebook."""
    semantics = summary.get("semantics")
    lines = [f"execution match: {SEMANTICS_NOTES[semantics]}"] if semantics in SEMANTICS_NOTES else []
    lines.append(f"{'':<12}{'count':>7}{'exec':>8}{'exact':>8}")
    for level, row in breakdown(summary)[1].items():
        lines.append(
            f"{level:<12}{row['n']:>7}{_pct(row['exec_accuracy']):>8}{_pct(row['exact_accuracy']):>8}"
        )
    lines.append(
        f"{'all':<12}{summary['scored']:>7}{_pct(summary['exec_accuracy']):>8}{_pct(summary['exact_accuracy']):>8}"
        f"   scored {summary['scored']} of {summary['n']}"
    )
    if semantics == "bird" and summary["scored"] < summary["n"]:
        lines.append(
            f"BIRD's own evaluator scores unscored records 0: execution accuracy over all "
            f"{summary['n']} records {_pct(summary['exec_accuracy_all'])}"
        )
    if summary.get("r_ves") and summary["r_ves"]["r_ves"] is not None:
        row = summary["r_ves"]
        lines.append(
            f"R-VES: {row['r_ves']:.2f} ({row['repeats']} timed runs of each matched pair; {row['note']})"
        )
    if summary["empty_gold"]:
        lines.append(
            f"exec accuracy without empty-gold records: {_pct(summary['exec_accuracy_nonempty_gold'])} "
            f"({summary['empty_gold_matches']} of {summary['empty_gold']} empty-gold records matched)"
        )
    else:
        lines.append("no gold result is empty, so empty answers match nothing")
    lines.append(f"valid SQL: {_pct(summary['valid_rate'])} (scored {summary['scored']} of {summary['n']})")
    repeats = summary.get("duplicates") or {"count": 0}
    if repeats["count"]:
        lines.append(
            f"duplicates: {repeats['count']} records repeat an earlier id (each scored as given), "
            f"e.g. {', '.join(repeats['examples'][:3])}"
        )
    if summary["errors"]:
        counts = sorted(summary["errors"].items())
        lines.append("errors: " + ", ".join(f"{error_label(k)} {v}" for k, v in counts))
    if summary.get("best_of"):
        row = summary["best_of"]
        lines.append(
            f"best of {row['samples']} ({row['vote']} vote): {_pct(row['exec_accuracy'])} exec "
            f"({row['n']} records; greedy above)"
        )
    for rule in SELECTIONS:
        if summary.get(rule):
            row = summary[rule]
            lines.append(
                f"{rule.replace('_', '-')} over sampled candidates: {_pct(row['exec_accuracy'])} "
                f"exec ({row['n']} records; greedy above)"
            )
    if summary.get("rouge"):
        lines.append("ROUGE: " + "  ".join(f"{k} {v:.3f}" for k, v in summary["rouge"].items()))
    return "\n".join(lines)


def error_label(kind: str) -> str:
    """The words shown for an error kind."""
    return "input" if kind == "input" else ERROR_LABELS.get(kind, kind)


def failure_table(report: dict[str, Any], examples: int = 2, width: int = 160) -> str:
    """Markdown: each error kind (and wrong results) with its count and a few examples."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in report["records"]:
        if not record["exec_match"]:
            kind = error_label(record["error_kind"]) if record.get("error_kind") else "wrong result"
            groups.setdefault(kind, []).append(record)
    total = len(report["records"]) or 1
    lines = ["| failure | count | share | example |", "|---|---:|---:|---|"]
    for kind, group in sorted(groups.items(), key=lambda kv: -len(kv[1])):
        for i, record in enumerate(group[:examples]):
            text = record.get("error") or f"pred `{record.get('pred', '')}` gold `{record.get('gold', '')}`"
            text = " ".join(str(text).split())[:width].replace("|", "\\|")
            head = f"| {kind} | {len(group)} | {len(group) / total:.1%} |" if i == 0 else "| | | |"
            lines.append(f"{head} {text} |")
    return "\n".join(lines)
