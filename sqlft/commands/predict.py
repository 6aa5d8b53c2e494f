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
    parser.add_argument("--data", required=True, help="JSON Lines with prompt, sql and db_id (or context)")
    parser.add_argument("--out", required=True, help="prediction JSON Lines to write")
    parser.add_argument("--batch-size", type=int, default=16, help="rows decoded together")
    parser.add_argument("--max-new-tokens", type=int, default=256)
    parser.add_argument("--num-samples", type=int, default=1, help="N > 1 samples N answers per prompt")
    parser.add_argument("--temperature", type=float, default=0.7, help="sampling temperature (N > 1)")
    parser.add_argument("--top-p", type=float, default=0.95, help="nucleus sampling mass (N > 1)")
    parser.add_argument("--seed", type=int, default=0, help="sampling seed (N > 1)")
    parser.add_argument("--limit", type=int, help="predict only the first N records")


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


def load_for_inference(name_or_path: str, adapter: str | None, quantization: str | None):
    """Model and tokenizer ready to generate: adapter attached, and merged when the base allows."""
    from sqlft.generate import merge_adapter
    from sqlft.model import load_model_and_tokenizer

    if adapter and not Path(adapter, "adapter_config.json").is_file():
        raise DataError(
            f"{adapter}: no adapter_config.json. Fix: point --adapter at the folder where training "
            "saved the LoRA adapter"
        )
    model, tokenizer = load_model_and_tokenizer(name_or_path, quantization=quantization)
    if adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, adapter)
    return merge_adapter(model), tokenizer


def run(args: argparse.Namespace) -> int:
    from sqlft.generate import predict_records

    try:
        records = read_records(args.data, args.limit)
        model, tokenizer = load_for_inference(args.model, args.adapter, args.quantization)
    except DataError as error:
        print(f"sqlft predict: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # what from_pretrained raises for a missing or unreadable model
        print(f"sqlft predict: cannot load --model {args.model}: {error}", file=sys.stderr)
        return 2
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
    )
    out = write_jsonl(predictions, args.out)
    empty = sum(not p["pred"] for p in predictions)
    print(f"wrote {len(predictions)} predictions to {out} ({empty} with no SQL found)")
    return 0
