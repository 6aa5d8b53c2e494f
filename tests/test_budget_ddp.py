"""A time budget under data parallelism: two CPU processes (gloo) must stop at the same step with the
same learning rates, even when their clocks disagree. Without agreement one process leaves the
training loop while the other waits for it in the next gradient all-reduce: a hang."""

import json
import os
import socket
import subprocess
import sys
import textwrap

import pytest

WORKER = textwrap.dedent(
    """
    import json, os, sys, time
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, TrainerCallback
    from sqlft.lora import add_lora
    from sqlft.testing import CORPUS, chat_prompt, tiny_model_path
    from sqlft.train import PhaseConfig, train

    out, rank = sys.argv[1], int(os.environ["RANK"])
    path = tiny_model_path("llama")
    torch.manual_seed(0)
    model, tok = AutoModelForCausalLM.from_pretrained(path), AutoTokenizer.from_pretrained(path)
    records = [{"prompt": chat_prompt(tok, q), "completion": s + tok.eos_token} for q, s in CORPUS[:32]]

    class LateStartAndRates(TrainerCallback):
        # rank 1 starts its clock 3 s after rank 0, which waits for it in the first all-reduce
        rates = []

        def on_train_begin(self, args, state, control, **kwargs):
            if rank == 1:
                time.sleep(3)

        def on_log(self, args, state, control, logs=None, **kwargs):
            if logs and "learning_rate" in logs:
                self.rates.append(logs["learning_rate"])

    config = PhaseConfig(
        output_dir=f"{out}/phase", learning_rate=1e-2, max_steps=100000, max_minutes=0.15,
        batch_size=2, grad_accum=1, warmup_ratio=0.0, scheduler="cosine", eval_steps=0,
        save_steps=100000, logging_steps=1, max_length=128,
    )
    spy = LateStartAndRates()
    result = train(add_lora(model, "attention"), tok, records, None, config, callbacks=[spy])
    json.dump({"step": result.global_step, "rates": spy.rates}, open(f"{out}/rank{rank}.json", "w"))
    """
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_processes_stop_together_with_the_same_rates(tmp_path):
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    rendezvous = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(free_port()), "WORLD_SIZE": "2"}
    workers = [
        subprocess.Popen(
            [sys.executable, str(script), str(tmp_path)],
            stderr=subprocess.PIPE,
            text=True,
            env={
                **os.environ,
                **rendezvous,
                "RANK": str(rank),
                "LOCAL_RANK": str(rank),
                "OMP_NUM_THREADS": "1",
            },
        )
        for rank in (0, 1)
    ]
    try:
        errors = [worker.communicate(timeout=180)[1] for worker in workers]
    except subprocess.TimeoutExpired:
        for worker in workers:
            worker.kill()
            worker.communicate()
        pytest.fail(
            "the two processes did not finish in 180 s: one left training while the other waited for it"
        )
    assert [w.returncode for w in workers] == [0, 0], "\n".join(e[-2000:] for e in errors)
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert ranks[0]["step"] == ranks[1]["step"] > 1
    assert ranks[0]["rates"] == ranks[1]["rates"] and len(ranks[0]["rates"]) == ranks[0]["step"]
    assert ranks[0]["rates"][-1] < ranks[0]["rates"][0] / 2  # it decayed over the time
