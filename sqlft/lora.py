"""LoRA presets and adapter setup: per-architecture target modules, k-bit preparation, fp32 adapters.

`add_lora` wraps a causal LM for training, either with a fresh adapter from a preset or by
continuing a saved adapter (phase 2 starts from phase 1's weights). Adapters are kept in float32
when the model computes in fp16, otherwise the AMP grad scaler fails with "Attempting to unscale
FP16 gradients" (the T4 case).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

# Per architecture: (attention projections, MLP projections), as module name suffixes.
_LLAMA_LIKE = (("q_proj", "k_proj", "v_proj", "o_proj"), ("gate_proj", "up_proj", "down_proj"))
ARCHITECTURE_MODULES: dict[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "llama": _LLAMA_LIKE,
    "mistral": _LLAMA_LIKE,
    "qwen2": _LLAMA_LIKE,
    "qwen3": _LLAMA_LIKE,
    "gemma": _LLAMA_LIKE,
    "gemma2": _LLAMA_LIKE,
    "phi": (("q_proj", "k_proj", "v_proj", "dense"), ("fc1", "fc2")),
}

PRESETS: dict[str, dict[str, Any]] = {
    "attention": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.0, "modules": "attention"},
    "all-linear": {"r": 16, "lora_alpha": 32, "lora_dropout": 0.05, "modules": "all"},
    "high-rank": {"r": 128, "lora_alpha": 128, "lora_dropout": 0.0, "modules": "attention+lm_head"},
}


def linear_layer_names(model: nn.Module) -> list[str]:
    """Distinct last-name parts of the linear layers (plain or bitsandbytes) inside `model`."""
    names = set()
    for name, module in model.named_modules():
        if isinstance(module, nn.Linear) or type(module).__name__ in ("Linear4bit", "Linear8bitLt"):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def target_modules(model: nn.Module, preset: str) -> list[str]:
    """Module names a preset adapts on this model's architecture; unknown ones fail with the names to use."""
    if preset not in PRESETS:
        raise ValueError(f"unknown LoRA preset {preset!r}; choose one of {sorted(PRESETS)}")
    model_type = getattr(getattr(model, "config", None), "model_type", None)
    if model_type not in ARCHITECTURE_MODULES:
        raise ValueError(
            f"LoRA: no target modules known for architecture {model_type!r} "
            f"(known: {sorted(ARCHITECTURE_MODULES)}); its linear layers are {linear_layer_names(model)}. "
            "Pass target_modules=[...] chosen from those names."
        )
    attention, mlp = ARCHITECTURE_MODULES[model_type]
    kind = PRESETS[preset]["modules"]
    names = (
        list(attention) + (list(mlp) if kind == "all" else []) + (["lm_head"] if "lm_head" in kind else [])
    )
    missing = [n for n in names if n not in linear_layer_names(model)]
    if missing:
        raise ValueError(f"LoRA preset {preset!r}: {model_type} model has no linear layers named {missing}")
    return names


def is_quantized(model: nn.Module) -> bool:
    """True for a model loaded in 4 or 8 bits through bitsandbytes."""
    return bool(getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False))


def count_parameters(model: nn.Module) -> tuple[int, int]:
    """(trainable, total) parameters; a packed 4-bit weight counts as its unpacked size."""
    trainable = total = 0
    for param in model.parameters():
        n = param.numel()
        if type(param).__name__ == "Params4bit":
            n *= 2
        total += n
        trainable += n if param.requires_grad else 0
    return trainable, total


def _cast_fp16_adapters(model: nn.Module) -> None:
    for param in model.parameters():
        if param.requires_grad and param.dtype == torch.float16:
            param.data = param.data.float()


def add_lora(
    model: nn.Module,
    preset: str = "all-linear",
    adapter: str | Path | None = None,
    *,
    gradient_checkpointing: bool | None = None,
    seed: int | None = None,
    **overrides: Any,
):
    """Wrap `model` in a trainable PeftModel: a new adapter from `preset`, or the saved `adapter` continued.

    `overrides` replace LoraConfig fields of the preset (r, lora_alpha, lora_dropout, target_modules).
    `seed` fixes the random initial LoRA A matrices: the trainer seeds only later, so without it two
    runs with the same trainer seed start from different adapters and drift apart.
    Gradient checkpointing applies on GPU only; there it defaults to on for quantised models.
    """
    from peft import LoraConfig, PeftModel, get_peft_model, prepare_model_for_kbit_training

    if preset not in PRESETS:
        raise ValueError(f"unknown LoRA preset {preset!r}; choose one of {sorted(PRESETS)}")
    on_gpu = any(p.device.type == "cuda" for p in model.parameters())
    # on CPU checkpointing only costs time (40% measured, DESIGN.md), so it stays off there
    gradient_checkpointing = on_gpu and (
        is_quantized(model) if gradient_checkpointing is None else gradient_checkpointing
    )
    if is_quantized(model):
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    elif gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()

    if adapter is not None:
        if not (Path(adapter) / "adapter_config.json").is_file():
            raise FileNotFoundError(
                f"{adapter}: no adapter_config.json; pass the folder a finished phase saved"
            )
        peft_model = PeftModel.from_pretrained(model, str(adapter), is_trainable=True)
    else:
        settings = {k: v for k, v in PRESETS[preset].items() if k != "modules"}
        if "target_modules" not in overrides:
            settings["target_modules"] = target_modules(model, preset)
        config = LoraConfig(task_type="CAUSAL_LM", bias="none", **{**settings, **overrides})
        if seed is not None:
            from transformers import set_seed

            set_seed(seed)
        peft_model = get_peft_model(model, config)

    _cast_fp16_adapters(peft_model)
    trainable, total = count_parameters(peft_model)
    if trainable == 0:
        raise RuntimeError(f"LoRA: no trainable parameters after loading {adapter or preset!r}")
    print(
        f"LoRA {'continued from ' + str(adapter) if adapter else preset}: "
        f"trainable {trainable:,} of {total:,} parameters ({100 * trainable / total:.2f}%)"
    )
    return peft_model
