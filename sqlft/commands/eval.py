"""`sqlft eval`: execution match (Spider's or BIRD's semantics), exact match, valid SQL and ROUGE
for a predictions file.

Imports no torch or transformers, so it starts in about a second.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("predictions", type=Path, help="JSON Lines with db_id (or context), gold, pred")
    parser.add_argument("--db-dir", type=Path, help="folder with one folder per db_id (Spider's database/)")
    parser.add_argument("--out", type=Path, help="report JSON (CSV beside it); default PRED.eval.json")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per query (default 30)")
    parser.add_argument("--keep-distinct", action="store_true", help="do not drop DISTINCT before executing")
    parser.add_argument("--workers", type=int, default=1, help="processes (records keep their order)")
    parser.add_argument("--no-rouge", action="store_true", help="skip ROUGE (saves importing nltk)")
    parser.add_argument(
        "--semantics",
        default="auto",
        choices=["auto", "spider", "bird"],
        help="execution match: Spider's test-suite rules, BIRD's set comparison, or auto "
        "(BIRD's when every record came from `sqlft data --source bird`)",
    )
    parser.add_argument(
        "--ves-repeats",
        type=int,
        default=0,
        metavar="N",
        help="add BIRD's R-VES, timing each matched pair N times (the official uses 100)",
    )


def run(args: argparse.Namespace) -> int:
    from sqlft.evaluate.report import evaluate_predictions, format_table, read_predictions, write_report

    if not args.predictions.is_file():
        print(f"error: {args.predictions}: no such file; fix: pass the path of a predictions .jsonl")
        return 2
    if args.db_dir is not None and not args.db_dir.is_dir():
        print(f"error: --db-dir {args.db_dir}: no such folder; fix: pass Spider's database/ folder")
        return 2
    records = read_predictions(args.predictions)
    report = evaluate_predictions(
        records,
        args.db_dir,
        timeout_s=args.timeout,
        keep_distinct=args.keep_distinct,
        workers=max(1, args.workers),
        with_rouge=not args.no_rouge,
        semantics=args.semantics,
        ves_repeats=max(0, args.ves_repeats),
    )
    out = args.out or args.predictions.with_suffix(".eval.json")
    json_path, csv_path = write_report(report, out)
    print(format_table(report["summary"]))
    for record in report["records"]:
        if record.get("error_kind") == "input":
            print(record["error"])
    print(f"wrote {json_path} and {csv_path}")
    return 0
