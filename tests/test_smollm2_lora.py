"""The embedded real model learns to stop: after a short LoRA run on a handful of demo questions,
SmolLM2's answers end with EOS well within max_new_tokens (zero-shot it rambles on)."""

import pytest

from sqlft.data.prepare import prepare_records
from sqlft.generate import generate_sql
from sqlft.lora import add_lora
from sqlft.model import load_model_and_tokenizer
from sqlft.train import PhaseConfig, train

MAX_NEW_TOKENS = 64


@pytest.mark.slow
def test_short_lora_run_makes_smollm2_stop_after_its_sql(tmp_path):
    model, tokenizer = load_model_and_tokenizer("smollm2-135m", None, compute_dtype="fp32", placement="cpu")
    records = prepare_records(
        "demo", split="train", schema_style="compact", tokenizer=tokenizer, limit=16
    ).records
    prompts = [r["prompt"] for r in records[:4]]
    before = generate_sql(model, tokenizer, prompts, max_new_tokens=MAX_NEW_TOKENS, progress=False)

    model = add_lora(model, "attention")
    config = PhaseConfig(
        output_dir=str(tmp_path),
        learning_rate=2e-3,
        max_steps=8,
        batch_size=4,
        grad_accum=1,
        warmup_ratio=0.0,
        eval_steps=0,
        save_steps=100,
        max_length=512,
    )
    result = train(model, tokenizer, records, None, config)
    assert result.losses[-1]["loss"] < result.losses[0]["loss"]

    after = generate_sql(model, tokenizer, prompts, max_new_tokens=MAX_NEW_TOKENS, progress=False)
    assert all(g.num_tokens < MAX_NEW_TOKENS for g in after), [g.raw for g in after]
    assert sum(g.num_tokens for g in after) < sum(g.num_tokens for g in before)
    assert all(g.sql.upper().startswith("SELECT") for g in after), [g.sql for g in after]
