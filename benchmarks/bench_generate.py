"""Greedy generation speed of `sqlft.generate.generate_sql` at several batch sizes on SmolLM2-135M.

Spider dev prompts (DDL schema, chat template), the first N questions of each of a few
databases, as a full dev run sees them (consecutive questions share a database). Reports new
tokens per second per batch size (wall clock, and per CPU second, which other processes on a
shared machine disturb less), ratios to the first run, whether every run produced the same SQL
as the first, and transformers' own `generate` at batch 16 for reference. One thread
(OMP_NUM_THREADS=1): the machine is shared, so 2 threads are not reliably faster.
Writes benchmarks/results/bench_generate.json.

    OMP_NUM_THREADS=1 python benchmarks/bench_generate.py [--per-db 24] [--dbs 2] [--batch-sizes 1 4 16]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
SPIDER = Path(__file__).resolve().parents[2] / "shared" / "spider"
RESULTS = Path(__file__).resolve().parent / "results" / "bench_generate.json"


LOADER = "sqlft.model.load_model_and_tokenizer('smollm2-135m', quantization=None, compute_dtype=float32)"


def load_smollm2():
    """The embedded SmolLM2-135M-Instruct (GGUF converted once to an fp32 HF folder by sqlft.model)."""
    import torch

    from sqlft.model import load_model_and_tokenizer

    return load_model_and_tokenizer("smollm2-135m", quantization=None, compute_dtype=torch.float32)


def spider_prompts(tokenizer, dbs: int, per_db: int) -> list[str]:
    from sqlft.data.prepare import prepare_records

    records = prepare_records("spider", SPIDER, "dev", tokenizer=tokenizer).records
    by_db: dict[str, list[str]] = {}
    for record in records:
        by_db.setdefault(record["db_id"], []).append(record["prompt"])
    chosen = list(by_db)[:dbs]
    return [p for db in chosen for p in by_db[db][:per_db]]


def hf_generate(model, tokenizer, prompts: list[str], batch_size: int, max_new_tokens: int):
    """Reference: transformers' `generate` on length-sorted, left-padded batches; (sqls, new tokens)."""
    import torch

    from sqlft.extract import extract_sql
    from sqlft.generate import stop_token_ids

    stops = stop_token_ids(model, tokenizer)
    order = sorted(range(len(prompts)), key=lambda i: -len(prompts[i]))
    sqls, tokens = [""] * len(prompts), 0
    tokenizer.padding_side = "left"
    for start in range(0, len(order), batch_size):
        chunk = order[start : start + batch_size]
        enc = tokenizer(
            [prompts[i] for i in chunk], return_tensors="pt", padding=True, add_special_tokens=False
        ).to(model.device)
        with torch.inference_mode():
            out = model.generate(
                **enc, max_new_tokens=max_new_tokens, do_sample=False, eos_token_id=sorted(stops)
            )
        for i, row in zip(chunk, out[:, enc["input_ids"].shape[1] :].tolist(), strict=True):
            new = next((row[:k] for k, t in enumerate(row) if t in stops), row)
            tokens += len(new)
            sqls[i] = extract_sql(tokenizer.decode(new, skip_special_tokens=False))
    tokenizer.padding_side = "right"
    return sqls, tokens


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dbs", type=int, default=2)
    parser.add_argument("--per-db", type=int, default=24)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--max-new-tokens", type=int, default=64)
    parser.add_argument(
        "--hf-batch-sizes", type=int, nargs="*", default=[16], help="also time transformers' generate"
    )
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    import torch
    import transformers

    from sqlft.generate import generate_sql

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    model, tokenizer = load_smollm2()
    prompts = spider_prompts(tokenizer, args.dbs, args.per_db)
    lengths = [len(tokenizer(p, add_special_tokens=False)["input_ids"]) for p in prompts]
    runs, reference = [], None
    plan = [("sqlft", b) for b in args.batch_sizes] + [("hf_generate", b) for b in args.hf_batch_sizes]
    for engine, batch_size in plan:
        load_at_start = os.getloadavg()[0]
        started, cpu_started = time.perf_counter(), time.process_time()
        if engine == "sqlft":
            kwargs = dict(batch_size=batch_size, max_new_tokens=args.max_new_tokens, progress=False)
            generations = generate_sql(model, tokenizer, prompts, **kwargs)
            sqls, tokens = [g.sql for g in generations], sum(g.num_tokens for g in generations)
        else:
            sqls, tokens = hf_generate(model, tokenizer, prompts, batch_size, args.max_new_tokens)
        seconds, cpu_seconds = time.perf_counter() - started, time.process_time() - cpu_started
        reference = reference or sqls
        runs.append(
            {
                "engine": engine,
                "load_1min_at_start": round(load_at_start, 2),
                "batch_size": batch_size,
                "seconds": round(seconds, 2),
                "cpu_seconds": round(cpu_seconds, 2),
                "new_tokens": tokens,
                "tokens_per_s": round(tokens / seconds, 2),
                "tokens_per_cpu_s": round(tokens / cpu_seconds, 2),
                "same_sql_as_first": sum(a == b for a, b in zip(sqls, reference, strict=True)),
            }
        )
        print(json.dumps(runs[-1]), flush=True)
    for run in runs:
        run["ratio_to_first"] = round(run["tokens_per_s"] / runs[0]["tokens_per_s"], 2)
        run["cpu_ratio_to_first"] = round(run["tokens_per_cpu_s"] / runs[0]["tokens_per_cpu_s"], 2)
    result = {
        "benchmark": "greedy generate_sql on Spider dev prompts, SmolLM2-135M-Instruct fp32 (from Q4_1 GGUF)",
        "command": "OMP_NUM_THREADS=1 python " + " ".join(sys.argv),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "machine": {
            "platform": platform.platform(),
            "processor": _cpu_name(),
            "cpu_count": os.cpu_count(),
            "threads": torch.get_num_threads(),
            "load_average_at_end": os.getloadavg(),
        },
        "versions": {
            "python": platform.python_version(),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
        },
        "prompts": {
            "count": len(prompts),
            "dbs": args.dbs,
            "per_db": args.per_db,
            "tokens_min": min(lengths),
            "tokens_max": max(lengths),
            "tokens_total": sum(lengths),
        },
        "model_loader": LOADER,
        "max_new_tokens": args.max_new_tokens,
        "runs": runs,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
