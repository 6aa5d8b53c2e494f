"""`sqlft export`: merge an adapter into its base and write a Hugging Face folder or a GGUF file."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the base: hub id, local folder or smollm2-135m")
    parser.add_argument("--adapter", required=True, help="LoRA adapter folder (<run>/phase2/adapter)")
    parser.add_argument("--format", default="merged", choices=("merged", "gguf"))
    parser.add_argument("--out", required=True, help="folder to write (the GGUF goes inside it)")
    parser.add_argument("--outtype", default="f16", choices=("f16", "q8_0", "f32"), help="GGUF weight type")
    parser.add_argument("--dtype", default="fp16", choices=("fp16", "bf16", "fp32"), help="merged weights")
    parser.add_argument(
        "--allow-other-base", action="store_true", help="accept an adapter recorded for another base name"
    )
    parser.add_argument(
        "--push-to-hub", metavar="REPO", help="upload the folder to this Hub repo (needs HF_TOKEN)"
    )
    parser.add_argument("--private", action="store_true", help="create the Hub repo private")


def run(args: argparse.Namespace) -> int:
    from sqlft.data.records import DataError
    from sqlft.export import ExportError, export_model, push_folder

    try:
        written = export_model(
            args.model,
            args.adapter,
            args.out,
            args.format,
            outtype=args.outtype,
            dtype=args.dtype,
            allow_other_base=args.allow_other_base,
        )
    except (DataError, ExportError) as error:
        print(f"sqlft export: {error}", file=sys.stderr)
        return 2
    print(f"wrote {written} (model card: {args.out}/README.md)")
    if args.push_to_hub:
        print(f"uploaded to {push_folder(args.out, args.push_to_hub, private=args.private)}")
    return 0
