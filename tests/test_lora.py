"""LoRA presets resolve per architecture, continue adapters trainable, and keep fp16 adapters in fp32."""

import pytest
import torch
from transformers import AutoModelForCausalLM, GPT2Config, LlamaConfig, PhiConfig, Qwen2Config

from sqlft.lora import PRESETS, add_lora, count_parameters, target_modules

SIZES = dict(
    vocab_size=64,
    hidden_size=32,
    intermediate_size=64,
    num_hidden_layers=2,
    num_attention_heads=4,
    num_key_value_heads=2,
)


def tiny(config_cls=LlamaConfig, **kw):
    torch.manual_seed(0)
    return AutoModelForCausalLM.from_config(config_cls(**SIZES, **kw))


def adapted_layers(model) -> set[str]:
    return {
        name.split(".lora_A")[0].rsplit(".", 1)[-1]
        for name, _ in model.named_parameters()
        if "lora_A" in name
    }


@pytest.mark.parametrize(
    "config_cls, preset, expected",
    [
        (LlamaConfig, "attention", {"q_proj", "k_proj", "v_proj", "o_proj"}),
        (
            Qwen2Config,
            "all-linear",
            {"q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"},
        ),
        (PhiConfig, "all-linear", {"q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"}),
        (LlamaConfig, "high-rank", {"q_proj", "k_proj", "v_proj", "o_proj", "lm_head"}),
    ],
)
def test_presets_adapt_the_architecture_layers(config_cls, preset, expected):
    model = add_lora(tiny(config_cls), preset)
    assert adapted_layers(model) == expected
    assert model.peft_config["default"].r == PRESETS[preset]["r"]
    trainable, total = count_parameters(model)
    assert 0 < trainable < total
    assert all("lora_" in name for name, p in model.named_parameters() if p.requires_grad)


def test_unknown_architecture_lists_its_linear_layers():
    model = AutoModelForCausalLM.from_config(GPT2Config(n_embd=32, n_layer=1, n_head=2, vocab_size=64))
    with pytest.raises(ValueError, match="gpt2.*lm_head"):
        target_modules(model, "attention")


def test_unknown_preset_is_an_error():
    with pytest.raises(ValueError, match="all-linear"):
        add_lora(tiny(), "everything")


def test_overrides_replace_preset_fields():
    model = add_lora(tiny(), "attention", r=4, target_modules=["q_proj"])
    assert model.peft_config["default"].r == 4
    assert adapted_layers(model) == {"q_proj"}


def test_fp16_model_gets_fp32_adapters():
    model = add_lora(tiny().half(), "attention")
    dtypes = {p.dtype for p in model.parameters() if p.requires_grad}
    assert dtypes == {torch.float32}
    assert model.base_model.model.model.layers[0].self_attn.q_proj.base_layer.weight.dtype == torch.float16


def test_continued_adapter_is_trainable_and_keeps_its_weights(tmp_path):
    first = add_lora(tiny(), "attention")
    with torch.no_grad():
        for name, param in first.named_parameters():
            if "lora_B" in name:
                param.fill_(0.5)  # a fresh adapter has B == 0; make the saved one recognisable
    first.save_pretrained(tmp_path / "adapter")

    second = add_lora(tiny(), adapter=tmp_path / "adapter")
    trainable = {n: p for n, p in second.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)
    assert all(torch.all(p == 0.5) for n, p in trainable.items() if "lora_B" in n)


def test_missing_adapter_folder_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="no adapter_config.json"):
        add_lora(tiny(), adapter=tmp_path / "nowhere")


def test_gradient_checkpointing_stays_off_on_cpu():
    model = add_lora(tiny(), "attention", gradient_checkpointing=True)
    assert not model.base_model.model.is_gradient_checkpointing


def lora_a(model) -> list[torch.Tensor]:
    return [p.detach().clone() for n, p in model.named_parameters() if "lora_A" in n]


def test_seed_fixes_the_initial_adapter_whatever_ran_before():
    first = lora_a(add_lora(tiny(), "attention", seed=7))
    torch.rand(1000)  # other work moves the global generator between the two runs
    second = lora_a(add_lora(tiny(), "attention", seed=7))
    torch.rand(1000)
    unseeded = lora_a(add_lora(tiny(), "attention"))
    assert all(torch.equal(a, b) for a, b in zip(first, second, strict=True))
    assert not all(torch.equal(a, c) for a, c in zip(first, unseeded, strict=True))
