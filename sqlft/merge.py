"""Merge a LoRA adapter into its base model and save a standalone folder (weights + tokenizer).

The base is reloaded unquantised: merging into 4-bit weights would round the LoRA update away
and leave a model that only bitsandbytes can load. The result loads with plain
`AutoModelForCausalLM.from_pretrained(out_dir)`, e.g. for faster generation or a GGUF export.
"""

from __future__ import annotations

import json
from pathlib import Path

from sqlft.inference import check_adapter_base, read_adapter_config

DTYPES = ("fp16", "bf16", "fp32")


def _untie_lm_head(model) -> None:
    """Give lm_head its own weight: merging a LoRA into a head tied to the input embeddings would
    change the embeddings too (SmolLM2 ties them)."""
    import torch

    head, embeddings = model.get_output_embeddings(), model.get_input_embeddings()
    if head is not None and head.weight is embeddings.weight:
        head.weight = torch.nn.Parameter(embeddings.weight.detach().clone())
        model.config.tie_word_embeddings = False
        model.config.get_text_config().tie_word_embeddings = False


def merge_adapter(
    base_name_or_path: str,
    adapter_dir: str | Path,
    out_dir: str | Path,
    dtype: str = "fp16",
    *,
    placement: str = "cpu",
    allow_other_base: bool = False,
) -> Path:
    """Load the base in `dtype` (never quantised), apply the adapter, merge it and save to `out_dir`.

    The base is loaded through `sqlft.model.load_model_and_tokenizer`, so names such as
    `smollm2-135m` and the pad-token setup match training. The tokenizer saved with the adapter
    (by `sqlft.train`) is preferred over the base's. An adapter trained on another base is refused
    (`sqlft.inference`) unless `allow_other_base`.
    """
    import torch
    from peft import PeftModel
    from transformers import AutoTokenizer

    from sqlft.model import load_model_and_tokenizer

    if dtype not in DTYPES:
        raise ValueError(f"merge dtype {dtype!r}: choose one of {', '.join(DTYPES)}")
    adapter_dir, out_dir = Path(adapter_dir), Path(out_dir)
    adapter_config = read_adapter_config(adapter_dir)
    if not allow_other_base:
        check_adapter_base(adapter_dir, base_name_or_path)
    torch_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16, "fp32": torch.float32}[dtype]
    model, tokenizer = load_model_and_tokenizer(
        base_name_or_path, quantization=None, compute_dtype=torch_dtype, placement=placement
    )
    if (adapter_dir / "tokenizer_config.json").is_file():
        tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    targets = adapter_config.get("target_modules") or []
    if "lm_head" in targets:
        _untie_lm_head(model)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out_dir.mkdir(parents=True, exist_ok=True)
    merged.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    info = {"base": base_name_or_path, "adapter": str(adapter_dir), "dtype": dtype}
    (out_dir / "sqlft_merge.json").write_text(json.dumps(info, indent=1))
    return out_dir
