"""Take a trained model elsewhere: a merged Hugging Face folder, or one GGUF file for llama.cpp and
Ollama, and optionally the Hub.

The GGUF is written from a merged folder with the `gguf` package's own pieces, the way llama.cpp's
`convert_hf_to_gguf.py` does for these families: tensor names from `gguf.get_tensor_name_map`; the
byte-level BPE vocabulary with token types, merges and special tokens (chat template included) from
`gguf.SpecialVocab`; Q/K rows of Llama-family attention permuted into llama.cpp's rotary layout;
Mistral under the `llama` architecture, as llama.cpp writes it (transformers reads it back as Llama:
the same computation unless a sliding window is shorter than the context). Norms and biases stay
f32; `q8_0` falls back to f16 for a matrix whose rows are not a multiple of 32.
`compare_next_tokens` loads the file back with transformers and checks it against the merged model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

OUTTYPES = ("f16", "q8_0", "f32")
FAMILIES = ("llama", "mistral", "qwen2")  # model_type values this exporter knows
# llama.cpp's names for byte-level pre-tokenizers, preferred over transformers' aliases of the same split
PRE_TOKENIZER_NAMES = ("llama-bpe", "qwen2", "tekken", "gpt-4o")


class ExportError(ValueError):
    """A model this exporter cannot write; the message names the folder and the way on."""


def _arch(config: Any, folder: Path):
    import gguf

    if config.model_type not in FAMILIES:
        raise ExportError(
            f"{folder}: model_type {config.model_type!r} is not one of {', '.join(FAMILIES)}. Fix: export "
            "--format merged and convert that folder with llama.cpp's convert_hf_to_gguf.py"
        )
    rope = getattr(config, "rope_parameters", None) or getattr(config, "rope_scaling", None) or {}
    if rope.get("rope_type", "default") != "default":
        raise ExportError(
            f"{folder}: rope type {rope.get('rope_type')!r} is not written by this exporter. Fix: "
            "export --format merged and convert with llama.cpp's convert_hf_to_gguf.py"
        )
    return gguf.MODEL_ARCH.QWEN2 if config.model_type == "qwen2" else gguf.MODEL_ARCH.LLAMA


def pre_tokenizer_name(folder: Path, model_type: str) -> str:
    """llama.cpp's name for how the tokenizer splits text before BPE (`tokenizer.ggml.pre`)."""
    from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS

    spec = json.loads((folder / "tokenizer.json").read_text(encoding="utf-8")).get("pre_tokenizer") or {}
    parts = spec.get("pretokenizers", [spec])
    split = next((p["pattern"].get("Regex") for p in parts if p.get("type") == "Split"), None)
    if split is not None:
        for name in PRE_TOKENIZER_NAMES:
            if GGUF_PRE_TOKENIZER_SPLITS.get(name) == split:
                return name
    if any(p.get("type") == "Digits" and p.get("individual_digits") for p in parts):
        return "smollm"  # GPT-2 split with one token per digit (SmolLM, SmolLM2)
    if split is None and any(p.get("type") == "ByteLevel" for p in parts):
        return "qwen2" if model_type == "qwen2" else "gpt-2"
    raise ExportError(
        f"{folder}/tokenizer.json: pre-tokenizer {json.dumps(spec)[:120]} is not one this exporter names. "
        "Fix: convert the merged folder with llama.cpp's convert_hf_to_gguf.py"
    )


def _permute(weight: Any, n_head: int) -> Any:
    """HF's rotary layout (halves) to llama.cpp's (interleaved pairs), per head."""
    rows = weight.shape[0] // n_head // 2
    return weight.reshape(n_head, 2, rows, *weight.shape[1:]).swapaxes(1, 2).reshape(weight.shape)


def _tensors(folder: Path):
    """(name, float32 tensor) from every safetensors file of a saved model, in file order."""
    from safetensors import safe_open

    files = sorted(folder.glob("*.safetensors"))
    if not files:
        raise ExportError(f"{folder}: no *.safetensors weights. Fix: save the model with save_pretrained")
    for path in files:
        with safe_open(str(path), framework="pt") as weights:
            for name in weights.keys():
                yield name, weights.get_tensor(name).float()


def _add_vocab(writer: Any, folder: Path, config: Any) -> None:
    import gguf
    from transformers import AutoTokenizer

    spec = folder / "tokenizer.json"
    if not spec.is_file() or json.loads(spec.read_text(encoding="utf-8"))["decoder"]["type"] != "ByteLevel":
        raise ExportError(
            f"{folder}: only byte-level BPE tokenizers (tokenizer.json) are written; this one is "
            "sentencepiece. Fix: convert the merged folder with llama.cpp's convert_hf_to_gguf.py"
        )
    tokenizer = AutoTokenizer.from_pretrained(folder)
    by_id = {index: token for token, index in tokenizer.get_vocab().items()}
    added = tokenizer.added_tokens_decoder
    tokens, types = [], []
    for index in range(config.vocab_size):
        if index not in by_id:
            tokens.append(f"[PAD{index}]")
            types.append(gguf.TokenType.UNUSED)
        elif index in added:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.CONTROL if added[index].special else gguf.TokenType.USER_DEFINED)
        else:
            tokens.append(by_id[index])
            types.append(gguf.TokenType.NORMAL)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre(pre_tokenizer_name(folder, config.model_type))
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    gguf.SpecialVocab(folder, load_merges=True, n_vocab=len(tokens)).add_to_gguf(writer)


def export_gguf(
    model_dir: str | Path, out_file: str | Path, outtype: str = "f16", name: str | None = None
) -> Path:
    """Write the merged model in `model_dir` (a Llama, Mistral or Qwen2 save_pretrained folder) as GGUF."""
    import gguf
    import numpy as np
    from transformers import AutoConfig

    if outtype not in OUTTYPES:
        raise ExportError(f"outtype {outtype!r}: choose one of {', '.join(OUTTYPES)}")
    folder, out_file = Path(model_dir), Path(out_file)
    config = AutoConfig.from_pretrained(folder)
    arch = _arch(config, folder)
    n_head, n_kv = config.num_attention_heads, config.num_key_value_heads or config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or config.hidden_size // n_head
    qtype = {"f16": gguf.GGMLQuantizationType.F16, "q8_0": gguf.GGMLQuantizationType.Q8_0}.get(
        outtype, gguf.GGMLQuantizationType.F32
    )
    file_type = {"f16": gguf.LlamaFileType.MOSTLY_F16, "q8_0": gguf.LlamaFileType.MOSTLY_Q8_0}.get(
        outtype, gguf.LlamaFileType.ALL_F32
    )
    name = name or folder.name

    out_file.parent.mkdir(parents=True, exist_ok=True)
    partial = out_file.with_name(out_file.name + ".partial")
    writer = gguf.GGUFWriter(partial, gguf.MODEL_ARCH_NAMES[arch])
    writer.add_name(name)
    writer.add_context_length(config.max_position_embeddings)
    writer.add_embedding_length(config.hidden_size)
    writer.add_block_count(config.num_hidden_layers)
    writer.add_feed_forward_length(config.intermediate_size)
    writer.add_head_count(n_head)
    writer.add_head_count_kv(n_kv)
    rope = (getattr(config, "rope_parameters", None) or {}).get("rope_theta") or getattr(
        config, "rope_theta", None
    )
    writer.add_rope_freq_base(float(rope or 10000.0))
    writer.add_layer_norm_rms_eps(config.rms_norm_eps)
    if arch == gguf.MODEL_ARCH.LLAMA:
        writer.add_vocab_size(config.vocab_size)
        writer.add_rope_dimension_count(head_dim)
    if head_dim != config.hidden_size // n_head:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    writer.add_file_type(file_type)
    _add_vocab(writer, folder, config)

    names = gguf.get_tensor_name_map(arch, config.num_hidden_layers)
    tied = config.get_text_config().tie_word_embeddings
    for hf_name, tensor in _tensors(folder):
        if hf_name.endswith("rotary_emb.inv_freq") or (tied and hf_name == "lm_head.weight"):
            continue
        gguf_name = names.get_name(hf_name, try_suffixes=(".weight", ".bias"))
        if gguf_name is None:
            raise ExportError(f"{folder}: tensor {hf_name} has no GGUF name for {config.model_type}")
        if arch == gguf.MODEL_ARCH.LLAMA and hf_name.endswith(("q_proj.weight", "k_proj.weight")):
            tensor = _permute(tensor, n_head if "q_proj" in hf_name else n_kv)
        data = tensor.numpy()
        kind = qtype if data.ndim == 2 else gguf.GGMLQuantizationType.F32
        if kind == gguf.GGMLQuantizationType.Q8_0 and data.shape[-1] % 32:
            kind = gguf.GGMLQuantizationType.F16
        if kind == gguf.GGMLQuantizationType.F16:
            data = data.astype(np.float16)
        elif kind == gguf.GGMLQuantizationType.Q8_0:
            data = gguf.quants.quantize(data, kind)
        writer.add_tensor(gguf_name, data, raw_dtype=kind)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    partial.replace(out_file)
    return out_file


def compare_next_tokens(merged_dir: str | Path, gguf_file: str | Path, prompts: list[str]) -> dict[str, Any]:
    """Load the GGUF back with transformers and compare it with the merged model on each prompt: the
    tokenizer's ids, and the greedy next token (and the largest logit difference) on the same ids.
    `worst_top_gap` says whether disagreements were near-ties: the merged model's logit margin of its
    own top token over the token the GGUF chose."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    gguf_file = Path(gguf_file)
    ref_tok = AutoTokenizer.from_pretrained(merged_dir)
    ref = AutoModelForCausalLM.from_pretrained(merged_dir, dtype=torch.float32).eval()
    options = {"gguf_file": gguf_file.name}
    got_tok = AutoTokenizer.from_pretrained(gguf_file.parent, **options)
    got = AutoModelForCausalLM.from_pretrained(gguf_file.parent, dtype=torch.float32, **options).eval()
    same_ids = same_next = 0
    max_diff = worst_gap = 0.0  # worst_gap: how far below the merged model's top token the GGUF's pick was
    with torch.inference_mode():
        for prompt in prompts:
            ids = ref_tok(prompt, add_special_tokens=False)["input_ids"]
            same_ids += ids == got_tok(prompt, add_special_tokens=False)["input_ids"]
            batch = torch.tensor([ids])
            want, have = ref(batch).logits[0, -1], got(batch).logits[0, -1]
            same_next += int(want.argmax() == have.argmax())
            worst_gap = max(worst_gap, float(want.max() - want[have.argmax()]))
            max_diff = max(max_diff, float((want - have).abs().max()))
    return {
        "prompts": len(prompts),
        "same_token_ids": same_ids,
        "same_next_token": same_next,
        "max_logit_diff": round(max_diff, 5),
        "worst_top_gap": round(worst_gap, 5),  # near 0 when disagreements are near-ties
        "chat_template_kept": got_tok.chat_template == ref_tok.chat_template,
    }


def export_model(
    model: str,
    adapter: str | Path,
    out_dir: str | Path,
    fmt: str = "merged",
    *,
    outtype: str = "f16",
    dtype: str = "fp16",
    allow_other_base: bool = False,
) -> Path:
    """Merge `adapter` into `model` and write `out_dir`: a Hugging Face folder (`merged`) or a folder
    holding `model-<outtype>.gguf` (`gguf`), each with a model card; returns the folder or the file."""
    import tempfile

    from sqlft.answer import run_preset
    from sqlft.merge import merge_adapter
    from sqlft.modelcard import write_model_card

    if fmt not in ("merged", "gguf"):
        raise ExportError(f"format {fmt!r}: choose merged or gguf")
    if fmt == "gguf" and outtype not in OUTTYPES:
        raise ExportError(f"outtype {outtype!r}: choose one of {', '.join(OUTTYPES)}")
    preset_file = run_preset(adapter)
    card = {"base_model": model, "run_dir": preset_file.parent if preset_file else None}
    out_dir = Path(out_dir)
    if fmt == "merged":
        merge_adapter(model, adapter, out_dir, dtype, allow_other_base=allow_other_base)
        write_model_card(out_dir, kind="merged", **card)
        return out_dir
    with tempfile.TemporaryDirectory(
        prefix="sqlft-merge-"
    ) as merged:  # fp32: quantise once, from full precision
        merge_adapter(model, adapter, merged, "fp32", allow_other_base=allow_other_base)
        gguf_file = export_gguf(merged, out_dir / f"model-{outtype}.gguf", outtype, name=Path(model).name)
    write_model_card(out_dir, kind="gguf", gguf_file=gguf_file.name, **card)
    return gguf_file


def push_folder(folder: str | Path, repo_id: str, *, private: bool = False) -> str:
    """Upload an export or adapter folder (model card included) to the Hub; returns the repo URL."""
    from huggingface_hub import HfApi

    api = HfApi()
    url = api.create_repo(repo_id, private=private, exist_ok=True)
    api.upload_folder(repo_id=repo_id, folder_path=str(folder), commit_message="Upload from sqlft export")
    return str(url)
