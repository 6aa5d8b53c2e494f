"""`sqlft plan`: will this model and preset fit a T4? A memory table from the model's config alone."""

from __future__ import annotations

import argparse
import json
import sys


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--model", help="hub id, local folder, config.json or smollm2-135m (default: the preset's)"
    )
    parser.add_argument(
        "--preset", help="preset name or YAML path; its model section and phase set the defaults"
    )
    parser.add_argument(
        "--phase",
        default="phase1",
        choices=["phase1", "phase2", "phase3"],
        help="preset phase to plan (phase3: GRPO, generation and step memory)",
    )
    parser.add_argument("--quantization", choices=["nf4", "int8", "none"])
    parser.add_argument("--lora", choices=["attention", "all-linear", "high-rank"], help="LoRA preset")
    parser.add_argument("--lora-rank", type=int)
    parser.add_argument("--max-length", type=int, help="tokens per sequence")
    parser.add_argument("--batch-size", type=int, help="sequences per device step")
    parser.add_argument("--gradient-checkpointing", action=argparse.BooleanOptionalAction, default=None)
    parser.add_argument("--optimizer", choices=["paged_adamw_8bit", "adamw_8bit", "adamw_torch"])
    parser.add_argument("--placement", choices=["single", "split", "ddp"])
    parser.add_argument("--gpus", type=int, help="GPUs for split/ddp placement (default 2)")
    parser.add_argument("--gpu-memory", type=float, help="GiB per GPU (default 14.5: a T4)")
    parser.add_argument("--eval-batch", type=int, help="prompts generated at once (default: the preset's)")
    parser.add_argument("--new-tokens", type=int, help="tokens generated per prompt (default: the preset's)")
    parser.add_argument("--json", action="store_true", help="print the plan as JSON instead of a table")


def run(args: argparse.Namespace) -> int:
    from sqlft.plan import (
        ModelShape,
        Setup,
        estimate,
        generation_plan,
        read_config,
        rl_plan,
        rl_rows,
        setup_from_preset,
    )

    model = args.model
    eval_batch, new_tokens = args.eval_batch or 16, args.new_tokens or 256
    rl = None  # phase 3: (completions generated at once, completion tokens)
    if args.phase == "phase3" and not args.preset:
        print("sqlft plan: --phase phase3 needs a --preset (its group size and lengths)", file=sys.stderr)
        return 2
    try:
        if args.preset:
            from sqlft.config import load_preset

            preset = load_preset(args.preset)
            setup = setup_from_preset(preset, args.phase, gpus=args.gpus or 2)
            model = model or preset.model.name
            eval_batch = args.eval_batch or preset.eval.batch_size
            new_tokens = args.new_tokens or preset.eval.max_new_tokens
            if args.phase == "phase3":
                rl = (rl_rows(preset, args.gpus or 2), preset.phase3.max_completion_length)
        else:
            setup = Setup()
        if not model:
            print("sqlft plan: give --model (or a --preset that names one)", file=sys.stderr)
            return 2
        overrides = {
            "quantization": args.quantization,
            "lora": args.lora,
            "lora_rank": args.lora_rank,
            "max_length": args.max_length,
            "batch_size": args.batch_size,
            "gradient_checkpointing": args.gradient_checkpointing,
            "optimizer": args.optimizer,
            "placement": args.placement,
            "gpus": args.gpus,
            "gpu_gib": args.gpu_memory,
        }
        for key, value in overrides.items():
            if value is not None:
                setattr(setup, key, None if value == "none" else value)
        if setup.placement in ("split", "ddp") and args.gpus is None and setup.gpus < 2:
            setup.gpus = 2
        config, origin = read_config(model)
        shape = ModelShape.from_config(config, origin)
        if rl:  # prompts are at most max_length tokens; completions add max_completion_length
            plan = rl_plan(shape, setup, rl[0], setup.max_length, rl[1], model)
        else:
            plan = estimate(shape, setup, model)
        generation = generation_plan(shape, setup, eval_batch, setup.max_length, new_tokens, model)
    except (OSError, ValueError) as error:
        print(f"sqlft plan: {error}", file=sys.stderr)
        return 2
    kernels = None  # a preset's kernels, each against one Kaggle session
    if args.preset:
        from dataclasses import asdict

        from sqlft.session_budget import budget_table, kernel_budgets

        rows = kernel_budgets(preset, shape, args.gpus or 2)
        kernels = [asdict(row) | {"total": row.total, "fits": row.fits} for row in rows]
    if args.json:
        extra = {"kernels_minutes": kernels} if kernels is not None else {}
        print(
            json.dumps(
                {**plan.to_dict(), "config": origin, "generation": generation.to_dict(), **extra}, indent=1
            )
        )
    else:
        what = "phase 3 (GRPO: generation, then the step)" if rl else "training"
        print(f"config: {origin}\n\n{what}\n{plan.table()}\n\ngeneration (evaluation)\n{generation.table()}")
        if kernels is not None:
            print(f"\nKaggle kernels, hours per session\n{budget_table(preset, shape, args.gpus or 2)}")
    return 0
