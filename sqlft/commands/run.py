"""`sqlft run`: execute the notebook series from a preset into a run directory."""

from __future__ import annotations

import argparse
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--preset", required=True, help="shipped preset name (demo, smoke, kaggle-...) or a YAML path"
    )
    parser.add_argument(
        "-p",
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a preset value, e.g. -p phase1.learning_rate=2e-4 (repeatable)",
    )
    parser.add_argument("--out", help="run directory (default: runs/<preset name>)")
    parser.add_argument("--force", action="store_true", help="redo steps that are already done")
    parser.add_argument("--steps", help="comma-separated subset: baseline,phase1,phase2,phase3,evaluation")
    parser.add_argument("--notebooks", help="folder of the .py notebooks (default: the repository's)")


def run(args: argparse.Namespace) -> int:
    import shlex

    from sqlft.config import PresetError, parse_override
    from sqlft.pipeline import PipelineError, run_pipeline

    try:
        overrides = dict(parse_override(p) for p in args.param)
        run_dir = run_pipeline(
            args.preset,
            overrides,
            args.out,
            force=args.force,
            steps=args.steps.split(",") if args.steps else None,
            notebooks=args.notebooks,
            resume_command=shlex.join(["sqlft", *sys.argv[1:]]),
        )
    except (PresetError, PipelineError) as error:
        print(f"sqlft run: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:  # between notebooks; one that runs reports it as its own failure
        print("sqlft run: interrupted (Ctrl-C); finished steps are kept. Resume: rerun it", file=sys.stderr)
        return 130
    print(f"run directory: {run_dir.root}  (metrics: {run_dir.metrics})")
    return 0
