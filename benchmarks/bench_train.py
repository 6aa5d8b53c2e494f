"""Training throughput and padding waste on CPU, SmolLM2-135M on Spider dev prompts.

1. Padding share: the fraction of processed tokens that are padding, over one epoch of the real
   training dataloader (`sqlft.train.build_trainer`), with random batches and with the
   group-by-length sampler sqlft uses. Goal: under 5%.
2. Per LoRA preset, a few optimizer steps in a fresh subprocess (so peak memory is its own):
   non-padding tokens/s (first step excluded as warm-up) and peak resident memory; one preset
   is also timed with TRL's fused LM-head loss, which sqlft uses on GPU but not on CPU.

    OMP_NUM_THREADS=1 python benchmarks/bench_train.py [--steps 4] [--batch-size 4]

Writes benchmarks/results/bench_train.json. Keep runs short: the machine is shared.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import write_result

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("WANDB_MODE", "disabled")

SPIDER = Path(__file__).resolve().parents[2] / "shared" / "spider"
PRESETS = ("attention", "all-linear", "high-rank")


def spider_records(tokenizer, max_length: int, limit: int | None = None) -> list[dict]:
    from sqlft.data.prepare import prepare_records

    prepared = prepare_records(
        "spider", SPIDER, "dev", tokenizer=tokenizer, max_length=max_length, schema_style="ddl", limit=limit
    )
    return prepared.records


def padding_share(model, tokenizer, records, batch_size: int, grad_accum: int, group: bool) -> dict:
    """Pad tokens / processed tokens over one epoch of the training dataloader."""
    from sqlft.lora import add_lora
    from sqlft.train import PhaseConfig, build_trainer

    with tempfile.TemporaryDirectory() as tmp:
        config = PhaseConfig(
            output_dir=tmp,
            batch_size=batch_size,
            grad_accum=grad_accum,
            group_by_length=group,
            max_length=1024,
        )
        trainer, _ = build_trainer(add_lora(model, "attention"), tokenizer, records, None, config)
        real = total = 0
        for batch in trainer.get_train_dataloader():
            real += int(batch["attention_mask"].sum())
            total += batch["attention_mask"].numel()
    return {"padding_share": round(1 - real / total, 4), "processed_tokens": total, "real_tokens": real}


def measure_padding(args) -> dict:
    import torch

    from sqlft.model import load_model_and_tokenizer

    torch.set_num_threads(1)
    _, tokenizer = load_model_and_tokenizer("smollm2-135m", quantization=None, placement="cpu")
    records = spider_records(tokenizer, 1024)
    out = {"records": len(records), "batch_size": args.batch_size, "grad_accum": args.grad_accum}
    for name, group in (("random", False), ("group_by_length", True)):
        model, tokenizer = load_model_and_tokenizer(
            "smollm2-135m", quantization=None, placement="cpu"
        )  # fresh LoRA
        out[name] = padding_share(model, tokenizer, records, args.batch_size, args.grad_accum, group)
    return out


def train_worker(
    preset: str, steps: int, batch_size: int, quantization: str | None, fused: bool | None
) -> dict:
    """Runs in its own process: a few optimizer steps of one preset; tokens/s after step 1, peak RSS."""
    import torch
    from transformers import TrainerCallback

    from sqlft.lora import add_lora, count_parameters
    from sqlft.model import load_model_and_tokenizer
    from sqlft.train import PhaseConfig, train

    torch.set_num_threads(1)
    model, tokenizer = load_model_and_tokenizer("smollm2-135m", quantization=quantization, placement="cpu")
    records = spider_records(tokenizer, 1024, limit=batch_size * steps * 2)
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    model = add_lora(model, preset)
    trainable, total = count_parameters(model)
    marks: list[tuple[int, float]] = []

    class Clock(TrainerCallback):
        def on_step_end(self, args, state, control, **kwargs):
            marks.append((state.global_step, time.perf_counter()))

    with tempfile.TemporaryDirectory() as tmp:
        config = PhaseConfig(
            output_dir=tmp,
            max_steps=steps,
            batch_size=batch_size,
            grad_accum=1,
            learning_rate=5e-4,
            save_steps=10_000,
            eval_steps=0,
            max_length=1024,
            fused_loss=fused,
        )
        result = train(model, tokenizer, records, None, config, callbacks=[Clock()])
        log = json.loads((Path(tmp) / "training_log.json").read_text())
    tokens = {e["step"]: e["num_input_tokens_seen"] for e in log if "loss" in e}
    seconds = marks[-1][1] - marks[0][1]
    tokens_after_first = tokens[steps] - tokens[1]
    return {
        "preset": preset,
        "quantization": quantization or "none",
        "loss_impl": "fused (TRL SFTTrainer)"
        if (torch.cuda.is_available() if fused is None else fused)
        else "plain (model's own loss)",
        "trainable_params": trainable,
        "total_params": total,
        "steps_timed": steps - 1,
        "seconds_per_step": round(seconds / (steps - 1), 2),
        "tokens_per_s": round(tokens_after_first / seconds, 1),
        "loss_first_last": [round(result.losses[0]["loss"], 3), round(result.losses[-1]["loss"], 3)],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "rss_after_load_mb": round(rss_loaded, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--grad-accum", type=int, default=2)
    parser.add_argument("--quantization", choices=["none", "nf4"], default="none")
    parser.add_argument("--presets", nargs="*", default=list(PRESETS))
    parser.add_argument(
        "--fused-compare", default="attention", help="preset also timed with TRL's fused loss"
    )
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--fused", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    quantization = None if args.quantization == "none" else args.quantization
    if args.worker:
        fused = args.fused or None  # None: sqlft's default for the device (plain on CPU)
        print(json.dumps(train_worker(args.worker, args.steps, args.batch_size, quantization, fused)))
        return

    results = {
        "model": "smollm2-135m (fp32 from the embedded GGUF)",
        "prompts": "Spider dev, DDL schema, default template, chat template, max_length 1024",
        "padding": measure_padding(args),
        "training": [],
    }
    runs = [(preset, False) for preset in args.presets] + [(args.fused_compare, True)] * bool(
        args.fused_compare
    )
    for preset, fused in runs:
        command = [sys.executable, __file__, "--worker", preset, "--steps", str(args.steps)]
        command += ["--batch-size", str(args.batch_size), "--quantization", args.quantization]
        command += ["--fused"] * fused
        done = subprocess.run(command, capture_output=True, text=True, check=True)
        results["training"].append(json.loads(done.stdout.strip().splitlines()[-1]))
        print(results["training"][-1], flush=True)
    print(json.dumps(results["padding"], indent=1))
    print(f"wrote {write_result('bench_train', results)}")


if __name__ == "__main__":
    main()
