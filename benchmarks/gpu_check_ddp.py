"""A Kaggle preset's real phase-1 training path under two data-parallel processes on the CPU.

torchrun starts two gloo workers (one for a `split` preset: it trains in one process on Kaggle too);
each runs `sqlft.recipe.train_phase` with the preset as it is (NF4, compute dtype, optimizer, batch,
accumulation, LoRA targets, prompt) except what the CPU cannot hold: the model becomes
sqlft.testing's tiny model of the same architecture family, the data the demo set, and the phase a
few steps. Each rank reports its optimizer, dtypes, evaluations and a digest of its adapter weights;
the parent checks the ranks agree, one adapter was saved, the evaluation ran once.

    torchrun --nproc_per_node 2 benchmarks/gpu_check_ddp.py PRESET RUN_DIR OVERRIDES_JSON   (the worker)
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

STEPS = 2  # optimizer steps per run; the evaluation falls on the last one, so it runs exactly once
TIMEOUT_S = 900
TINY_FAMILY = {"llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "phi": "phi"}  # model_type -> tiny


def replacements(model_type: str) -> dict:
    """The preset keys the CPU run replaces; everything else is the preset's own."""
    if model_type not in TINY_FAMILY:
        raise ValueError(
            f"no tiny model of family {model_type!r}; sqlft.testing builds {sorted(TINY_FAMILY)}"
        )
    return {
        "model.name": f"tiny-{TINY_FAMILY[model_type]}",
        "phase1.data": {"source": "demo", "split": "phase1", "limit": 16},
        "eval.data": {"source": "demo", "split": "dev", "limit": 8},
        "phase1.max_steps": STEPS,
        "phase1.eval_steps": STEPS,
        "phase1.save_steps": STEPS,
        "phase1.eval_limit": 4,
        "phase1.sample_questions": 2,
    }


def adapter_digest(tensors: dict) -> tuple[str, float]:
    """A bitwise digest and a float64 sum of the adapter weights (names sorted)."""
    digest = hashlib.sha256()
    total = 0.0
    for name in sorted(tensors):
        tensor = tensors[name].detach().float().cpu().contiguous()
        digest.update(tensor.numpy().tobytes())
        total += float(tensor.double().sum())
    return digest.hexdigest()[:16], total


def optimizer_name(optimizer) -> str:
    """`bitsandbytes.optim.adamw.AdamW (8-bit paged)`: the class that ran, its state bits, paging."""
    inner = getattr(optimizer, "optimizer", optimizer)  # accelerate wraps it
    bits = getattr(getattr(inner, "args", None), "optim_bits", 32)
    paged = " paged" if getattr(inner, "is_paged", False) else ""
    return f"{type(inner).__module__}.{type(inner).__name__} ({bits}-bit{paged})"


def worker(preset: str, run_dir: str, overrides: dict) -> None:
    """One rank: the real training step, with a callback that records what the rank saw."""
    import torch
    from transformers import TrainerCallback

    if os.environ.get("GPU_CHECK_T4"):  # gpu_check --cuda: this rank's GPU behaves like a T4
        from gpu_check_env import emulate_t4

        emulate_t4(int(os.environ["LOCAL_RANK"]))

    from sqlft.recipe import setup, train_phase
    from sqlft.train import compute_dtype

    record: dict = {"evaluations": 0}

    class RankSpy(TrainerCallback):
        def on_train_begin(self, args, state, control, model=None, optimizer=None, **kwargs):
            params = list(model.parameters())
            record.update(
                optimizer=optimizer_name(optimizer),
                compute_dtype=str(compute_dtype(model)).removeprefix("torch."),
                trainable_dtypes=sorted(
                    {str(p.dtype).removeprefix("torch.") for p in params if p.requires_grad}
                ),
                frozen_dtypes=sorted(
                    {str(p.dtype).removeprefix("torch.") for p in params if not p.requires_grad}
                ),
                trainer_fp16=args.fp16,
                world_size=args.world_size,
                backend=torch.distributed.get_backend() if torch.distributed.is_initialized() else None,
            )

        def on_evaluate(self, args, state, control, **kwargs):
            record["evaluations"] += 1

        def on_train_end(self, args, state, control, model=None, **kwargs):
            trained = {n: p for n, p in model.named_parameters() if p.requires_grad}
            record["adapter_digest"], record["adapter_sum"] = adapter_digest(trained)
            record["global_step"] = state.global_step

    config, run = setup(preset, overrides, run_dir)
    train_phase(config, "phase1", run, callbacks=[RankSpy()])
    rank = os.environ["RANK"]
    (Path(run_dir) / f"rank{rank}.json").write_text(json.dumps(record, indent=1))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(
    preset: str, run_dir: Path, overrides: dict, processes: int, timeout_s: float, cuda: bool
) -> tuple[int, str]:
    """torchrun with `processes` workers (gloo on the CPU; on CUDA NCCL, one GPU each, T4-emulating);
    on a timeout its session (torchrun and workers) is ended."""
    command = [
        sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", str(processes),
        "--master_addr", "127.0.0.1", "--master_port", str(_free_port()),
        __file__, preset, str(run_dir), json.dumps(overrides),
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "WANDB_MODE": "disabled", "PYTHONUNBUFFERED": "1"}
    if cuda:
        env["GPU_CHECK_T4"] = "1"
    log = run_dir / "torchrun.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        try:
            code = process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGTERM)  # torchrun's workers share its new session's group
            code = process.wait()
    return code, log.read_text()[-3000:]


def prepared_run(preset: str, overrides: dict, run_dir: Path):
    """The preset with `overrides`, its run directory, and phase 1's data step done (as the notebook does)."""
    from sqlft.recipe import load_tokenizer, prepare_phase, setup

    config, run = setup(preset, overrides, str(run_dir))
    prepare_phase(config, "phase1", run, load_tokenizer(config))
    return config, run


def check_data_parallel(preset: str, run_dir: Path, timeout_s: float = TIMEOUT_S, cuda: bool = False) -> dict:
    """Run the preset's phase 1 under two processes in `run_dir` and check what they did; with `cuda`
    on the first two GPUs, NCCL, as the preset says (fp16 compute, its optimizer)."""
    from safetensors.torch import load_file

    from sqlft.config import load_preset
    from sqlft.plan import read_config

    original = load_preset(preset)
    overrides = replacements(read_config(original.model.name, hub=False)[0]["model_type"])
    prepared_run(preset, overrides, run_dir)
    processes = 2 if original.model.placement == "ddp" else 1
    code, log_tail = _launch(preset, run_dir, overrides, processes, timeout_s, cuda)
    result: dict = {"replaced": overrides, "processes": processes, "exit_code": code, "problems": []}
    problems = result["problems"]
    ranks = [run_dir / f"rank{r}.json" for r in range(processes)]
    if code != 0 or not all(path.is_file() for path in ranks):
        problems.append(f"the two-process run failed (exit {code}); log tail:\n{log_tail}")
        return result
    result["ranks"] = [json.loads(path.read_text()) for path in ranks]
    rank0 = result["ranks"][0]
    for key in ("global_step", "adapter_digest", "evaluations", "optimizer"):
        if any(rank[key] != rank0[key] for rank in result["ranks"]):
            problems.append(f"ranks disagree on {key}: {[rank[key] for rank in result['ranks']]}")
    if rank0["world_size"] != processes or rank0["global_step"] != STEPS:
        problems.append(
            f"expected {processes} process(es) x {STEPS} steps, "
            f"got {rank0['world_size']} x {rank0['global_step']}"
        )
    if rank0["evaluations"] != 1:
        problems.append(f"the evaluation ran {rank0['evaluations']} times per rank, expected once")
    if rank0["trainable_dtypes"] != ["float32"]:
        problems.append(f"adapters must train in float32 under fp16 compute, got {rank0['trainable_dtypes']}")
    wanted_dtype = {"fp16": "float16", "bf16": "bfloat16", "fp32": "float32"}.get(
        original.model.compute_dtype
    )
    if wanted_dtype and rank0["compute_dtype"] != wanted_dtype:
        problems.append(f"compute dtype {rank0['compute_dtype']}, the preset asks for {wanted_dtype}")
    optimizer = original.phase1.optimizer
    # bitsandbytes 0.50 runs AdamW 8-bit on the CPU too; only its paging falls back to plain memory there
    result["optimizer"] = {"preset": optimizer, "ran": rank0["optimizer"]}
    saved = sorted(
        p.parent for p in (run_dir / "phase1").rglob("adapter_config.json") if "checkpoint-" not in str(p)
    )
    result["adapters_saved"] = [str(p.relative_to(run_dir)) for p in saved]
    if len(saved) != 1:
        problems.append(f"expected one saved adapter, found {len(saved)}: {result['adapters_saved']}")
    else:
        _, total = adapter_digest(load_file(str(saved[0] / "adapter_model.safetensors")))
        if abs(total - rank0["adapter_sum"]) > 1e-6 * max(1.0, abs(total)):
            problems.append(
                f"the saved adapter (sum {total}) is not the ranks' weights (sum {rank0['adapter_sum']})"
            )
    log = json.loads((run_dir / "phase1" / "training_log.json").read_text())
    logged = sum("eval_loss" in entry for entry in log)
    if logged != 1:
        problems.append(f"training_log.json holds {logged} evaluations, expected one")
    samples = run_dir / "phase1" / "sql_samples.csv"
    rows = len(samples.read_text().splitlines()) - 1 if samples.is_file() else 0
    if rows != overrides["phase1.sample_questions"]:
        problems.append(f"sql_samples.csv holds {rows} rows, expected one sampler's 2 (rank 0 only)")
    return result


if __name__ == "__main__":
    worker(sys.argv[1], sys.argv[2], json.loads(sys.argv[3]))
