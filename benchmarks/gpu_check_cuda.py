"""The CUDA half of gpu_check: what only a GPU shows, on models that need no download.

1. The smoke preset end to end through `sqlft run`.
2. A T4-emulating run through `sqlft run`: SmolLM2-135M (embedded), NF4 on CUDA, fp16 compute forced
   (no bf16), paged AdamW 8-bit, gradient checkpointing.
3. Peak GPU memory per training step of that setup against `sqlft plan`'s estimate for it.
4. sqlft's generator against `model.generate` at batch 1 and 16 (greedy, fp16, Spider dev prompts).
Not run yet: no GPU was available where it was written (see README "Before you spend a Kaggle session").
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

T4_EMULATION = {
    "model.name": "smollm2-135m",
    "model.quantization": "nf4",
    "model.compute_dtype": "fp16",
    "model.placement": "single",
    **{f"{phase}.optimizer": "paged_adamw_8bit" for phase in ("phase1", "phase2")},
    **{f"{phase}.gradient_checkpointing": True for phase in ("phase1", "phase2")},
}
GENERATION_PROMPTS = 32
NEW_TOKENS = 128


def sqlft_run(preset: str, overrides: dict, out: Path) -> dict:
    """`sqlft run` in a child process; its exit code, seconds and the end of its output."""
    import json

    command = [sys.executable, "-m", "sqlft.cli", "run", "--preset", preset, "--out", str(out)]
    for key, value in overrides.items():
        command += ["-p", f"{key}={json.dumps(value)}"]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    return {
        "command": " ".join(command[1:]),
        "exit_code": done.returncode,
        "seconds": round(time.monotonic() - started, 1),
        "log_tail": (done.stdout + done.stderr)[-2000:] if done.returncode else "",
    }


def peak_memory_vs_plan(run_dir: Path) -> dict:
    """Train the T4-emulating phase 1 here, reading the peak allocated GPU memory of every step."""
    from gpu_check_ddp import prepared_run
    from transformers import TrainerCallback

    from sqlft.plan import ModelShape, estimate, setup_from_preset
    from sqlft.recipe import train_phase

    peaks: list[float] = []

    class PeakMemory(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            torch.cuda.reset_peak_memory_stats()

        def on_step_end(self, args, state, control, **kwargs):
            peaks.append(torch.cuda.max_memory_allocated() / 2**30)

    config, run = prepared_run("smoke", T4_EMULATION, run_dir)
    model, _, _ = train_phase(config, "phase1", run, callbacks=[PeakMemory()])
    shape = ModelShape.from_config(model.config.to_dict(), "the loaded model")
    planned = estimate(shape, setup_from_preset(config, "phase1", gpus=1), config.model.name).per_gpu_gib
    measured = max(peaks)
    return {
        "peak_gib_per_step": [round(p, 3) for p in peaks],
        "plan_gib": round(planned, 3),
        "problems": [f"peak {measured:.2f} GiB exceeds the plan's {planned:.2f} GiB"]
        if measured > planned
        else [],
    }


def generation_speed() -> dict:
    """New tokens per second of sqlft's generator and of `model.generate`, batch 1 and 16, and agreement."""
    from bench_generate import hf_generate, spider_prompts

    from sqlft.generate import generate_sql
    from sqlft.model import load_model_and_tokenizer

    model, tokenizer = load_model_and_tokenizer(
        "smollm2-135m", quantization=None, compute_dtype=torch.float16
    )
    prompts = spider_prompts(tokenizer, dbs=2, per_db=GENERATION_PROMPTS // 2)
    rows = []
    for batch in (1, 16):
        torch.cuda.synchronize()
        started = time.monotonic()
        ours = generate_sql(
            model, tokenizer, prompts, batch_size=batch, max_new_tokens=NEW_TOKENS, progress=False
        )
        torch.cuda.synchronize()
        ours_s = time.monotonic() - started
        started = time.monotonic()
        theirs, their_tokens = hf_generate(model, tokenizer, prompts, batch, NEW_TOKENS)
        torch.cuda.synchronize()
        theirs_s = time.monotonic() - started
        rows.append(
            {
                "batch": batch,
                "sqlft_tokens_s": round(sum(g.num_tokens for g in ours) / ours_s, 1),
                "generate_tokens_s": round(their_tokens / theirs_s, 1),
                "same_sql": round(
                    sum(g.sql == t for g, t in zip(ours, theirs, strict=True)) / len(prompts), 3
                ),
            }
        )
    return {"prompts": len(prompts), "new_tokens": NEW_TOKENS, "rows": rows, "problems": []}


def cuda_checks() -> dict:
    """Every CUDA check; each one's problems, and the device it ran on."""
    with tempfile.TemporaryDirectory(prefix="gpu_check_cuda-") as tmp:
        root = Path(tmp)
        runs = {
            "smoke": sqlft_run("smoke", {}, root / "smoke"),
            "t4_emulation": sqlft_run("smoke", T4_EMULATION, root / "t4"),
        }
        memory = peak_memory_vs_plan(root / "memory")
    result = {
        "device": torch.cuda.get_device_name(0),
        "runs": runs,
        "memory": memory,
        "generation": generation_speed(),
    }
    result["problems"] = [
        *(f"sqlft run {name} failed (exit {r['exit_code']})" for name, r in runs.items() if r["exit_code"]),
        *memory["problems"],
        *result["generation"]["problems"],
    ]
    return result
