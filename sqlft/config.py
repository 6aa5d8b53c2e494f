"""Presets: one YAML file per model x hardware, validated into typed sections.

A preset is a shipped name (`sqlft/presets/<name>.yaml`) or a path. Overrides use dotted keys
(`phase1.learning_rate=2e-4`). Unknown keys and impossible values are errors that name the key
and the file, so a typo never silently falls back to a default.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import typing
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml


class PresetError(ValueError):
    """A preset that cannot be used; the message names the file, the key and the fix."""


@dataclass
class ModelSection:
    name: str = "smollm2-135m"  # hub id, local folder, or the embedded `smollm2-135m`
    quantization: str = "nf4"  # nf4 | int8 | none
    compute_dtype: str = "auto"  # auto | fp32 | fp16 | bf16
    placement: str = "auto"  # auto | cpu | single | split | ddp
    max_memory_per_gpu: str | None = None  # e.g. "14GiB" for placement=split
    lora: str = "all-linear"  # attention | all-linear | high-rank
    lora_r: int | None = None
    lora_alpha: int | None = None
    lora_dropout: float | None = None


@dataclass
class DataSection:
    source: str = "demo"  # spider | bird | gretel | sql-create-context | csv | demo
    path: str | None = None
    split: str | None = None
    limit: int | None = None


@dataclass
class PromptSection:
    template: str = "default"
    schema: str = "ddl"  # ddl | compact | mschema
    sample_values: int = 0
    value_retrieval: int = 0  # > 0: up to this many database values the question mentions (sqlft.values)
    max_length: int = 1024
    system: str | None = None
    descriptions: bool = False  # BIRD: column notes from database_description/*.csv after the schema


@dataclass
class TrainerSettings:
    """How one phase trains; shared by a preset's phase section and `sqlft.train.PhaseConfig`."""

    learning_rate: float = 1e-4
    epochs: float = 1.0
    max_steps: int = -1  # > 0 overrides epochs
    max_minutes: float = 0.0  # > 0: stop after this much training, adapter kept (CPU budgets, Kaggle limits)
    batch_size: int = 4
    grad_accum: int = 4
    warmup_ratio: float = 0.03
    scheduler: str = "cosine"  # or linear, constant, constant_with_warmup; decays over max_minutes if set
    optimizer: str = "auto"  # auto: paged_adamw_8bit on GPU, adamw_torch on CPU
    gradient_checkpointing: bool = True  # applied on GPU only: on CPU it costs 40% and saves nothing needed
    eval_steps: int = 50  # 0: no evaluation
    save_steps: int = 50
    save_total_limit: int = 2
    seed: int = 42


@dataclass
class PhaseSection(TrainerSettings):
    """A preset's phase: trainer settings plus its data and what the notebook shows while training."""

    data: DataSection = field(default_factory=DataSection)
    eval_limit: int = 64  # dev records used for the eval loss
    sample_questions: int = 4  # questions the SQL sample callback shows at each evaluation


@dataclass
class Phase3Section(PhaseSection):
    """Reinforcement learning on the phase-2 adapter (TRL's GRPO) with an execution reward (sqlft.rl).

    `batch_size` counts completions per device step (TRL's convention): batch_size x grad_accum must
    be a multiple of `num_generations`, the group of completions sampled for each prompt.
    """

    enabled: bool = False  # off unless a preset turns it on; `reason` says why either way
    reason: str = ""
    learning_rate: float = 1e-5
    warmup_ratio: float = 0.0
    scheduler: str = "constant"
    eval_steps: int = 10  # the SQL samples' interval: GRPO runs no eval loss here
    num_generations: int = 4  # completions per prompt; GRPO's advantage is the reward minus the group mean
    max_completion_length: int = 256
    temperature: float = 1.0
    beta: float = 0.0  # KL weight to the phase-2 policy; 0 needs no reference model
    generation_batch_size: int = 0  # 0: batch_size x grad_accum x processes (TRL's default)
    execution_weight: float = 1.0  # weight of the execution reward: 1 match, `runs_reward`, 0 error
    runs_reward: float = 0.1  # a query that runs but returns the wrong result (Arctic-Text2SQL-R1)
    format_weight: float = 0.1  # weight of the format reward: one statement, ended by EOS


@dataclass
class EvalSection:
    data: DataSection = field(default_factory=lambda: DataSection(split="dev"))
    batch_size: int = 16
    max_new_tokens: int = 256
    timeout: float = 10.0
    samples: int = 1  # > 1: best-of decoding, N sampled candidates per question, scored apart from greedy
    vote: str = "execution"  # execution: the majority of execution results; executable: the first that runs
    schema_constrained: bool = False  # also decode with only the schema's names (sqlft.constrained)
    semantics: str = "auto"  # execution match: spider | bird | auto (BIRD's for BIRD data, else Spider's)
    ves_repeats: int = 0  # > 0 adds BIRD's R-VES, timing each matched pair this many times


@dataclass
class Preset:
    name: str = "custom"
    description: str = ""
    model: ModelSection = field(default_factory=ModelSection)
    prompt: PromptSection = field(default_factory=PromptSection)
    phase1: PhaseSection = field(default_factory=PhaseSection)
    phase2: PhaseSection = field(default_factory=PhaseSection)
    phase3: Phase3Section = field(default_factory=Phase3Section)
    eval: EvalSection = field(default_factory=EvalSection)
    wandb_project: str | None = None  # W&B stays off unless this is set and a key or WANDB_MODE allows it
    kaggle_dataset: str | None = None  # owner/slug the Kaggle kernels attach instead of Spider's
    origin: str = ""

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data.pop("origin")
        return data


CHOICES = {
    "model.quantization": {"nf4", "int8", "none"},
    "model.compute_dtype": {"auto", "fp32", "fp16", "bf16"},
    "model.placement": {"auto", "cpu", "single", "split", "ddp"},
    "model.lora": {"attention", "all-linear", "high-rank"},
    "prompt.schema": {"ddl", "compact", "mschema"},
    "scheduler": {"cosine", "linear", "constant", "constant_with_warmup"},
    "optimizer": {"auto", "paged_adamw_8bit", "adamw_torch", "adamw_8bit"},
    "data.source": {"spider", "gretel", "sql-create-context", "csv", "demo", "bird"},
    "eval.vote": {"execution", "executable"},
    "eval.semantics": {"auto", "spider", "bird"},
}
RENAMED = {"eval.num_samples": "eval.samples"}  # old key -> new key: presets written before keep working
# Allowed range of every numeric key, by field name: (lowest, highest, is the lowest itself excluded).
RANGES = {
    "learning_rate": (0, 1, True),
    "epochs": (0, 1000, False),
    "max_steps": (-1, 10**9, False),  # -1 (or 0): train for `epochs`
    "max_minutes": (0, 7 * 24 * 60, False),
    "batch_size": (1, 4096, False),
    "grad_accum": (1, 4096, False),
    "warmup_ratio": (0, 1, False),
    "eval_steps": (0, 10**9, False),  # 0: no evaluation
    "save_steps": (1, 10**9, False),
    "save_total_limit": (0, 10**6, False),
    "seed": (0, 2**32 - 1, False),
    "eval_limit": (0, 10**9, False),
    "sample_questions": (0, 10**6, False),
    "limit": (1, 10**9, False),
    "max_length": (16, 10**6, False),
    "sample_values": (0, 100, False),
    "value_retrieval": (0, 100, False),
    "max_new_tokens": (1, 10**5, False),
    "timeout": (0, 24 * 3600, True),
    "samples": (1, 1000, False),
    "lora_r": (1, 4096, False),
    "lora_alpha": (1, 10**5, False),
    "lora_dropout": (0, 1, False),
    "num_generations": (2, 1024, False),
    "max_completion_length": (1, 10**5, False),
    "temperature": (0, 100, True),
    "beta": (0, 100, False),
    "generation_batch_size": (0, 10**6, False),  # 0: TRL's default
    "execution_weight": (0, 1000, False),
    "runs_reward": (0, 1, False),
    "format_weight": (0, 1000, False),
    "ves_repeats": (0, 10**4, False),
}


def _check_range(key: str, name: str, value: Any, origin: str) -> None:
    """Raise for a number that is not finite or outside its key's range, naming both."""
    if name not in RANGES or isinstance(value, bool) or not isinstance(value, (int, float)):
        return
    low, high, low_excluded = RANGES[name]
    if not math.isfinite(value) or value < low or (low_excluded and value == low) or value > high:
        lowest = f"above {low}" if low_excluded else f"at least {low}"
        raise PresetError(
            f"{origin}: `{key}` is {value!r}. Fix: use a finite number {lowest} and at most {high}"
        )


def shipped_presets() -> list[str]:
    return sorted(p.name[:-5] for p in resources.files("sqlft.presets").iterdir() if p.name.endswith(".yaml"))


def preset_path(name_or_path: str | Path) -> Path:
    path = Path(name_or_path)
    if path.suffix in (".yaml", ".yml") or len(path.parts) > 1:
        if not path.is_file():
            raise PresetError(f"{path}: preset file not found")
        return path
    shipped = Path(str(resources.files("sqlft.presets").joinpath(f"{name_or_path}.yaml")))
    if not shipped.is_file():
        raise PresetError(
            f"unknown preset {name_or_path!r}. Fix: use one of {', '.join(shipped_presets())} or a path"
        )
    return shipped


def _build(cls: type, values: Any, where: str, origin: str) -> Any:
    """Instantiate dataclass `cls` from a mapping, checking every key and value type."""
    if not isinstance(values, dict):
        raise PresetError(
            f"{origin}: `{where or 'top level'}` must be a mapping, got {type(values).__name__}"
        )
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.name != "origin"}
    unknown = sorted(set(values) - set(fields))
    if unknown:
        key = f"{where}.{unknown[0]}" if where else unknown[0]
        raise PresetError(f"{origin}: unknown key `{key}`. Fix: use one of {', '.join(sorted(fields))}")
    kwargs = {}
    for name, value in values.items():
        key = f"{where}.{name}" if where else name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            # a partial section updates the section's defaults
            default = fields[name].default_factory()  # type: ignore[misc]
            if value is not None and not isinstance(value, dict):
                first_key = next(iter(dataclasses.asdict(default)))
                raise PresetError(
                    f"{origin}: `{key}` is a section, got {value!r}. "
                    f"Fix: set one of its keys, e.g. `{key}.{first_key}={value}`"
                )
            merged = {**dataclasses.asdict(default), **(value or {})}
            kwargs[name] = _build(hint, merged, key, origin)
        else:
            kwargs[name] = _check_value(key, name, value, hint, origin)
    return cls(**kwargs)


def _check_value(key: str, name: str, value: Any, hint: Any, origin: str) -> Any:
    types = [t for t in typing.get_args(hint) or (hint,) if t is not type(None)]
    if value is None:
        if type(None) not in typing.get_args(hint):
            raise PresetError(f"{origin}: `{key}` may not be empty")
        return None
    if float in types and isinstance(value, str):
        try:
            value = float(value)  # YAML 1.1 reads 1e-4 (no dot) as a string
        except ValueError:
            pass
    if float in types and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if isinstance(value, bool) and bool not in types or not isinstance(value, tuple(types)):
        raise PresetError(
            f"{origin}: `{key}` must be {' or '.join(t.__name__ for t in types)}, got {value!r}"
        )
    choices = CHOICES.get(key) or CHOICES.get(key.partition(".")[2])
    if choices and value not in choices:
        raise PresetError(f"{origin}: `{key}` is {value!r}. Fix: use one of {', '.join(sorted(choices))}")
    _check_range(key, name, value, origin)
    return value


def parse_override(text: str) -> tuple[str, Any]:
    """`phase1.learning_rate=2e-4` -> ("phase1.learning_rate", 0.0002); the value is read as YAML."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise PresetError(f"override {text!r} is not key=value. Fix: write e.g. phase1.learning_rate=2e-4")
    return key.strip(), yaml.safe_load(raw)


def load_preset(name_or_path: str | Path = "demo", overrides: dict[str, Any] | None = None) -> Preset:
    """Read a preset and apply dotted-key overrides; every key and value is validated."""
    path = preset_path(name_or_path)
    try:
        values = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as error:
        raise PresetError(f"{path}: not valid YAML: {error}") from error
    values = _renamed(values, str(path))
    for key, value in (overrides or {}).items():
        key = RENAMED.get(key, key)
        target = values
        *parents, leaf = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
            if not isinstance(target, dict):
                raise PresetError(f"override `{key}`: `{part}` is not a section")
        target[leaf] = value
    preset = _build(Preset, values, "", str(path))
    preset.origin = str(path)
    _check_groups(preset.phase3, str(path))
    return preset


def as_current(sections: dict[str, Any]) -> dict[str, Any]:
    """Preset sections an earlier sqlft recorded, as this one resolves them: renamed keys under their
    new names, keys added since at their defaults (so that upgrading sqlft redoes nothing). Sections
    that no longer validate come back as they were, and their differences show."""
    try:
        preset = _build(Preset, _renamed(copy.deepcopy(sections), "recorded"), "", "recorded settings")
    except PresetError:
        return sections
    resolved = preset.to_dict()
    return {name: resolved[name] for name in sections}


def _renamed(values: Any, origin: str) -> Any:
    """`values` with each RENAMED key under its new name; both names at once is an error."""
    for old, new in RENAMED.items():
        (section, old_leaf), new_leaf = old.split("."), new.split(".")[1]
        part = values.get(section) if isinstance(values, dict) else None
        if isinstance(part, dict) and old_leaf in part:
            if new_leaf in part:
                raise PresetError(f"{origin}: `{old}` and `{new}` are one setting. Fix: keep only `{new}`")
            part[new_leaf] = part.pop(old_leaf)
    return values


def _check_groups(phase3: Phase3Section, origin: str) -> None:
    """GRPO samples whole groups: the completions of one generation batch must hold whole groups."""
    p = phase3
    rows = p.generation_batch_size or p.batch_size * p.grad_accum
    if p.enabled and rows % p.num_generations:
        which = "generation_batch_size" if p.generation_batch_size else "batch_size x grad_accum"
        raise PresetError(
            f"{origin}: phase3 {which} is {rows} completions, not a multiple of "
            f"num_generations={p.num_generations}. Fix: make it a multiple (e.g. phase3.batch_size="
            f"{p.num_generations})"
        )
