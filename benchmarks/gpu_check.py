"""Check the Kaggle GPU path before a session is spent on it; one JSON result per run.

`--simulate` (CPU), for every Kaggle preset: build the real architecture on the meta device from its
shipped config (no hub, no weights) and check the LoRA targets and that `sqlft plan`'s parameter and
adapter counts agree with it, and that training and generation fit a T4; one fp16-autocast,
loss-scaled step of the GPU's trainer (gpu_check_precision.py); train phase 1 for a few
steps under two data-parallel processes (gpu_check_ddp.py: tiny model of the same family, the rest
as the preset says: NF4, fp16 compute, float32 adapters, paged AdamW 8-bit); generate the Kaggle
kernels and push each through the `kaggle` package's own checks (nothing is sent); estimate each
step's hours on 2xT4 and what it writes, against a 12-hour session and 20 GB.
`--cuda` (the default) runs the GPU checks in a fixed budget (gpu_check_cuda.py); without CUDA it exits
2 with one line, unless `--dry-run` runs their orchestration on the CPU with every CUDA call recorded.

    OMP_NUM_THREADS=1 python benchmarks/gpu_check.py --simulate [--preset NAME] [--no-ddp]
    python benchmarks/gpu_check.py --cuda [--budget-s 360] [--out FILE] [--dry-run]
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from torch import nn

# the benchmarks and this repository's sqlft: on the GPU machine sqlft is not installed
sys.path[:0] = [str(Path(__file__).resolve().parent), str(Path(__file__).resolve().parent.parent)]
from common import write_result  # noqa: E402

from sqlft.config import load_preset, shipped_presets  # noqa: E402
from sqlft.kaggle import kaggle_push_requests, make_kernels  # noqa: E402
from sqlft.plan import (  # noqa: E402
    ModelShape,
    estimate,
    generation_plan,
    read_config,
    rl_rows,
    setup_from_preset,
)
from sqlft.session_budget import SESSION_HOURS, T4_BANDWIDTH, T4_FP16_FLOPS  # noqa: E402

COUNT_TOLERANCE = 0.01  # the plan leaves out norms and biases: well under 1% of a decoder's parameters
SPIDER = Path(__file__).resolve().parents[2] / "shared" / "spider"  # Spider dev here, for token counts
SPIDER_TRAIN_EXAMPLES = 8659  # train_spider.json (7,000) + train_others.json (1,659)
GRETEL_TOKENS = 300  # assumed tokens per gretel example: one short CREATE TABLE context, question, SQL
# T4 figures from NVIDIA's T4 datasheet; the utilisations are assumptions until a CUDA run measures them.
# These are the expected ones; the presets' time budgets (sqlft.session_budget) use pessimistic ones.
T4_SOURCE = "https://www.nvidia.com/content/dam/en-zz/Solutions/Data-Center/tesla-t4/t4-tensor-core-datasheet-951643.pdf"
TRAIN_UTILISATION = 0.15  # QLoRA on a T4: NF4 dequantisation and checkpoint recompute keep it far from peak
DECODE_UTILISATION = 0.5  # fraction of bandwidth a decode step reaches reading the NF4 weights
WORKING_GB = 20  # what /kaggle/working keeps


def kaggle_presets() -> list[str]:
    return [name for name in shipped_presets() if name.startswith("kaggle")]


def check_architecture(preset_name: str) -> dict:
    """Build the preset's model on the meta device and compare it with what `sqlft plan` assumes."""
    from transformers import AutoConfig, AutoModelForCausalLM

    from sqlft.lora import target_modules

    preset = load_preset(preset_name)
    config, origin = read_config(preset.model.name, hub=False)
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


def check_kernels(preset_name: str) -> dict:
    """Generate the preset's Kaggle kernels and push each through the `kaggle` package's own checks
    (the upload is only recorded); then check the flags and sources the recipe needs."""
    preset = load_preset(preset_name)
    spider = {d.path.split("/")[3] for d in (preset.phase2.data, preset.eval.data) if d.source == "spider"}
    with tempfile.TemporaryDirectory() as out:
        folders = make_kernels(preset_name, "sqlft-check", out, "sqlft")
        requests = kaggle_push_requests(folders)
    problems, previous = [], None
    for folder, pushed in zip(folders, requests, strict=True):
        name, request = folder.name, pushed.get("request")
        if request is None:
            problems.append(f"{name}: kaggle refuses it: {pushed['error']}")
            continue
        if pushed["said"]:
            problems.append(f"{name}: kaggle warns: {pushed['said']}")
        if (request["enable_gpu"], request["enable_internet"], request["machine_shape"]) != (
            True,
            True,
            "NvidiaTeslaT4",
        ):
            problems.append(f"{name}: needs GPU T4 x2 and internet on, the push asks for {request}")
        datasets = {source.split("/", 1)[1] for source in request["dataset_data_sources"]}
        if not spider <= datasets:
            problems.append(
                f"{name}: the preset reads /kaggle/input/{sorted(spider)}, attached: {sorted(datasets)}"
            )
        if request["kernel_data_sources"] != ([previous] if previous else []):
            problems.append(
                f"{name}: must adopt the step before it ({previous}), gets {request['kernel_data_sources']}"
            )
        previous = request["slug"]
    return {"checked": [folder.name for folder in folders], "problems": problems}


@functools.cache
def spider_tokens_per_example(template: str, schema: str, max_length: int) -> float:
    """Prompt + SQL tokens per Spider dev example with the preset's prompt, by SmolLM2's BPE tokenizer
    (offline; a proxy for the preset model's own tokenizer)."""
    from sqlft.recipe import load_tokenizer, prepare

    preset = load_preset("kaggle-t4x2-qwen2.5-coder-1.5b", {"model.name": "smollm2-135m"})
    preset = replace(
        preset, prompt=replace(preset.prompt, template=template, schema=schema, max_length=max_length)
    )
    tokenizer = load_tokenizer(preset)
    records = prepare(preset, replace(preset.eval.data, path=str(SPIDER)), tokenizer).records
    return sum(len(tokenizer(r["prompt"] + r["completion"])["input_ids"]) for r in records) / len(records)


def estimate_wall_time(preset_name: str) -> dict:
    """Each step's hours on Kaggle's 2xT4 from its tokens and the T4's published peak, and what it writes.

    Training: 6 x parameters FLOPs per token (forward, checkpoint recompute, input gradients; frozen
    weights need no weight gradient), over both GPUs for DDP, one for a model split over two. Each
    step also decodes the dev set once on one GPU, each decode step reading the NF4 weights.
    """
    preset = load_preset(preset_name)
    config, _ = read_config(preset.model.name, hub=False)
    shape = ModelShape.from_config(config)
    p = preset.prompt
    spider_tokens = spider_tokens_per_example(p.template, p.schema, p.max_length)
    dev_examples = 1034
    decode_step_s = shape.total_params() * 0.5 / (T4_BANDWIDTH * DECODE_UTILISATION)
    eval_hours = (
        math.ceil(dev_examples / preset.eval.batch_size) * preset.eval.max_new_tokens * decode_step_s / 3600
    )
    gpus = 2 if preset.model.placement == "ddp" else 1
    steps, problems = {"baseline": {"hours": round(eval_hours, 2)}}, []
    for phase in ("phase1", "phase2"):
        section = getattr(preset, phase)
        examples = section.data.limit or (SPIDER_TRAIN_EXAMPLES if section.data.source == "spider" else 0)
        per_example = spider_tokens if section.data.source == "spider" else GRETEL_TOKENS
        tokens = examples * per_example * section.epochs
        train_hours = 6 * shape.total_params() * tokens / (T4_FP16_FLOPS * TRAIN_UTILISATION * gpus) / 3600
        # each kept checkpoint: fp32 adapter + two 8-bit Adam states (+ the same again written as the adapter)
        adapter_gb = shape.lora_params(preset.model.lora_r or 16, preset.model.lora) * 6 / 1e9
        written_gb = adapter_gb * ((section.save_total_limit or 1) + 1)
        steps[phase] = {
            "examples": examples,
            "tokens": round(tokens),
            "train_hours": round(train_hours, 2),
            "hours": round(train_hours + eval_hours, 2),
            "written_gb": round(written_gb, 3),
        }
        if train_hours + eval_hours > SESSION_HOURS:
            problems.append(
                f"{phase}: about {train_hours + eval_hours:.1f} h, over a {SESSION_HOURS} h session"
            )
        if written_gb > WORKING_GB:
            problems.append(f"{phase}: writes about {written_gb:.0f} GB, over the {WORKING_GB} GB kept")
    if preset.phase3.enabled:
        steps["phase3"] = phase3_wall_time(preset, shape, spider_tokens, decode_step_s, gpus, eval_hours)
        if steps["phase3"]["hours"] > SESSION_HOURS:
            problems.append(
                f"phase3: about {steps['phase3']['hours']:.1f} h, over a {SESSION_HOURS} h session"
            )
    return {
        "steps": steps,
        "gpus_training": gpus,
        "tokens_per_spider_example": round(spider_tokens, 1),
        "assumptions": {
            "source": T4_SOURCE,
            "t4_fp16_flops": T4_FP16_FLOPS,
            "t4_bandwidth_bytes_s": T4_BANDWIDTH,
            "training_utilisation": TRAIN_UTILISATION,
            "decode_bandwidth_utilisation": DECODE_UTILISATION,
            "gretel_tokens_per_example": GRETEL_TOKENS,
            "note": "no T4 QLoRA throughput measured yet: the CUDA mode measures tokens/s to replace these",
        },
        "problems": problems,
    }


def phase3_wall_time(
    preset, shape: ModelShape, prompt_tokens: float, decode_step_s: float, gpus: int, eval_hours: float
) -> dict:
    """Phase 3's hours: per GRPO step, each process generates its generation batch at once
    (max_completion_length decode steps, each reading the NF4 weights) and then trains on those
    completions (6 x parameters FLOPs per prompt + completion token); a time budget caps the total."""
    p = preset.phase3
    rows = rl_rows(preset, gpus)  # completions one process generates and trains on per step
    prompts_per_step = rows * gpus // p.num_generations
    examples = p.data.limit or (SPIDER_TRAIN_EXAMPLES if p.data.source == "spider" else 0)
    steps_needed = math.ceil(examples * p.epochs / prompts_per_step)
    generate_s = p.max_completion_length * decode_step_s
    train_s = 6 * shape.total_params() * rows * (prompt_tokens + p.max_completion_length)
    train_s /= T4_FP16_FLOPS * TRAIN_UTILISATION
    full_hours = steps_needed * (generate_s + train_s) / 3600
    train_hours = min(full_hours, p.max_minutes / 60) if p.max_minutes else full_hours
    adapter_gb = shape.lora_params(preset.model.lora_r or 16, preset.model.lora) * 6 / 1e9
    return {
        "examples": examples,
        "prompts_per_step": prompts_per_step,
        "seconds_per_step": round(generate_s + train_s, 1),
        "generation_share": round(generate_s / (generate_s + train_s), 2),
        "steps_in_budget": min(steps_needed, int(train_hours * 3600 / (generate_s + train_s))),
        "hours_for_all_examples": round(full_hours, 2),
        "train_hours": round(train_hours, 2),
        "hours": round(train_hours + eval_hours, 2),
        "written_gb": round(adapter_gb * ((p.save_total_limit or 1) + 1), 3),
    }


def simulate(presets: list[str], data_parallel: bool = True) -> dict:
    """Every CPU check for each preset; `data_parallel=False` skips the two-process runs (minutes)."""
    from gpu_check_ddp import check_data_parallel
    from gpu_check_precision import check_grpo_precision_chain, check_precision_chain

    result: dict = {"presets": {}}
    for name in presets:
        with tempfile.TemporaryDirectory(prefix="gpu_check_precision-") as out:
            precision = check_precision_chain(name, out)
        checks = {"architecture": check_architecture(name), "precision": precision}
        if load_preset(name).phase3.enabled:
            with tempfile.TemporaryDirectory(prefix="gpu_check_precision_phase3-") as out:
                checks["precision_phase3"] = check_grpo_precision_chain(name, out)
        checks |= {
            "kernels": check_kernels(name),
            "wall_time": estimate_wall_time(name),
        }
        if data_parallel:
            with tempfile.TemporaryDirectory(prefix="gpu_check_ddp-") as run_dir:
                checks["data_parallel"] = check_data_parallel(name, Path(run_dir))
        checks["problems"] = [f"{what}: {p}" for what, check in checks.items() for p in check["problems"]]
        result["presets"][name] = checks
    result["ok"] = not any(p["problems"] for p in result["presets"].values())
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--simulate", action="store_true", help="the CPU checks only (no CUDA needed)")
    parser.add_argument("--cuda", action="store_true", help="the GPU checks (the default)")
    parser.add_argument(
        "--dry-run", action="store_true", help="--cuda's orchestration on a CPU, CUDA calls recorded"
    )
    parser.add_argument("--budget-s", type=float, default=360, help="--cuda: seconds for all checks together")
    parser.add_argument(
        "--out", help="--cuda: the JSON to write (default benchmarks/results/gpu_check_cuda.json)"
    )
    parser.add_argument("--stall", help=argparse.SUPPRESS)  # tests: this check overruns its share
    parser.add_argument("--preset", action="append", help="check only this Kaggle preset (repeatable)")
    parser.add_argument("--no-ddp", action="store_true", help="skip the two-process training runs")
    parser.add_argument("--no-write", action="store_true", help="print the result, write no JSON")
    args = parser.parse_args(argv)
    if not args.simulate:
        if not args.dry_run and not torch.cuda.is_available():
            print(
                "gpu_check: no CUDA device here; run it on a GPU, or pass --dry-run (or --simulate)",
                file=sys.stderr,
            )
            return 2
        from gpu_check_cuda import main as cuda_main

        return cuda_main(args.out, args.budget_s, args.dry_run, args.stall)
    result = simulate(args.preset or kaggle_presets(), data_parallel=not args.no_ddp)
    if args.no_write:
        print(json.dumps(result, indent=1))
    else:
        print(write_result("gpu_check_simulate", result))
    for preset, checks in result["presets"].items():
        print(f"{preset}: {'; '.join(checks['problems']) or 'ok'}")
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
