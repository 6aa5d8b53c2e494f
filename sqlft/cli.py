"""The `sqlft` command. Each subcommand lives in `sqlft/commands/<name>.py` with `add_arguments`
and `run`; this file imports a subcommand's module only when it is the one being run, so that
`sqlft eval` never pays for importing torch."""

from __future__ import annotations

import argparse
import sys
from importlib import import_module

# name -> one-line help; the module sqlft.commands.<name> does the work
COMMANDS = {
    "eval": "score predictions: execution match (Spider rules), exact match, valid SQL, ROUGE",
    "data": "turn a dataset into prompt/completion JSON Lines and report what was kept",
    "predict": "generate SQL for prompt records and write predictions for `sqlft eval`",
    "train": "train one phase of a run directory (what `accelerate launch` runs per GPU)",
    "run": "run the notebook series (baseline, phase 1, phase 2, evaluation) from a preset",
    "ask": "answer a question about an SQLite file: the model's SQL and its first rows",
    "export": "merge an adapter into its base and write a Hugging Face folder or a GGUF file",
    "plan": "estimate GPU memory of a training setup from the model config and a preset (fits a T4?)",
}


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sqlft", description="Fine-tune small LLMs for text-to-SQL.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    chosen = next((a for a in argv if not a.startswith("-")), None)
    for name, help_text in COMMANDS.items():
        sp = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            import_module(f"sqlft.commands.{name.replace('-', '_')}").add_arguments(sp)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser(argv).parse_args(argv)
    module = import_module(f"sqlft.commands.{args.command.replace('-', '_')}")
    return int(module.run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
