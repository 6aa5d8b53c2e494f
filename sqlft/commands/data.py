"""`sqlft data`: turn a dataset into prompt/completion JSON Lines and report what was kept."""

from __future__ import annotations

import argparse
import sys

from sqlft.data import SOURCES
from sqlft.data.records import DataError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--source", required=True, choices=list(SOURCES))
    parser.add_argument("--path", help="local file or folder (default: the hub id, or the demo cache)")
    parser.add_argument("--split", help="dev, train, ... (default: the source's own default)")
    parser.add_argument(
        "--schema", default="ddl", choices=["ddl", "compact", "mschema"], help="schema serialisation"
    )
    parser.add_argument(
        "--sample-values", type=int, default=0, metavar="K", help="K sample values per column"
    )
    parser.add_argument(
        "--value-retrieval",
        type=int,
        default=0,
        metavar="K",
        help="show up to K database values the question mentions beside their columns",
    )
    parser.add_argument("--template", default="default", help="shipped template name or a template file")
    parser.add_argument(
        "--tokenizer", help="tokenizer folder or model name; enables chat template and lengths"
    )
    parser.add_argument("--max-length", type=int, help="drop (never truncate) records longer than N tokens")
    parser.add_argument("--db-dir", help="folder of <db_id>/<db_id>.sqlite (default: PATH/database)")
    parser.add_argument("--tables", help="Spider-style tables.json (default: PATH/tables.json)")
    parser.add_argument("--limit", type=int, help="keep at most N records")
    parser.add_argument(
        "--descriptions",
        action="store_true",
        help="BIRD: add column notes from database_description/*.csv after the schema",
    )
    user = parser.add_argument_group("your own CSV/JSONL (--source csv)")
    user.add_argument("--question-col", default="question")
    user.add_argument("--sql-col", default="query")
    user.add_argument("--context-col", default="context", help="inline CREATE TABLE/INSERT context")
    user.add_argument("--db-id-col", default="db_id", help="names a database under --db-dir")
    user.add_argument("--dialect", help="SQL dialect of the file (default: try several)")
    parser.add_argument(
        "--statements",
        default="SELECT",
        help="gold statement kinds to keep, comma-separated (gretel, sql-create-context, csv)",
    )
    parser.add_argument(
        "--strict", action="store_true", help="stop at the first bad record instead of skipping"
    )
    parser.add_argument("--out", required=True, help="output JSON Lines file")


def run(args: argparse.Namespace) -> int:
    from sqlft.data.prepare import prepare_records

    options = {}
    if args.source in ("gretel", "sql-create-context", "csv"):
        options["statements"] = tuple(s.strip().upper() for s in args.statements.split(","))
    if args.source == "csv":
        options.update(
            question_col=args.question_col,
            sql_col=args.sql_col,
            context_col=args.context_col,
            db_id_col=args.db_id_col,
            dialect=args.dialect,
        )
    tokenizer = None
    if args.tokenizer:
        from sqlft.model import load_tokenizer

        tokenizer = load_tokenizer(args.tokenizer)
    try:
        prepared = prepare_records(
            args.source,
            args.path,
            args.split,
            schema_style=args.schema,
            sample_values=args.sample_values,
            value_retrieval=args.value_retrieval,
            tokenizer=tokenizer,
            max_length=args.max_length,
            template=args.template,
            db_dir=args.db_dir,
            tables_json=args.tables,
            strict=args.strict,
            limit=args.limit,
            descriptions=args.descriptions,
            **options,
        )
    except (DataError, FileNotFoundError) as error:
        print(f"sqlft data: {error}", file=sys.stderr)
        return 2
    out = prepared.save(args.out)
    print(prepared.summary())
    print(f"wrote {len(prepared.records)} records to {out}")
    return 0
