"""GGUF export of SmolLM2-135M with a LoRA adapter: does the file agree with the merged model?

An all-linear LoRA (as the demo trains; B drawn at random, seeded, so that merging moves every
weight) is merged in fp32 and exported to GGUF f16 and q8_0 with `sqlft export`'s code. Each file is
loaded back with transformers and compared with the merged model on Spider dev prompts (compact
schema, the demo's system line, chat template): same token ids, same greedy next token, largest
logit difference. Also the export time and file size.

    OMP_NUM_THREADS=1 python benchmarks/bench_gguf.py --prompts 100

Writes benchmarks/results/bench_gguf.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from common import write_result
from spider_split import SPIDER, SYSTEM

from sqlft.data.prepare import prepare_records
from sqlft.export import compare_next_tokens, export_gguf
from sqlft.lora import add_lora
from sqlft.merge import merge_adapter
from sqlft.model import load_model_and_tokenizer

MODEL = "smollm2-135m"
OUTTYPES = ("f16", "q8_0")


def make_adapter(dest: Path) -> Path:
    model, tokenizer = load_model_and_tokenizer(MODEL, quantization=None)
    model = add_lora(model, "all-linear", seed=0)
    generator = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.copy_(torch.randn(param.shape, generator=generator) * 0.01)
    model.save_pretrained(dest)
    tokenizer.save_pretrained(dest)
    return dest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prompts", type=int, default=100, help="Spider dev prompts compared")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-gguf-") as tmp:
        work = Path(tmp)
        adapter = make_adapter(work / "adapter")
        merged = merge_adapter(MODEL, adapter, work / "merged", "fp32")
        from transformers import AutoTokenizer

        tokenizer = AutoTokenizer.from_pretrained(merged)
        records = prepare_records(
            "spider", SPIDER, "dev", schema_style="compact", tokenizer=tokenizer, system=SYSTEM
        ).records
        step = max(1, len(records) // args.prompts)  # spread over the databases
        prompts = [r["prompt"] for r in records[::step][: args.prompts]]
        rows = []
        for outtype in OUTTYPES:
            start = time.perf_counter()
            gguf_file = export_gguf(
                merged, work / f"model-{outtype}.gguf", outtype, name="SmolLM2-135M-sqlft"
            )
            seconds = time.perf_counter() - start
            check = compare_next_tokens(merged, gguf_file, prompts)
            row = {
                "outtype": outtype,
                "export_seconds": round(seconds, 1),
                "megabytes": round(gguf_file.stat().st_size / 1e6, 1),
                **check,
            }
            print(row)
            rows.append(row)
        merged_mb = sum(p.stat().st_size for p in merged.glob("*.safetensors")) / 1e6
    path = write_result(
        "bench_gguf",
        {
            "model": "SmolLM2-135M-Instruct + all-linear LoRA",
            "merged_fp32_megabytes": round(merged_mb, 1),
            "runs": rows,
        },
    )
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
