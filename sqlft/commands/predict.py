"""`sqlft predict`: generate SQL for prompt records and write the prediction file `sqlft eval` reads."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from sqlft.data.records import DataError
from sqlft.jsonl import jsonl_lines, write_jsonl

QUANTIZATION_CHOICES = ("none", "nf4", "int8")  # the loader reads "none" as no quantisation


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="hub id, local folder, GGUF file or smollm2-135m")
    parser.add_argument("--adapter", help="LoRA adapter folder; merged into the model unless it is quantised")
    parser.add_argument("--quantization", default="none", choices=QUANTIZATION_CHOICES)
    parser.add_argument(
        "--allow-other-base",
        action="store_true",
        help="accept an adapter whose recorded base has another name",
    )
    parser.add_argument("--data", required=True, help="JSON Lines with prompt, sql and db_id (or context)")
    parser.add_argument("--out", required=True, help="prediction JSON Lines to write")
    parser.add_argument("--batch-size", type=int, default=16, help="rows decoded together")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--num-samples", type=int, default=1, help="N > 1 samples N answers per prompt")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (N > 1)")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (N > 1)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (N > 1)")
    parser.add_argument("--limit", type=int, help="predict only the first N records")
    parser.add_argument(
        "--schema-constrained",
        action="store_true",
        help="name only tables and columns of each record's schema (inline context or its database)",
    )
    parser.add_argument(
        "--db-dir",
        help="folder of <db_id>/<db_id>.sqlite for --schema-constrained (default: what sqlft data recorded)",
    )


def read_records(path: str | Path, limit: int | None = None) -> list[dict[str, Any]]:
    """Prompt records from JSON Lines; a bad line raises a DataError naming the file, line and fix."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file. Fix: write it with `sqlft data --out {path}`")
    records = []
    for number, record, problem in jsonl_lines(path):
        if limit is not None and len(records) >= limit:
            break
        where = f"{path}:{number}"
        if problem:
            raise DataError(f"{where}: {problem}. Fix: one JSON object per line")
        for key in ("prompt", "sql"):
            if not isinstance(record.get(key), str) or not record[key].strip():
                raise DataError(
                    f"{where}: field {key!r} missing or empty. Fix: write the file with `sqlft data`, "
                    "which gives every record a prompt and its gold sql"
                )
        if not record.get("db_id") and not record.get("context"):
            raise DataError(f"{where}: neither 'db_id' nor 'context'. Fix: give the record its schema source")
        records.append(record)
    if not records:
        raise DataError(f"{path}: no records. Fix: point --data at a file written by `sqlft data`")
    return records


def constrained_schemas(args: argparse.Namespace, records: list[dict[str, Any]]) -> list:
    """Each record's Schema for --schema-constrained; the database folder defaults to the one
    `sqlft data` wrote into `<data>.meta.json`."""
    import json

    from sqlft.constrained import record_schemas

    db_dir = args.db_dir
    meta = Path(args.data).with_name(Path(args.data).stem + ".meta.json")
    if db_dir is None and meta.is_file():
        db_dir = json.loads(meta.read_text(encoding="utf-8")).get("db_dir")
    return record_schemas(records, db_dir)


def chat_suffix(tokenizer: Any) -> str | None:
    """What the chat template writes after a user turn (e.g. `<|im_end|>\n<|im_start|>assistant\n`)."""
    if not getattr(tokenizer, "chat_template", None):
        return None
    marker = "\x00sqlft\x00"
    text = tokenizer.apply_chat_template(
        [{"role": "user", "content": marker}], tokenize=False, add_generation_prompt=True
    )
    return text[text.index(marker) + len(marker) :]


def apply_missing_chat_template(records: list[dict[str, Any]], tokenizer: Any) -> int:
    """Wrap prompts written without a chat template (`sqlft data` without --tokenizer) in the model's
    own, as training would have; returns how many were wrapped. A chat model fed raw text rambles."""
    suffix = chat_suffix(tokenizer)
    if not suffix:
        return 0
    wrapped = 0
    for record in records:
        if not record["prompt"].endswith(suffix):
            messages = [{"role": "user", "content": record["prompt"].strip()}]
            record["prompt"] = tokenizer.apply_chat_template(
                messages, tokenize=False, add_generation_prompt=True
            )
            wrapped += 1
    return wrapped


def run(args: argparse.Namespace) -> int:
    from sqlft.generate import predict_records
    from sqlft.inference import load_for_inference

    try:
        records = read_records(args.data, args.limit)
        schemas = constrained_schemas(args, records) if args.schema_constrained else None
        model, tokenizer = load_for_inference(
            args.model, args.adapter, args.quantization, allow_other_base=args.allow_other_base
        )
    except DataError as error:
        print(f"sqlft predict: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # what from_pretrained raises for a missing or unreadable model
        print(f"sqlft predict: cannot load --model {args.model}: {error}", file=sys.stderr)
        return 2
    wrapped = apply_missing_chat_template(records, tokenizer)
    if wrapped:
        print(
            f"{wrapped} of {len(records)} prompts had no chat template (written by `sqlft data` without "
            "--tokenizer): applied the model's own"
        )
    sampling = args.num_samples > 1
    predictions = predict_records(
        model,
        tokenizer,
        records,
        batch_size=args.batch_size,
        max_new_tokens=args.max_new_tokens,
        do_sample=sampling,
        num_return_sequences=args.num_samples,
        temperature=args.temperature,
        top_p=args.top_p,
        seed=args.seed if sampling else None,
        schemas=schemas,
    )
    out = write_jsonl(predictions, args.out)
    empty = sum(not p["pred"] for p in predictions)
    print(f"wrote {len(predictions)} predictions to {out} ({empty} with no SQL found)")
    return 0
