"""Merging an adapter gives a standalone model whose logits equal base + adapter."""

import json

import pytest
import torch
from peft import PeftModel
from transformers import AutoModelForCausalLM, AutoTokenizer

from sqlft.data.records import DataError
from sqlft.lora import add_lora
from sqlft.merge import merge_adapter
from sqlft.testing import CORPUS, chat_prompt, tiny_model_path


@pytest.fixture(scope="module")
def adapter(tmp_path_factory):
    """A high-rank adapter (attention + lm_head) with non-zero B, so merging changes the weights."""
    base = tiny_model_path("qwen2", warm_up=True)
    model = add_lora(AutoModelForCausalLM.from_pretrained(base), "high-rank")
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.01)
    out = tmp_path_factory.mktemp("phase") / "adapter"
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(base).save_pretrained(out)
    return base, out


def logits(model, tokenizer):
    text = [chat_prompt(tokenizer, q) + s for q, s in CORPUS[:3]]
    batch = tokenizer(text, add_special_tokens=False, return_tensors="pt", padding=True)
    with torch.no_grad():
        return model(**batch).logits.float()


def test_merged_fp32_logits_match_base_plus_adapter(adapter, tmp_path):
    base, adapter_dir = adapter
    out = merge_adapter(str(base), adapter_dir, tmp_path / "merged", dtype="fp32")
    tokenizer = AutoTokenizer.from_pretrained(out)
    merged = AutoModelForCausalLM.from_pretrained(out).eval()
    unmerged = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(base), adapter_dir).eval()
    plain = AutoModelForCausalLM.from_pretrained(base).eval()

    expected = logits(unmerged, tokenizer)
    assert not any("lora" in name for name, _ in merged.named_parameters())
    assert (logits(plain, tokenizer) - expected).abs().max() > 1e-3  # the adapter does change the output
    torch.testing.assert_close(logits(merged, tokenizer), expected, rtol=0, atol=1e-4)
    assert json.loads((out / "sqlft_merge.json").read_text())["dtype"] == "fp32"


def test_fp16_merge_saves_fp16_unquantised_weights(adapter, tmp_path):
    base, adapter_dir = adapter
    out = merge_adapter(str(base), adapter_dir, tmp_path / "merged16", dtype="fp16")
    config = json.loads((out / "config.json").read_text())
    assert "quantization_config" not in config
    merged = AutoModelForCausalLM.from_pretrained(out, dtype="auto")
    assert merged.dtype == torch.float16
    assert (out / "tokenizer_config.json").is_file()


def test_lm_head_adapter_on_tied_embeddings_merges_correctly(tmp_path):
    """SmolLM2 ties lm_head to the embeddings: the merge must not move the embeddings with the head."""
    rig = tiny_model_path("llama")
    tokenizer = AutoTokenizer.from_pretrained(rig)
    config = AutoModelForCausalLM.from_pretrained(rig).config
    config.tie_word_embeddings = True
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "base")
    tokenizer.save_pretrained(tmp_path / "base")
    model = add_lora(AutoModelForCausalLM.from_pretrained(tmp_path / "base"), "high-rank")
    assert model.get_output_embeddings().base_layer.weight is model.get_input_embeddings().weight
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.05)
    model.save_pretrained(tmp_path / "adapter")

    out = merge_adapter(str(tmp_path / "base"), tmp_path / "adapter", tmp_path / "merged", dtype="fp32")
    unmerged = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(tmp_path / "base"), tmp_path / "adapter"
    )
    merged = AutoModelForCausalLM.from_pretrained(out)
    torch.testing.assert_close(
        logits(merged.eval(), tokenizer), logits(unmerged.eval(), tokenizer), rtol=0, atol=1e-4
    )


def test_bad_inputs_name_the_fix(adapter, tmp_path):
    base, adapter_dir = adapter
    with pytest.raises(ValueError, match="fp16, bf16, fp32"):
        merge_adapter(str(base), adapter_dir, tmp_path / "x", dtype="int4")
    with pytest.raises(DataError, match="no adapter_config.json"):
        merge_adapter(str(base), tmp_path, tmp_path / "x")
    llama = str(tiny_model_path("llama"))  # same shapes as the qwen2 base the adapter was trained on
    with pytest.raises(DataError, match="this adapter was trained on .*qwen2"):
        merge_adapter(llama, adapter_dir, tmp_path / "x")
    assert not (tmp_path / "x").exists()
