"""Check the Kaggle GPU path before a session is spent on it; one JSON result per run.

`--simulate` (CPU): for every Kaggle preset, build the real architecture on the meta device from its
shipped config (no hub, no weights), check the preset's LoRA targets exist and that `sqlft plan`'s
parameter and adapter counts agree with the real model, check training and generation fit a T4, and
validate the Kaggle kernels' metadata. Default mode needs CUDA: without it, exit 2 with one line
(the CUDA runs themselves are not written yet; see README "Before you spend a Kaggle session").
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import write_result  # noqa: E402

from sqlft.config import load_preset, shipped_presets  # noqa: E402
from sqlft.kaggle import KAGGLE_DIR, validate_metadata  # noqa: E402
from sqlft.plan import ModelShape, estimate, generation_plan, read_config, setup_from_preset  # noqa: E402

COUNT_TOLERANCE = 0.01  # the plan leaves out norms and biases: well under 1% of a decoder's parameters


def kaggle_presets() -> list[str]:
    return [name for name in shipped_presets() if name.startswith("kaggle")]


def check_architecture(preset_name: str) -> dict:
    """Build the preset's model on the meta device and compare it with what `sqlft plan` assumes."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from sqlft.lora import target_modules

    preset = load_preset(preset_name)
    config, origin = read_config(preset.model.name)
    shape = ModelShape.from_config(config, origin)
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(AutoConfig.for_model(**config))
    real = sum(p.numel() for p in model.parameters())
    setup = setup_from_preset(preset)
    targets = target_modules(model, setup.lora)
    adapted = [
        m
        for name, m in model.named_modules()
        if isinstance(m, nn.Linear) and name.rsplit(".", 1)[-1] in targets
    ]
    lora_real = sum(setup.lora_rank * (m.in_features + m.out_features) for m in adapted)
    train = estimate(shape, setup, preset.model.name)
    generation = generation_plan(
        shape, setup, preset.eval.batch_size, setup.max_length, preset.eval.max_new_tokens
    )
    problems = []
    if abs(shape.total_params() - real) > COUNT_TOLERANCE * real:
        problems.append(f"plan counts {shape.total_params()} parameters, the model has {real}")
    if shape.lora_params(setup.lora_rank, setup.lora) != lora_real:
        problems.append(
            f"plan counts {shape.lora_params(setup.lora_rank, setup.lora)} adapter weights, "
            f"the model's targets give {lora_real}"
        )
    problems += [
        f"{what}: {plan.verdict}"
        for what, plan in (("training", train), ("generation", generation))
        if not plan.fits
    ]
    return {
        "model": preset.model.name,
        "config": origin,
        "parameters": real,
        "plan_parameters": shape.total_params(),
        "lora_targets": targets,
        "trainable_parameters": lora_real,
        "training_gib_per_gpu": round(train.per_gpu_gib, 2),
        "generation_gib_per_gpu": round(generation.per_gpu_gib, 2),
        "problems": problems,
    }


def check_kernel_metadata() -> dict:
    """Every shipped kernel's metadata against the fields, GPU and internet flags Kaggle needs."""
    checked, problems = [], []
    for path in sorted((KAGGLE_DIR / "metadata").glob("*.json")):
        try:
            validate_metadata(json.loads(path.read_text()), str(path))
            checked.append(path.name)
        except ValueError as error:
            problems.append(str(error))
    return {"checked": checked, "problems": problems}


def simulate(presets: list[str]) -> dict:
    result = {
        "presets": {name: check_architecture(name) for name in presets},
        "kernels": check_kernel_metadata(),
    }
    result["ok"] = not result["kernels"]["problems"] and not any(
        p["problems"] for p in result["presets"].values()
    )
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate", action="store_true", help="the CPU checks only (no CUDA needed)")
    parser.add_argument("--preset", action="append", help="check only this Kaggle preset (repeatable)")
    parser.add_argument("--no-write", action="store_true", help="print the result, write no JSON")
    args = parser.parse_args(argv)
    if not args.simulate and not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device here; run it on a GPU, or pass --simulate for the CPU checks",
            file=sys.stderr,
        )
        return 2
    if not args.simulate:
        print("gpu_check: the CUDA runs are not built yet; pass --simulate", file=sys.stderr)
        return 2
    result = simulate(args.preset or kaggle_presets())
    if args.no_write:
        print(json.dumps(result, indent=1))
    else:
        print(write_result("gpu_check_simulate", result))
    for name, preset in result["presets"].items():
        print(f"{name}: {'; '.join(preset['problems']) or 'ok'}")
    print(f"kernels: {'; '.join(result['kernels']['problems']) or 'ok'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
