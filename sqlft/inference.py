"""Load a model for inference with an optional LoRA adapter, checked against the base first.

An adapter records the base it was trained on (`base_model_name_or_path` in its config) and its
weight shapes. A different base of the same shapes would load silently and answer nonsense, and
one of other shapes ends in a long traceback inside peft; here both are refused with one line that
names the base the adapter wants. `predict`, `ask` and `export` all load through this module.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlft.data.records import DataError

ADAPTER_WEIGHTS = ("adapter_model.safetensors", "adapter_model.bin")


def read_adapter_config(adapter: str | Path) -> dict[str, Any]:
    """The adapter's config; a folder without config or weights is an error naming it (never a hub lookup)."""
    folder = Path(adapter)
    config_path = folder / "adapter_config.json"
    if not config_path.is_file():
        raise DataError(
            f"{folder}: no adapter_config.json. Fix: point --adapter at the folder where training "
            "saved the LoRA adapter (<run>/phase2/adapter)"
        )
    if not any((folder / name).is_file() for name in ADAPTER_WEIGHTS):
        raise DataError(
            f"{folder}: adapter_config.json but no adapter weights ({' or '.join(ADAPTER_WEIGHTS)}). "
            "Fix: point --adapter at a finished phase's adapter folder; a run that stopped early keeps "
            "its weights in checkpoints/"
        )
    return json.loads(config_path.read_text(encoding="utf-8"))


def _model_key(name_or_path: str) -> str:
    """What identifies a base across machines: a local folder's name, or a hub id's last part."""
    return Path(name_or_path.rstrip("/")).name.lower()


def check_adapter_base(adapter: str | Path, model_name: str) -> None:
    """Refuse an adapter trained on another base than `model_name` (compared after name resolution)."""
    from sqlft.model import resolve_source

    wanted = read_adapter_config(adapter).get("base_model_name_or_path")
    if not wanted:
        return
    resolved, _ = resolve_source(model_name)
    if _model_key(wanted) in (_model_key(model_name), _model_key(resolved)):
        return
    raise DataError(
        f"{adapter}: this adapter was trained on {wanted!r} (base_model_name_or_path in "
        f"adapter_config.json), not on --model {model_name!r}. Fix: pass --model {wanted}, or "
        "--allow-other-base if it is the same model under another name"
    )


def check_adapter_shapes(adapter: str | Path, model: Any) -> None:
    """Every LoRA matrix must fit the layer it attaches to; otherwise name the first that does not."""
    from safetensors import safe_open

    weights = Path(adapter) / ADAPTER_WEIGHTS[0]
    if not weights.is_file():  # an old .bin adapter: peft checks its shapes itself
        return
    modules = dict(model.named_modules())
    with safe_open(str(weights), framework="pt") as tensors:
        for key in tensors.keys():
            name, _, kind = key.removeprefix("base_model.model.").rpartition(".lora_")
            layer = modules.get(name)
            shape = tuple(tensors.get_slice(key).get_shape())
            if kind.startswith("A"):
                fits = layer is not None and shape[1] == getattr(layer, "in_features", None)
            elif kind.startswith("B"):
                fits = layer is not None and shape[0] == getattr(layer, "out_features", None)
            else:
                continue
            if not fits:
                found = "no such layer" if layer is None else f"layer {tuple(layer.weight.shape)}"
                raise DataError(
                    f"{adapter}: adapter weight {key} has shape {shape} but the model has {found}: the "
                    "adapter was trained on a model of other shapes. Fix: pass the --model it was "
                    "trained on (adapter_config.json, base_model_name_or_path)"
                )


def load_for_inference(
    name_or_path: str,
    adapter: str | Path | None = None,
    quantization: str | None = None,
    *,
    allow_other_base: bool = False,
    **load_options: Any,
) -> tuple[Any, Any]:
    """Model and tokenizer ready to generate: the adapter checked, attached, and merged when the
    base is not quantised (an unmerged LoRA halves generation speed). `load_options` (placement,
    compute_dtype, max_memory_per_gpu) go to `sqlft.model.load_model_and_tokenizer`."""
    from sqlft.generate import merge_adapter
    from sqlft.model import load_model_and_tokenizer

    if adapter is not None:
        read_adapter_config(adapter)
        if not allow_other_base:
            check_adapter_base(adapter, name_or_path)
    model, tokenizer = load_model_and_tokenizer(name_or_path, quantization=quantization, **load_options)
    if adapter is not None:
        from peft import PeftModel

        check_adapter_shapes(adapter, model)
        model = PeftModel.from_pretrained(model, str(adapter))
    return merge_adapter(model), tokenizer
