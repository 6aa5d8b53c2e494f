"""`sqlft ask`: answer a question about an SQLite file with SQL and its first rows (see sqlft.answer).

Exit status, so a script can tell an answer from a failure: 0 the query ran and its rows are shown,
2 bad input (no such file, not SQLite, no tables, no model), 3 the model wrote no SQL, 4 the SQL
failed (SQLite's message is shown). Reading questions from stdin, the status is 0 when every
question's query ran, else that of the first question that failed; `--json` gives each question's
`outcome` (rows, no_sql, sql_error, bad_input).
"""

from __future__ import annotations

import argparse
import json
import sys

from sqlft.commands.predict import QUANTIZATION_CHOICES
from sqlft.data.records import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("question", nargs="?", help="the question; none: read one question a line from stdin")
    parser.add_argument("--db", required=True, help="an SQLite file (opened read-only)")
    parser.add_argument(
        "--model", help="hub id, local folder or smollm2-135m (default: the run's or preset's)"
    )
    parser.add_argument("--adapter", help="LoRA adapter folder; its run folder's preset.yaml sets the prompt")
    parser.add_argument("--preset", help="preset whose prompt and loading settings to use")
    parser.add_argument(
        "--quantization",
        choices=QUANTIZATION_CHOICES,
        help="default: the preset's (the adapter's run folder's), else none",
    )
    parser.add_argument(
        "--allow-other-base", action="store_true", help="accept an adapter of another base name"
    )
    parser.add_argument(
        "-n",
        "--num-samples",
        type=int,
        default=1,
        help="N > 1: sample N, keep the majority result (a value from joins with a condition first)",
    )
    parser.add_argument(
        "--schema-constrained",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="name only the file's tables and columns (default: on)",
    )
    parser.add_argument("--rows", type=int, default=10, help="rows to show")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--timeout", type=float, default=10.0, help="seconds the query may run")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--sql-only", action="store_true", help="print only the SQL")
    output.add_argument("--json", action="store_true", help="print one JSON object per question")


def _show(answer, args: argparse.Namespace) -> None:
    if args.json:
        print(json.dumps(answer.to_dict(), default=str, ensure_ascii=False))
    elif args.sql_only:
        print(answer.sql)
        if answer.outcome != "rows":
            print(f"sqlft ask: {answer.error}\nhint: {answer.hint()}", file=sys.stderr)
    else:
        print(answer.table() + "\n")
    sys.stdout.flush()


def _bad_input(message: str, args: argparse.Namespace, question: str | None = None) -> int:
    from sqlft.answer import BAD_INPUT

    print(f"sqlft ask: {message}", file=sys.stderr)
    if args.json:
        print(json.dumps({"question": question, "outcome": "bad_input", "error": message}))
    return BAD_INPUT


def run(args: argparse.Namespace) -> int:
    from sqlft.answer import ask, load_for_ask, read_schema, run_preset
    from sqlft.config import PresetError, load_preset

    if args.num_samples < 1 or args.max_new_tokens < 1:
        return _bad_input("-n and --max-new-tokens must be at least 1", args, args.question)
    model_name = args.model
    try:
        preset = args.preset or (run_preset(args.adapter) if args.adapter else None)
        model_name = args.model or (load_preset(preset).model.name if preset else None)
        if not model_name:
            raise DataError("no model. Fix: pass --model (or --preset, or an adapter from a run folder)")
        read_schema(args.db)  # a missing or broken file fails before the model loads
        model, tokenizer, prompt = load_for_ask(
            model_name,
            args.adapter,
            args.preset,
            quantization=args.quantization,
            allow_other_base=args.allow_other_base,
        )
    except (DataError, PresetError, FileNotFoundError) as error:
        return _bad_input(str(error), args, args.question)
    except OSError as error:
        return _bad_input(f"cannot load --model {model_name}: {error}", args, args.question)
    questions = [args.question] if args.question else (line.strip() for line in sys.stdin)
    if not args.question and sys.stdin.isatty():
        print("Type a question and press Enter; Ctrl-D ends.", file=sys.stderr)
    status = 0
    for question in questions:
        if not question:
            continue
        try:
            answer = ask(
                question,
                args.db,
                model,
                tokenizer,
                prompt=prompt,
                num_samples=args.num_samples,
                schema_constrained=args.schema_constrained,
                max_rows=args.rows,
                max_new_tokens=args.max_new_tokens,
                timeout_s=args.timeout,
            )
        except (DataError, FileNotFoundError) as error:
            return _bad_input(str(error), args, question)
        _show(answer, args)
        status = status or answer.exit_status
    return status
