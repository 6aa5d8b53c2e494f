"""gpu_check's CUDA checks, one per process: `python gpu_check_steps.py NAME WORK PART BUDGET [--dry-run]`.

Each check returns (verdict, detail): "pass", "fail" or "skipped" (with the reason). In a dry run a
check prepares what it would on the GPU machine (presets, fixture, tiny-model choice: all read from
the repository) and records each CUDA call it would make as "would run" instead of making it.
Heavy modules are imported inside the checks, so the orchestration itself imports in a second.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from pathlib import Path

from gpu_check_env import REPO, emulate_t4, guard_reads, import_audit, install_wheels, probe_triton

SPIDER_SUBSET = REPO / "tests" / "fixtures" / "spider_gpu"  # 3 databases, 36 dev questions
PHASE3_PRESET = "kaggle-t4x2-qwen2.5-coder-1.5b"  # the Kaggle preset whose phase 3 is on
MEMORY_LAYERS = 2  # the memory check's model: that preset's widths and vocabulary, two layers
MEMORY_TOKENS = 512  # per row of the memory check's batch
# measured / planned peak: above 1.10 the plan under-promises by more than its "tight" band (the top
# 10% of the card), so a "fits" preset could run out of memory; below 0.60 it over-promises so much
# that `sqlft plan` would turn away presets that fit (a 15 GiB T4 planned as if it had 9)
MEMORY_TOLERANCE = (0.60, 1.10)
SAME_SQL_FLOOR = 0.5  # greedy decoders on one model: most answers must agree, or one of them is broken
GENERATION_PROMPTS = 16
NEW_TOKENS = 64


class Gpu:
    """Runs CUDA work, or in a dry run records it as "would run" and returns None."""

    def __init__(self, dry_run: bool):
        self.dry_run = dry_run
        self.would_run: list[str] = []

    def __call__(self, what: str, fn, *args, **kwargs):
        if self.dry_run:
            self.would_run.append(what)
            return None
        return fn(*args, **kwargs)


def shipped_config(model: str) -> dict:
    """A Kaggle preset model's config as sqlft ships it (what `sqlft plan` reads offline)."""
    from sqlft.plan import SHIPPED_CONFIGS

    return json.loads((SHIPPED_CONFIGS / f"{model.replace('/', '--')}.json").read_text())


def kaggle_families() -> dict[str, str]:
    """One Kaggle preset per model family (qwen2, phi, mistral, ...): its tiny model stands in for it."""
    from sqlft.config import load_preset, shipped_presets

    families: dict[str, str] = {}
    for name in sorted(shipped_presets()):
        if name.startswith("kaggle"):
            families.setdefault(shipped_config(load_preset(name).model.name)["model_type"], name)
    return families


def check_environment(gpu: Gpu, work: Path) -> tuple[str, dict]:
    """Install the carried wheels, emulate the T4, import everything the checks import."""
    detail = {"wheels": install_wheels(gpu.dry_run)}
    detail["t4"] = gpu("emulate a T4: memory cap, fp16, no flash SDPA", emulate_t4)
    detail["triton"] = gpu("compile and run a Triton kernel (TRL's fused LM head needs one)", probe_triton)
    detail["imports"] = import_audit(gpu.dry_run, work)
    if gpu.dry_run:
        detail["would_run"] = gpu.would_run
    problems = detail["wheels"]["problems"] + detail["imports"]["problems"]
    if (detail["triton"] or "").startswith(("fails", "wrong")):
        problems.append(f"triton {detail['triton']}")
    return ("fail" if problems else "pass"), detail


def check_nf4_load(gpu: Gpu, work: Path) -> tuple[str, dict]:
    """Each family's tiny model in NF4 on CUDA with fp16 compute and sdpa; adapters float32 after the
    trainer is built (TRL casts them to bf16, which a T4's grad scaler refuses)."""
    detail = {}
    for family, preset in kaggle_families().items():
        detail[family] = gpu(f"load tiny-{family} ({preset}) NF4 on cuda:0", _nf4_family, preset, work)
    return _verdict(gpu, detail)


def _nf4_family(preset: str, work: Path) -> dict:
    import bitsandbytes as bnb
    from gpu_check_precision import _built, _tiny_of_family

    from sqlft.testing import CORPUS, chat_prompt
    from sqlft.train import PhaseConfig, build_trainer

    config, model, tokenizer = _tiny_of_family(preset, "cuda")
    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    records = [{"prompt": chat_prompt(tokenizer, q), "completion": s} for q, s in CORPUS[:8]]
    phase = PhaseConfig.from_dict(
        config.phase1, output_dir=str(work / f"nf4-{preset}"), compute_dtype="fp16", max_steps=1
    )
    trainer, _ = build_trainer(model, tokenizer, records, None, phase)
    result = _built(trainer, model)
    devices = sorted({str(p.device) for p in model.parameters()})
    result.update(
        linear4bit=len(layers),
        quant_types=sorted({m.weight.quant_type for m in layers}),
        compute_dtypes=sorted({str(m.compute_dtype).removeprefix("torch.") for m in layers}),
        devices=devices,
        attention=model.config._attn_implementation,
        trainer_fp16=trainer.args.fp16,
        trainer_bf16=trainer.args.bf16,
    )
    wanted = {
        "quant_types": ["nf4"], "compute_dtypes": ["float16"], "devices": ["cuda:0"],
        "adapter_dtypes_after_trainer": ["float32"], "attention": "sdpa", "trainer_fp16": True,
        "trainer_bf16": False,
    }  # fmt: skip
    result["problems"] += [f"{k} is {result[k]}, expected {v}" for k, v in wanted.items() if result[k] != v]
    if not layers:
        result["problems"].append("no bitsandbytes Linear4bit layer: the model was not quantised")
    return result


def check_sft_step(gpu: Gpu, work: Path) -> tuple[str, dict]:
    """Four SFT steps per family under CUDA fp16 autocast, GradScaler("cuda") and the preset's optimizer."""
    from gpu_check_precision import check_precision_chain

    detail = {
        family: gpu(
            f"4 fp16-autocast, GradScaler('cuda') steps of {preset}'s phase 1 on tiny-{family}",
            check_precision_chain,
            preset,
            str(work / f"sft-{preset}"),
            "cuda",
            4,
        )  # fmt: skip
        for family, preset in kaggle_families().items()
    }
    for result in filter(None, detail.values()):
        if "8-bit paged" not in result.get("optimizer", ""):
            result["problems"].append(
                f"optimizer {result.get('optimizer')}, the presets ask paged AdamW 8-bit"
            )
    return _verdict(gpu, detail)


def check_grpo_step(gpu: Gpu, work: Path) -> tuple[str, dict]:
    """A GRPO step of the Kaggle preset with phase 3 on: its group size, batch and completion length."""
    from gpu_check_precision import check_grpo_precision_chain

    from sqlft.config import load_preset

    p = load_preset(PHASE3_PRESET).phase3
    settings = {k: getattr(p, k) for k in ("batch_size", "num_generations", "max_completion_length", "beta")}
    result = gpu(
        f"GRPO step of {PHASE3_PRESET} phase 3 on its tiny family model ({settings})",
        check_grpo_precision_chain, PHASE3_PRESET, str(work / "grpo"), "cuda",
    )  # fmt: skip
    return _verdict(gpu, {"preset": PHASE3_PRESET, "settings": settings, "step": result})


def check_smoke_run(gpu: Gpu, work: Path) -> tuple[str, dict]:
    """The smoke preset end to end on GPU 0 in fp16: `sqlft run` where papermill is installed, else
    the steps its notebooks call (sqlft.recipe), in order, with the notebooks' own cells left out."""
    import importlib.util

    # the Kaggle presets' evaluation decodes schema-constrained and best-of: both run on CUDA here
    overrides = {"model.placement": "single", "model.compute_dtype": "fp16", "eval.schema_constrained": True}
    notebooks = all(importlib.util.find_spec(m) for m in ("papermill", "jupytext", "ipykernel"))
    how = "sqlft run (papermill)" if notebooks else "sqlft.recipe, as the notebooks call it (no papermill)"
    run = _sqlft_run if notebooks else _recipe_run
    detail = {"overrides": overrides, "how": how}
    detail["run"] = gpu(f"smoke preset, {overrides}, via {how}", run, overrides, work / "smoke")
    return _verdict(gpu, detail)


def _sqlft_run(overrides: dict, out: Path) -> dict:
    import subprocess

    command = [sys.executable, "-m", "sqlft.cli", "run", "--preset", "smoke", "--out", str(out)]
    command += [a for k, v in overrides.items() for a in ("-p", f"{k}={json.dumps(v)}")]
    done = subprocess.run(command, capture_output=True, text=True)
    tail = (done.stdout + done.stderr)[-1500:]
    return {
        "exit_code": done.returncode,
        "problems": [f"sqlft run failed:\n{tail}"] if done.returncode else [],
    }


def _recipe_run(overrides: dict, out: Path) -> dict:
    import torch

    from sqlft import recipe

    config, run = recipe.setup("smoke", overrides, str(out))
    tokenizer = recipe.load_tokenizer(config)
    dev = recipe.prepare(config, config.eval.data, tokenizer, out=run.step_dir("baseline") / "dev.jsonl")
    model, tokenizer = recipe.load_model(config)
    where = sorted({str(p.device) for p in model.parameters()})
    reports = {"baseline": recipe.predict_and_score(config, model, tokenizer, dev, run, "baseline")}
    run.mark_done("baseline", exec_accuracy=reports["baseline"]["summary"]["exec_accuracy"])
    steps = {}
    for phase in recipe.PHASES:
        if phase == "phase3" and not recipe.phase3_enabled(config, run):
            continue
        del model
        torch.cuda.empty_cache()
        _, dev = recipe.prepare_phase(config, phase, run, tokenizer)
        model, tokenizer, trained = recipe.train_phase(config, phase, run)
        reports[phase] = recipe.predict_and_score(config, model, tokenizer, dev, run, phase)
        run.mark_done(phase, exec_accuracy=reports[phase]["summary"]["exec_accuracy"])
        steps[phase] = trained.global_step
    summary = {
        s: {"exec_accuracy": r["summary"]["exec_accuracy"], "steps": steps.get(s)} for s, r in reports.items()
    }
    problems = [f"the model sat on {where}, not cuda:0"] if where != ["cuda:0"] else []
    problems += [f"{p}: no adapter saved" for p in recipe.PHASES if not run.adapter(p).is_dir()]
    if config.eval.schema_constrained:
        problems += [
            f"{s}: no schema-constrained report"
            for s in reports
            if not run.report(s, constrained=True).is_file()
        ]
    return {"devices": where, "steps": summary, "problems": problems}


def check_memory_vs_plan(gpu: Gpu, work: Path) -> tuple[str, dict]:
    """Peak GPU memory of one training step against `sqlft plan`, on a model with the phase-3 preset's
    widths and vocabulary but two layers (random weights), at its batch and MEMORY_TOKENS per row."""
    from dataclasses import replace

    from sqlft.config import load_preset
    from sqlft.plan import ModelShape, estimate, setup_from_preset

    preset = load_preset(PHASE3_PRESET, {"model.placement": "single"})
    config = {**shipped_config(preset.model.name), "num_hidden_layers": MEMORY_LAYERS}
    setup = replace(setup_from_preset(preset, "phase1", gpus=1), max_length=MEMORY_TOKENS)
    plan = estimate(ModelShape.from_config(config), setup, f"{preset.model.name} ({MEMORY_LAYERS} layers)")
    held = {c.name: round(c.gib, 3) for c in plan.components}
    # the CUDA context is not in torch's allocated memory, which is what the check measures
    planned = plan.total_gib - held.pop("CUDA overhead")
    detail = {"setup": vars(setup), "plan_gib": held, "plan_without_overhead_gib": round(planned, 3)}
    measured = gpu(
        f"one training step at {setup.batch_size} x {MEMORY_TOKENS} tokens", _peak, preset, config, work
    )
    if measured is None:
        return "dry-run", {**detail, "would_run": gpu.would_run}
    ratio = measured["peak_gib"] / planned
    # TRL's SFTTrainer computes log-probs in chunks (trl.trainer.utils.add_fused_lm_head), never the full
    # logits the plan counts: this second ratio says how much of any gap that component explains
    without_logits = planned - held["logits and loss"]
    detail.update(measured, ratio=round(ratio, 3), tolerance=MEMORY_TOLERANCE)
    detail["ratio_without_plan_logits"] = round(measured["peak_gib"] / without_logits, 3)
    low, high = MEMORY_TOLERANCE
    return ("pass" if low <= ratio <= high and not measured["problems"] else "fail"), detail


def _peak(preset, config: dict, work: Path) -> dict:
    """Build the model (random weights, fp16) into `work`, load it as the preset does, one step."""
    import torch
    from gpu_check_precision import _built, _scaled_step
    from transformers import AutoConfig, AutoModelForCausalLM

    from sqlft.lora import add_lora
    from sqlft.model import load_model_and_tokenizer
    from sqlft.testing import CORPUS, build_tokenizer, chat_prompt
    from sqlft.train import PhaseConfig, build_trainer

    folder, tokenizer = work / "memory-model", build_tokenizer()
    ids = {
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": None,
    }
    random = AutoModelForCausalLM.from_config(AutoConfig.for_model(**{**config, **ids}), dtype=torch.float16)
    random.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    del random
    model, tokenizer = load_model_and_tokenizer(str(folder), "nf4", compute_dtype="fp16", device_map={"": 0})
    m = preset.model
    model = add_lora(model, m.lora, r=m.lora_r, lora_alpha=m.lora_alpha, seed=0)
    records = [{"prompt": chat_prompt(tokenizer, q), "completion": s} for q, s in CORPUS[:8]]
    phase = PhaseConfig.from_dict(
        preset.phase1, output_dir=str(work / "memory"), compute_dtype="fp16", max_steps=1
    )
    trainer, _ = build_trainer(model, tokenizer, records, None, phase)
    rows = preset.phase1.batch_size
    tokens = torch.randint(
        4, len(tokenizer), (rows, MEMORY_TOKENS), generator=torch.Generator().manual_seed(0)
    )
    batch = {"input_ids": tokens, "attention_mask": torch.ones_like(tokens), "labels": tokens.clone()}
    result = _built(trainer, model)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    before = torch.cuda.memory_allocated()
    _scaled_step(trainer, model, batch, preset.phase1.gradient_checkpointing, result, "cuda", 1)
    torch.cuda.synchronize()
    gib = 2**30
    result.update(
        peak_gib=round(torch.cuda.max_memory_allocated() / gib, 3),
        before_step_gib=round(before / gib, 3),
        reserved_gib=round(torch.cuda.max_memory_reserved() / gib, 3),
        labels="every token (the plan's assumption: logits over the whole row)",
    )
    result["problems"] = [p for p in result["problems"] if "skipped all" not in p]  # memory, not numerics
    return result


def check_generation_speed(gpu: Gpu, work: Path) -> tuple[str, dict]:
    """New tokens/s of sqlft's generator and of `model.generate`, batch 1 and 16, greedy, on Spider
    prompts of the repository's subset, with the smoke preset's warm tiny model in NF4 on GPU 0."""
    if not (SPIDER_SUBSET / "dev.json").is_file():
        return "skipped", {"reason": f"{SPIDER_SUBSET} is missing: no Spider prompts to generate for"}
    from sqlft.config import load_preset

    preset = load_preset("smoke")
    detail = {"model": preset.model.name, "prompts": GENERATION_PROMPTS, "new_tokens": NEW_TOKENS}
    rows = gpu("generate_sql vs model.generate, batch 1 and 16", _speeds, preset)
    if rows is None:
        return "dry-run", {**detail, "would_run": gpu.would_run}
    detail["rows"] = rows
    bad = [r for r in rows if not r["sqlft_tokens"] or r["same_sql"] < SAME_SQL_FLOOR]
    return ("fail" if bad else "pass"), detail


def _speeds(preset) -> list[dict]:
    import torch
    from bench_generate import hf_generate

    from sqlft.data.prepare import prepare_records
    from sqlft.generate import generate_sql
    from sqlft.model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(
        preset.model.name, "nf4", compute_dtype="fp16", device_map={"": 0}
    )
    p = preset.prompt
    records = prepare_records(
        "spider", SPIDER_SUBSET, "dev", schema_style=p.schema, template=p.template, tokenizer=tokenizer
    ).records
    prompts = [r["prompt"] for r in records[:GENERATION_PROMPTS]]
    generate_sql(model, tokenizer, prompts[:2], batch_size=2, max_new_tokens=8, progress=False)  # warm-up
    rows = []
    for batch in (1, 16):
        torch.cuda.synchronize()
        started = time.monotonic()
        ours = generate_sql(
            model, tokenizer, prompts, batch_size=batch, max_new_tokens=NEW_TOKENS, progress=False
        )
        torch.cuda.synchronize()
        ours_s, started = time.monotonic() - started, time.monotonic()
        theirs, their_tokens = hf_generate(model, tokenizer, prompts, batch, NEW_TOKENS)
        torch.cuda.synchronize()
        theirs_s = time.monotonic() - started
        tokens = sum(g.num_tokens for g in ours)
        rows.append(
            {
                "batch": batch,
                "sqlft_tokens": tokens,
                "sqlft_tokens_s": round(tokens / ours_s, 1),
                "generate_tokens_s": round(their_tokens / theirs_s, 1),
                "speedup": round((tokens / ours_s) / max(their_tokens / theirs_s, 1e-9), 2),
                "same_sql": round(
                    sum(g.sql == t for g, t in zip(ours, theirs, strict=True)) / len(prompts), 3
                ),
            }
        )
    return rows


def check_data_parallel(gpu: Gpu, work: Path, budget_s: float) -> tuple[str, dict]:
    """Two processes with NCCL, as the DDP Kaggle presets run, on two GPUs; on one GPU it is skipped:
    NCCL refuses two ranks on one device, and gloo on one GPU would prove nothing about NCCL."""
    gpus = gpu("count the GPUs", _gpu_count)
    if gpus is not None and gpus < 2:
        return "skipped", {"reason": f"{gpus} GPU here: NCCL data parallel needs one GPU per process"}
    from gpu_check_ddp import check_data_parallel as two_processes

    preset = PHASE3_PRESET  # placement ddp, the family of the smallest Kaggle model
    result = gpu(
        f"torchrun 2 NCCL processes, {preset} phase 1 on its tiny family model",
        two_processes, preset, work / "ddp", max(budget_s - 10, 5), True,
    )  # fmt: skip
    if result is not None and any(r.get("backend") != "nccl" for r in result.get("ranks", [])):
        result["problems"].append(f"backend {[r.get('backend') for r in result['ranks']]}, not NCCL")
    return _verdict(gpu, {"preset": preset, "run": result})


def _gpu_count() -> int:
    import torch

    return torch.cuda.device_count()


def _verdict(gpu: Gpu, detail: dict) -> tuple[str, dict]:
    """In a dry run "dry-run" (with what would run); else "fail" if any part names a problem."""
    if gpu.dry_run:
        return "dry-run", {**detail, "would_run": gpu.would_run}
    problems = [p for part in _parts(detail) for p in part.get("problems", [])]
    return ("fail" if problems else "pass"), detail


def _parts(detail: dict):
    for value in detail.values():
        if isinstance(value, dict):
            yield value


CHECKS = {
    "environment": check_environment,
    "nf4_load": check_nf4_load,
    "sft_step": check_sft_step,
    "grpo_step": check_grpo_step,
    "smoke_run": check_smoke_run,
    "memory_vs_plan": check_memory_vs_plan,
    "generation_speed": check_generation_speed,
    "data_parallel": check_data_parallel,
}


def main(name: str, work: Path, part: Path, dry_run: bool, budget_s: float, stall: bool) -> None:
    """Run one check in this process and write its verdict and detail (and any read outside) to `part`."""
    outside = guard_reads(work)
    gpu = Gpu(dry_run)
    if stall:  # tests: a check that overruns its share
        time.sleep(3600)
    try:
        if name != "environment" and not dry_run:
            emulate_t4()
        check = CHECKS[name]
        verdict, detail = check(gpu, work, budget_s) if name == "data_parallel" else check(gpu, work)
    except Exception:  # a check that raises fails; the run goes on with the next one
        verdict, detail = "fail", {"error": traceback.format_exc()[-3000:]}
    if outside:  # a dry run must read nothing else; on the GPU machine it is recorded only
        verdict = "fail" if dry_run else verdict
        detail["read_outside_repository"] = outside
    part.write_text(json.dumps({"verdict": verdict, "detail": detail}, indent=1, default=str))


if __name__ == "__main__":
    name, work, part, budget = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3]), float(sys.argv[4])
    main(name, work, part, "--dry-run" in sys.argv, budget, "--stall" in sys.argv)
