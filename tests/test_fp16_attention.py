"""phi-2 trains in fp16 on a T4: its attention must not form QK^T in fp16 before scaling it."""

import pytest
import torch
from transformers import AutoModelForCausalLM

from sqlft.config import load_preset
from sqlft.testing import tiny_model_path


def logits(attention: str, dtype: torch.dtype, qk_scale: float, ids: torch.Tensor) -> torch.Tensor:
    model = AutoModelForCausalLM.from_pretrained(
        tiny_model_path("phi"), dtype=dtype, attn_implementation=attention
    )
    with torch.no_grad():
        for layer in model.model.layers:  # larger query and key weights: dot products past fp16's 65504
            layer.self_attn.q_proj.weight.mul_(qk_scale)
            layer.self_attn.k_proj.weight.mul_(qk_scale)
        return model(ids).logits.float()


def test_phi_fp16_attention_overflows_eager_but_not_sdpa():
    ids = torch.randint(
        0, 300, (1, 500), generator=torch.Generator().manual_seed(0)
    )  # a Spider prompt's length
    # as built, the tiny phi is finite either way (its dot products are small): the hazard needs large ones
    assert torch.isfinite(logits("eager", torch.float16, 1.0, ids)).all()
    eager, sdpa = logits("eager", torch.float16, 1000.0, ids), logits("sdpa", torch.float16, 1000.0, ids)
    assert not torch.isfinite(eager).all()  # QK^T in fp16, then scaled: inf, then NaN after softmax
    assert torch.isfinite(sdpa).all()


@pytest.mark.parametrize("name, attention", [("kaggle-t4x2-phi2", "sdpa"), ("smoke", None)])
def test_fp16_presets_load_with_sdpa_attention(name, attention, monkeypatch):
    import sqlft.model
    from sqlft.recipe import load_model

    seen = {}
    monkeypatch.setattr(sqlft.model, "load_model_and_tokenizer", lambda *a, **kw: seen.update(kw))
    load_model(load_preset(name))
    assert seen["attn_implementation"] == attention
