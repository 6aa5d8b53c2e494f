"""`sqlft train`: one training phase of a run, as the notebooks do it; `accelerate launch` runs
it once per GPU for data-parallel presets."""

from __future__ import annotations

import argparse


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--preset", required=True, help="preset name or YAML path")
    parser.add_argument("--phase", required=True, choices=["phase1", "phase2", "phase3"])
    parser.add_argument("--run-dir", required=True, help="run directory; the phase's data step must have run")
    parser.add_argument("-p", "--param", action="append", default=[], metavar="KEY=VALUE")


def run(args: argparse.Namespace) -> int:
    from sqlft.config import parse_override
    from sqlft.recipe import setup, train_phase

    config, run_dir = setup(args.preset, dict(parse_override(p) for p in args.param), args.run_dir)
    _, _, result = train_phase(config, args.phase, run_dir)
    print(f"{args.phase}: adapter in {result.adapter_dir}")
    return 0
