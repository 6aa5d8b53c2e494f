"""Expected GPU memory of a QLoRA training setup, from the model's config alone.

A coarse, documented sum of what a training step holds: quantised block weights, unquantised
embeddings (upcast to fp32 by peft's k-bit preparation), LoRA weights, gradients and optimizer
states, activations at max_length (with or without gradient checkpointing), the logits and loss
over the vocabulary, and a fixed CUDA overhead. It answers "will this preset fit a T4?" before a
Kaggle session is spent finding out; it is not a profiler, so a verdict near the line is "tight".
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

GIB = 1024**3
T4_GIB = 14.5  # a Kaggle T4 (16 GB card) shows torch about 14.7 GiB; what is usable of it (issue 23)
CUDA_OVERHEAD_GIB = 0.8  # CUDA context, cuBLAS workspace, allocator reserve: measured 0.5-1 GiB
NF4_BYTES = 0.5 + 1 / 64 + 4 / (64 * 256)  # 4-bit codes + 8-bit absmax per 64 + fp32 per 256 blocks
QUANT_BYTES = {"nf4": NF4_BYTES, "int8": 1.0 + 4 / 4096, None: 2.0}  # per block weight; None: fp16/bf16
OPTIMIZER_BYTES = {"paged_adamw_8bit": 2, "adamw_8bit": 2, "adamw_torch": 8}  # states per trainable param
# 16-bit elements a decoder layer keeps for backward, per token, as (per hidden unit, per
# intermediate unit); measured by counting the tensors autograd saves in a bf16 Llama block with
# LoRA on every linear (tests/test_plan.py re-measures them). LoRA dropout keeps a copy of each
# adapted layer's input and its mask, hence the larger first pair.
ACT_ELEMS = {"dropout": (31, 7), "no dropout": (19, 5)}
LOGIT_BYTES = 12  # per logit: fp16 logits, fp32 log-softmax kept for backward, fp32 gradient
SHIPPED_CONFIGS = Path(__file__).parent / "model_configs"  # the Kaggle presets' models
NON_GATED = {"phi", "gpt2", "gpt_neox", "falcon", "starcoder2"}  # MLPs with two matrices, not three


def _count(n: float) -> str:
    """12_345_678 -> '12.3M'."""
    for size, unit in ((1e9, "B"), (1e6, "M"), (1e3, "K")):
        if n >= size:
            return f"{n / size:.{2 if unit == 'B' else 1}f}{unit}"
    return str(int(n))


@dataclass
class ModelShape:
    """The sizes memory depends on, read from a Hugging Face config."""

    model_type: str
    vocab: int
    hidden: int
    layers: int
    intermediate: int
    heads: int
    kv_heads: int
    head_dim: int
    tied: bool

    @classmethod
    def from_config(cls, config: dict, origin: str = "config") -> ModelShape:
        config = config.get("text_config", config) if "hidden_size" not in config else config
        missing = [
            k
            for k in (
                "vocab_size",
                "hidden_size",
                "num_hidden_layers",
                "intermediate_size",
                "num_attention_heads",
            )
            if not config.get(k)
        ]
        if missing:
            raise ValueError(f"{origin}: config lacks {', '.join(missing)}; pass a causal LM's config.json")
        heads = config["num_attention_heads"]
        return cls(
            model_type=config.get("model_type", "unknown"),
            vocab=config["vocab_size"],
            hidden=config["hidden_size"],
            layers=config["num_hidden_layers"],
            intermediate=config["intermediate_size"],
            heads=heads,
            kv_heads=config.get("num_key_value_heads") or heads,
            head_dim=config.get("head_dim") or config["hidden_size"] // heads,
            tied=bool(config.get("tie_word_embeddings", False)),
        )

    def attention_shapes(self) -> list[tuple[int, int]]:
        """(in, out) of q, k, v, o."""
        q, kv = self.heads * self.head_dim, self.kv_heads * self.head_dim
        return [(self.hidden, q), (self.hidden, kv), (self.hidden, kv), (q, self.hidden)]

    def mlp_shapes(self) -> list[tuple[int, int]]:
        up = [(self.hidden, self.intermediate)] * (1 if self.model_type in NON_GATED else 2)
        return [*up, (self.intermediate, self.hidden)]

    def block_linear_params(self) -> int:
        """Parameters in the transformer blocks' linear layers: the ones bitsandbytes quantises."""
        return self.layers * sum(i * o for i, o in self.attention_shapes() + self.mlp_shapes())

    def embedding_params(self) -> int:
        """Input embeddings plus lm_head (unless tied): never quantised."""
        return self.vocab * self.hidden * (1 if self.tied else 2)

    def total_params(self) -> int:
        return self.block_linear_params() + self.embedding_params()

    def lora_params(self, rank: int, targets: str = "all-linear") -> int:
        """Adapter parameters for a sqlft LoRA preset name (attention, all-linear, high-rank)."""
        shapes = self.attention_shapes() + (self.mlp_shapes() if targets == "all-linear" else [])
        n = self.layers * sum(rank * (i + o) for i, o in shapes)
        if targets == "high-rank":  # attention + lm_head
            n += rank * (self.hidden + self.vocab)
        return n


@dataclass
class Setup:
    """One training configuration; defaults are the Kaggle T4 QLoRA recipe."""

    quantization: str | None = "nf4"
    lora: str = "all-linear"
    lora_rank: int = 16
    lora_dropout: float = 0.05
    max_length: int = 1024
    batch_size: int = 4
    gradient_checkpointing: bool = True
    optimizer: str = "paged_adamw_8bit"
    placement: str = "single"  # single | split | ddp: what one GPU holds differs
    gpus: int = 1
    gpu_gib: float = T4_GIB


@dataclass
class Component:
    name: str
    gib: float
    note: str
    per_gpu_share: bool = True  # split mode divides it over the GPUs; False: one GPU holds it all


@dataclass
class Plan:
    model: str
    shape: ModelShape
    setup: Setup
    components: list[Component] = field(default_factory=list)
    generation: bool = False  # a generation plan: the advice is about the eval batch, not grad_accum

    @property
    def total_gib(self) -> float:
        return sum(c.gib for c in self.components)

    @property
    def per_gpu_gib(self) -> float:
        """The busiest GPU: in split mode layers are shared out, logits and overhead are not."""
        if self.setup.placement != "split":
            return self.total_gib
        shared = sum(c.gib for c in self.components if c.per_gpu_share)
        return shared / self.setup.gpus + sum(c.gib for c in self.components if not c.per_gpu_share)

    @property
    def weights_per_gpu_gib(self) -> float:
        weights = sum(c.gib for c in self.components if c.name.startswith(("weights", "embeddings")))
        return weights / (self.setup.gpus if self.setup.placement == "split" else 1)

    @property
    def verdict(self) -> str:
        need, have = self.per_gpu_gib, self.setup.gpu_gib
        if need <= 0.9 * have:
            return f"fits: {need:.1f} of {have:g} GiB per GPU"
        if need <= have:
            return f"tight: {need:.1f} of {have:g} GiB per GPU; long batches may run out of memory"
        return f"does not fit: needs {need:.1f} GiB per GPU, has {have:g}; {self.advice()}"

    @property
    def fits(self) -> bool:
        return self.per_gpu_gib <= self.setup.gpu_gib

    def advice(self) -> str:
        s = self.setup
        if self.weights_per_gpu_gib > s.gpu_gib:
            return "the weights alone do not fit: quantise harder or split over more GPUs"
        if self.generation:
            return "try: a smaller eval batch_size or max_new_tokens"
        tips = []
        if not s.gradient_checkpointing:
            tips.append("turn on gradient checkpointing")
        if s.batch_size > 1:
            tips.append("lower batch_size and raise grad_accum")
        if s.placement != "split" and s.gpus < 2:
            tips.append("split the model over two GPUs")
        tips.append("shorten max_length")
        return "try: " + ", ".join(tips)

    def table(self) -> str:
        s = self.setup
        checkpointing = "on" if s.gradient_checkpointing else "off"
        head = (
            f"{self.model}: {_count(self.shape.total_params())} parameters ({self.shape.model_type}); "
            f"{s.quantization or 'fp16'} weights, LoRA {s.lora} r={s.lora_rank}, {s.batch_size} x "
            f"{s.max_length} tokens, checkpointing {checkpointing}, {s.optimizer}, {s.placement}"
        )
        width = max(len(c.name) for c in self.components)
        rows = [head, "", f"{'component':<{width}}  {'GiB':>6}  note"]
        rows += [f"{c.name:<{width}}  {c.gib:>6.2f}  {c.note}" for c in self.components]
        rows.append(f"{'total':<{width}}  {self.total_gib:>6.2f}")
        if s.placement == "split":
            busiest = f"busiest of {s.gpus} GPUs"
            rows.append(
                f"{busiest:<{width}}  {self.per_gpu_gib:>6.2f}  layers shared; logits on the last GPU"
            )
        elif s.placement == "ddp":
            rows.append(
                f"{'per GPU (DDP)':<{width}}  {self.per_gpu_gib:>6.2f}  every process holds a full replica"
            )
        gpu = "T4" if s.gpu_gib == T4_GIB else "GPU"
        rows += ["", f"{gpu} ({s.gpu_gib:g} GiB): {self.verdict}"]
        return "\n".join(rows)

    def to_dict(self) -> dict:
        return {
            "model": self.model,
            "shape": asdict(self.shape),
            "setup": asdict(self.setup),
            "components": [asdict(c) for c in self.components],
            "total_gib": round(self.total_gib, 3),
            "per_gpu_gib": round(self.per_gpu_gib, 3),
            "fits": self.fits,
            "verdict": self.verdict,
        }


def layer_activation_bytes(shape: ModelShape, tokens: int, lora_dropout: float = 0.05) -> int:
    """Bytes one decoder layer keeps for backward over `tokens` tokens, without checkpointing."""
    per_hidden, per_inter = ACT_ELEMS["dropout" if lora_dropout > 0 else "no dropout"]
    return (per_hidden * shape.hidden + per_inter * shape.intermediate) * 2 * tokens


def estimate(shape: ModelShape, setup: Setup, model: str = "model") -> Plan:
    """Sum the memory components of one training step for `shape` under `setup`."""
    s, q = setup, setup.quantization
    tokens = s.batch_size * s.max_length
    block = shape.block_linear_params()
    emb_bytes = 4 if q else 2  # peft's prepare_model_for_kbit_training upcasts non-quantised weights
    lora = shape.lora_params(s.lora_rank, s.lora)
    opt_bytes = OPTIMIZER_BYTES.get(s.optimizer, 8)
    layer_act = layer_activation_bytes(shape, tokens, s.lora_dropout)
    if s.gradient_checkpointing:
        acts = shape.layers * shape.hidden * 2 * tokens + layer_act
        act_note = f"{s.batch_size} x {s.max_length} tokens: each layer's input, plus one layer recomputed"
    else:
        acts = shape.layers * layer_act
        act_note = f"{s.batch_size} x {s.max_length} tokens: every layer's saved tensors"
    qname = {"nf4": "4-bit NF4 + double-quantised constants", "int8": "8-bit + row scales", None: "fp16"}[q]
    plan = Plan(model, shape, setup)
    plan.components = [
        Component(
            "weights (block linears)", block * QUANT_BYTES[q] / GIB, f"{_count(block)} params, {qname}"
        ),
        Component(
            "embeddings + lm_head",
            shape.embedding_params() * emb_bytes / GIB,
            f"{_count(shape.embedding_params())} params, {'fp32 after k-bit preparation' if q else 'fp16'}"
            + (", tied" if shape.tied else ""),
        ),
        Component("LoRA weights (fp32)", lora * 4 / GIB, f"{_count(lora)} params, r={s.lora_rank}, {s.lora}"),
        Component("LoRA gradients (fp32)", lora * 4 / GIB, "one per adapter weight"),
        Component(
            "optimizer states", lora * opt_bytes / GIB, f"{s.optimizer}: {opt_bytes} bytes per adapter weight"
        ),
        Component("activations", acts / GIB, act_note),
        Component(
            "logits and loss",
            tokens * shape.vocab * LOGIT_BYTES / GIB,
            f"{tokens} tokens x {shape.vocab} vocab x {LOGIT_BYTES} bytes",
            per_gpu_share=False,
        ),
        Component("CUDA overhead", CUDA_OVERHEAD_GIB, "context, cuBLAS workspace, allocator reserve", False),
    ]
    return plan


def generation_plan(
    shape: ModelShape, setup: Setup, batch: int, prompt_tokens: int, new_tokens: int, model: str = "model"
) -> Plan:
    """Memory of batched generation on one GPU: weights, the fp16 KV cache at full length, the last
    step's logits and the CUDA overhead (each DDP process evaluates with a full replica)."""
    train = estimate(shape, setup, model)
    weights = [c for c in train.components if c.name.startswith(("weights", "embeddings"))]
    tokens = batch * (prompt_tokens + new_tokens)
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * 2 * tokens
    plan = Plan(
        model, shape, replace(setup, batch_size=batch, max_length=prompt_tokens + new_tokens), generation=True
    )
    plan.components = [
        *weights,
        Component(
            "KV cache (fp16)",
            kv / GIB,
            f"{batch} x ({prompt_tokens} prompt + {new_tokens} new) tokens x {shape.layers} layers x "
            f"{shape.kv_heads} KV heads x {shape.head_dim}",
        ),
        Component("logits", batch * shape.vocab * 4 / GIB, f"{batch} x {shape.vocab} vocab, fp32", False),
        Component("CUDA overhead", CUDA_OVERHEAD_GIB, "context, cuBLAS workspace, allocator reserve", False),
    ]
    return plan


def read_config(model: str, hub: bool = True) -> tuple[dict, str]:
    """A model's config as a dict: from config.json, a local folder, a sqlft name (`smollm2-135m`,
    `tiny-llama`) or a hub id; a preset model's shipped config when the hub is unreachable, or
    at once with `hub=False`."""
    from sqlft.model import EMBEDDED, resolve_source, tiny_model_name

    if model in EMBEDDED or tiny_model_name(model):
        model = resolve_source(model)[0]
    path = Path(model)
    if path.is_file():
        return json.loads(path.read_text()), str(path)
    if (path / "config.json").is_file():
        return json.loads((path / "config.json").read_text()), str(path / "config.json")
    from transformers import AutoConfig

    shipped = SHIPPED_CONFIGS / f"{model.replace('/', '--')}.json"
    if not hub and shipped.is_file():
        return json.loads(shipped.read_text()), f"{model} (config shipped with sqlft)"
    try:
        return AutoConfig.from_pretrained(model).to_dict(), f"{model} (hub)"
    except OSError as error:
        if shipped.is_file():  # a preset's model, planned offline before its first download
            return json.loads(shipped.read_text()), f"{model} (config shipped with sqlft; hub unreachable)"
        raise FileNotFoundError(
            f"cannot read the config of {model!r} ({error.__class__.__name__}); offline, pass a local "
            "folder or its config.json with --model"
        ) from error


def setup_from_preset(preset, phase: str = "phase1", gpus: int = 2) -> Setup:
    """The Setup a sqlft preset (`sqlft.config.Preset`) trains with in `phase`."""
    from sqlft.lora import PRESETS as LORA_PRESETS

    m, p = preset.model, getattr(preset, phase)
    placement = {"auto": "single", "cpu": "single"}.get(m.placement, m.placement)
    optimizer = "paged_adamw_8bit" if p.optimizer == "auto" else p.optimizer
    return Setup(
        quantization=None if m.quantization == "none" else m.quantization,
        lora=m.lora,
        lora_rank=m.lora_r or LORA_PRESETS[m.lora]["r"],
        lora_dropout=LORA_PRESETS[m.lora]["lora_dropout"] if m.lora_dropout is None else m.lora_dropout,
        max_length=preset.prompt.max_length,
        batch_size=p.batch_size,
        gradient_checkpointing=p.gradient_checkpointing,
        optimizer=optimizer,
        placement=placement,
        gpus=gpus if placement in ("split", "ddp") else 1,
    )


def rl_plan(
    shape: ModelShape,
    setup: Setup,
    generation_rows: int,
    prompt_tokens: int,
    completion_tokens: int,
    model: str = "model",
) -> Plan:
    """Memory of one GRPO step (phase 3) on one GPU: the weights, adapters, gradients and optimizer
    states held throughout, plus the larger of its two phases, which never overlap: generating
    `generation_rows` completions at once (fp16 KV cache at full length, last-token logits) or the
    policy-gradient step over `setup.batch_size` completions (activations over prompt + completion,
    logits over the completion tokens only, as TRL computes them)."""
    tokens = prompt_tokens + completion_tokens
    train = estimate(shape, replace(setup, max_length=tokens), model)
    held = [c for c in train.components if c.name not in ("activations", "logits and loss", "CUDA overhead")]
    activations = next(c for c in train.components if c.name == "activations")
    step_logits = setup.batch_size * completion_tokens * shape.vocab * LOGIT_BYTES
    step = [
        Component("step: activations", activations.gib, activations.note),
        Component(
            "step: logits and loss",
            step_logits / GIB,
            f"{setup.batch_size} x {completion_tokens} completion tokens x {shape.vocab} vocab x "
            f"{LOGIT_BYTES} bytes",
            per_gpu_share=False,
        ),
    ]
    kv = 2 * shape.layers * shape.kv_heads * shape.head_dim * 2 * generation_rows * tokens
    generation = [
        Component(
            "generation: KV cache (fp16)",
            kv / GIB,
            f"{generation_rows} completions x ({prompt_tokens} prompt + {completion_tokens} new) tokens",
        ),
        Component(
            "generation: logits",
            generation_rows * shape.vocab * 4 / GIB,
            f"{generation_rows} x {shape.vocab} vocab, fp32",
            per_gpu_share=False,
        ),
    ]
    peak, other = (
        (step, generation)
        if sum(c.gib for c in step) >= sum(c.gib for c in generation)
        else (
            generation,
            step,
        )
    )
    peak[
        0
    ].note += f" (the {other[0].name.split(':')[0]} needs {sum(c.gib for c in other):.2f} GiB, not at once)"
    plan = Plan(model, shape, replace(setup, max_length=tokens))
    plan.components = [
        *held,
        *peak,
        Component("CUDA overhead", CUDA_OVERHEAD_GIB, "context, cuBLAS workspace, allocator reserve", False),
    ]
    return plan


def rl_rows(preset, gpus: int = 2) -> int:
    """Completions one GPU generates at once in phase 3 (TRL: the generation batch per process)."""
    p = preset.phase3
    processes = gpus if preset.model.placement == "ddp" else 1
    return p.generation_batch_size // processes if p.generation_batch_size else p.batch_size * p.grad_accum
