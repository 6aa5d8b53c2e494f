"""`sqlft ask` on the Spider databases no training saw: how each answer ends, and whether any fails on
an unknown table or column (issue 27's "done when": none may, with the base model or an adapter).

    OMP_NUM_THREADS=1 python benchmarks/ask_heldout.py [--adapter DIR] [--dbs singer,voter_1]
        [--cli N] [--out FILE]

Each question of the chosen held-out databases (default: all of `spider_split.HELDOUT_DBS`) is
asked through `sqlft.answer.ask` with the demo preset's prompt settings, schema-constrained as
`sqlft ask` is by default. The first N (`--cli`) are asked again through the `sqlft ask` command
itself (one model load each), whose exit status must be the one its `--json` outcome documents.
Prints the outcomes, the unknown-name failures and the status mismatches; `--out` writes them.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import time
from collections import Counter
from pathlib import Path

from spider_split import HELDOUT_DBS, SPIDER


def main() -> None:
    from sqlft.answer import EXIT_STATUS, ask, load_for_ask
    from sqlft.cli import main as sqlft

    parser = argparse.ArgumentParser()
    parser.add_argument("--adapter", help="a LoRA adapter folder (default: the base model alone)")
    parser.add_argument("--dbs", default=",".join(HELDOUT_DBS), help="comma-separated held-out db_ids")
    parser.add_argument("--cli", type=int, default=5, help="also run this many through `sqlft ask`")
    parser.add_argument("--out", help="write the per-question outcomes here (JSON)")
    args = parser.parse_args()
    dbs = [d for d in args.dbs.split(",") if d]
    unknown_dbs = set(dbs) - set(HELDOUT_DBS)
    if unknown_dbs:
        raise SystemExit(f"not held-out databases: {sorted(unknown_dbs)}; choose from {HELDOUT_DBS}")
    questions = [q for q in json.loads((SPIDER / "dev.json").read_text()) if q["db_id"] in dbs]
    model, tokenizer, prompt = load_for_ask("smollm2-135m", args.adapter, "demo")
    started, rows = time.perf_counter(), []
    for q in questions:
        db = SPIDER / "database" / q["db_id"] / f"{q['db_id']}.sqlite"
        answer = ask(q["question"], db, model, tokenizer, prompt=prompt, max_new_tokens=128)
        rows.append(
            {
                "db_id": q["db_id"],
                "question": q["question"],
                "sql": answer.sql,
                "outcome": answer.outcome,
                "error": answer.error,
            }
        )
    seconds = time.perf_counter() - started
    mismatches = []
    for row in rows[: args.cli]:
        db = SPIDER / "database" / row["db_id"] / f"{row['db_id']}.sqlite"
        command = ["ask", "--model", "smollm2-135m", "--preset", "demo", "--db", str(db), "--json"]
        command += ["--max-new-tokens", "128", *(["--adapter", args.adapter] if args.adapter else [])]
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(io.StringIO()):
            status = sqlft([*command, row["question"]])
        outcome = json.loads(out.getvalue())["outcome"]
        if status != EXIT_STATUS[outcome] or outcome != row["outcome"]:
            mismatches.append({**row, "cli_status": status, "cli_outcome": outcome})
    unknown = [
        r for r in rows if "no such table" in (r["error"] or "") or "no such column" in (r["error"] or "")
    ]
    result = {
        "model": "SmolLM2-135M" + (f" + {args.adapter}" if args.adapter else " (base)"),
        "databases": dbs,
        "questions": len(rows),
        "outcomes": dict(Counter(r["outcome"] for r in rows)),
        "unknown_name_failures": unknown,
        "cli_checked": min(args.cli, len(rows)),
        "cli_status_mismatches": mismatches,
        "seconds": round(seconds, 1),
    }
    print(json.dumps({k: v for k, v in result.items() if k != "unknown_name_failures"}, indent=1))
    for r in unknown:
        print("UNKNOWN NAME:", r["db_id"], r["sql"], "|", r["error"])
    if args.out:
        Path(args.out).write_text(json.dumps({**result, "answers": rows}, indent=1) + "\n")


if __name__ == "__main__":
    main()
