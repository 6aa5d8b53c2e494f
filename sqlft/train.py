"""One training phase: completion-only loss, explicit precision, checkpoints, resume (TRL SFTTrainer).

Records are `{"prompt", "completion"}` (see `sqlft.prompts`). They are tokenised here rather than by
TRL so that the boundaries are exact: the prompt is tokenised alone and without special tokens,
exactly as `sqlft.generate` feeds it at inference (the chat template wrote any BOS), the
completion (SQL + EOS) follows, and only the completion tokens are supervised. TRL 1.16 would
tokenise `prompt + completion` as one string with the tokenizer's special tokens: a second BOS on
Llama/Mistral templates that already write one, and a prompt/completion boundary that can merge
into one token. The rows carry their labels, so the same objective also trains with the plain
Trainer and the model's own loss: used on CPU (TRL's fused LM-head loss was slower there) and
for a LoRA on lm_head, which SFTTrainer refuses (its fused loss reads lm_head.weight directly).
Records longer than `max_length` are dropped and counted, never truncated (a cut SQL target
teaches cut SQL).

A finished phase leaves in `output_dir`: `adapter/` (PEFT layout), `phase_config.json`,
`training_log.json` and the marker `phase_done.json`; a rerun finds the marker and skips. Each is
written atomically (`sqlft.atomic`), the marker last. The Trainer writes `checkpoint-N/` in place, so
resume takes the newest *complete* one (see `complete_checkpoint`) and removes any a kill cut short;
a resume whose settings differ from the checkpoint's is refused.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

from sqlft.atomic import atomic_dir, ensure_free_space, tree_size, write_json_atomic, write_text_atomic
from sqlft.budget import DECAYS, TimeBudget
from sqlft.checkpoints import ADAPTER_WEIGHTS, complete_checkpoint
from sqlft.checkpoints import checkpoints as _checkpoints
from sqlft.config import TrainerSettings
from sqlft.progress import ProgressFile

MARKER = "phase_done.json"
ADAPTER_DIR = "adapter"
CONFIG_FILE = "phase_config.json"
_DTYPES = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}
# PhaseConfig keys that say where and how to log, not what is trained: a resume may change them.
NOT_SETTINGS = {"output_dir", "report_to", "logging_steps"}
# Keys of a preset's phase section that are not trainer settings (they choose data and samples).
NON_TRAINER_KEYS = {"data", "eval_limit", "sample_questions", "enabled", "reason"}


@dataclass(kw_only=True)
class PhaseConfig(TrainerSettings):
    """Trainer settings for one phase (the preset's phase section) plus where and how to run them."""

    output_dir: str
    max_length: int = 1024
    compute_dtype: str = "auto"  # auto (from the model) | fp32 | fp16 | bf16
    report_to: str = "none"  # none | wandb
    group_by_length: bool = True  # batches of similar length: little padding without packing
    logging_steps: int = 1
    # TRL's fused LM-head loss (no full logits: less GPU memory) or the model's own loss, same objective.
    # None: fused on GPU, plain on CPU, where the fused head was 1.15-1.7x slower per step in every
    # A/B run (benchmarks/bench_train.py).
    fused_loss: bool | None = None

    @classmethod
    def from_dict(cls, values: Any, **extra: Any) -> PhaseConfig:
        """From a dict or a preset phase section (dataclass); `extra` adds output_dir, max_length, ..."""
        if dataclasses.is_dataclass(values):
            values = dataclasses.asdict(values)
        values = {k: v for k, v in {**values, **extra}.items() if k not in NON_TRAINER_KEYS}
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValueError(f"phase config: unknown keys {unknown}. Fix: use only {sorted(known)}")
        if not 0 <= values.get("warmup_ratio", 0) < 1:
            raise ValueError(f"phase config: warmup_ratio={values['warmup_ratio']} must be in [0, 1)")
        return cls(**values)


@dataclass
class TrainResult:
    output_dir: str
    adapter_dir: str | None  # None when the run stopped before the end
    global_step: int
    finished: bool
    skipped: bool = False  # the phase was already done and was not rerun
    train_loss: float | None = None
    losses: list[dict[str, float]] = field(default_factory=list)  # {"step", "loss"} per logged step
    dropped_too_long: int = 0
    seconds: float = 0.0
    planned_steps: int = 0  # the steps the phase's data and epochs (or max_steps) ask for
    stopped_by_budget: bool = False  # max_minutes ended it before planned_steps

    def extent(self) -> str:
        """How much of the planned data the phase saw, for its notebook and metrics."""
        share = (
            f" ({self.global_step / self.planned_steps:.0%} of the planned data)"
            if self.planned_steps
            else ""
        )
        why = ", stopped by its max_minutes budget" if self.stopped_by_budget else ""
        return f"step {self.global_step} of {self.planned_steps} planned{share}{why}"


def compute_dtype(model: Any) -> torch.dtype:
    """The dtype the model computes in: bitsandbytes' compute dtype if quantised, else its weights' dtype."""
    quant = getattr(getattr(model, "config", None), "quantization_config", None)
    if quant is not None:
        get = quant.get if isinstance(quant, dict) else lambda k, d=None: getattr(quant, k, d)
        dtype = get("bnb_4bit_compute_dtype") if get("load_in_4bit", False) else None
        if dtype is not None:
            return getattr(torch, dtype) if isinstance(dtype, str) else dtype
    for param in model.parameters():
        if param.is_floating_point() and not param.requires_grad:
            return param.dtype
    return torch.float32


def tokenize_records(
    records: list[dict[str, Any]], tokenizer: Any, max_length: int
) -> tuple[list[dict[str, list[int]]], int]:
    """input_ids / labels / length per record, and how many were dropped as too long.

    Labels are -100 over the prompt and the token ids over the completion (SQL and its EOS).

    Both parts are tokenised without special tokens, as `sqlft.generate` tokenises prompts: the
    chat template already wrote any BOS. The completion ends in exactly one EOS (appended if the
    text lacks it).
    """
    eos_id = tokenizer.eos_token_id
    rows, dropped = [], 0
    for record in records:
        prompt, completion = record["prompt"], record["completion"]
        prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
        completion_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if not completion_ids or completion_ids[-1] != eos_id:
            completion_ids.append(eos_id)
        ids = prompt_ids + completion_ids
        if len(ids) > max_length:
            dropped += 1
            continue
        labels = [-100] * len(prompt_ids) + completion_ids
        rows.append({"input_ids": ids, "labels": labels, "length": len(ids)})
    return rows, dropped


def _time_decay(config: PhaseConfig) -> str | None:
    """The decay that sqlft.budget.TimeBudget drives over a time budget, through a constant scheduler."""
    return config.scheduler if config.max_minutes > 0 and config.scheduler in DECAYS else None


def trainer_arguments(config: PhaseConfig, model: Any, on_gpu: bool) -> dict[str, Any]:
    """The TrainingArguments every phase shares (SFT or GRPO): rate, schedule, optimizer, precision,
    checkpoints, logging and seed, all explicit."""
    dtype = compute_dtype(model) if config.compute_dtype == "auto" else _DTYPES[config.compute_dtype]
    optimizer = (
        config.optimizer if config.optimizer != "auto" else "paged_adamw_8bit" if on_gpu else "adamw_torch"
    )
    return dict(
        output_dir=config.output_dir,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps,
        per_device_train_batch_size=config.batch_size,
        gradient_accumulation_steps=config.grad_accum,
        warmup_steps=config.warmup_ratio,  # transformers 5: a float below 1 is a ratio of all steps
        lr_scheduler_type="constant" if _time_decay(config) else config.scheduler,
        optim=optimizer,
        # precision always explicit: SFTConfig otherwise turns bf16 on by itself
        fp16=on_gpu and dtype == torch.float16,
        bf16=on_gpu and dtype == torch.bfloat16,
        use_cpu=not on_gpu,
        gradient_checkpointing=on_gpu and config.gradient_checkpointing,
        # non-reentrant checkpointing needs no input that requires grad, so frozen embeddings are fine
        gradient_checkpointing_kwargs={"use_reentrant": False},
        save_strategy="steps",
        save_steps=config.save_steps,
        save_total_limit=config.save_total_limit,
        logging_steps=config.logging_steps,
        seed=config.seed,
        data_seed=config.seed,
        report_to=["wandb"] if config.report_to == "wandb" else "none",
        dataloader_num_workers=0,
        # every LoRA weight gets a gradient each step: no search for unused ones (transformers' default
        # for a PeftModel under DDP is True, a slower step and a warning every step)
        ddp_find_unused_parameters=False,
    )


def pin_one_gpu(args: Any) -> Any:
    """One process and several visible GPUs (placement single, or auto without a launcher): the model
    sits on GPU 0, so the Trainer must count one device; with two it wraps the model in DataParallel,
    which TRL's trainers refuse. Returns `args`, with `n_gpu` 1 in that case."""
    if args.world_size == 1 and args.n_gpu > 1:  # reading n_gpu sets up the devices first
        args._n_gpu = 1
    return args


def _training_args(config: PhaseConfig, model: Any, has_eval: bool, on_gpu: bool):
    from trl import SFTConfig

    evaluate = has_eval and config.eval_steps > 0
    args = SFTConfig(
        **trainer_arguments(config, model, on_gpu),
        per_device_eval_batch_size=config.batch_size,
        eval_strategy="steps" if evaluate else "no",
        eval_steps=config.eval_steps if evaluate else None,
        max_length=config.max_length,
        completion_only_loss=True,
        train_sampling_strategy="group_by_length" if config.group_by_length else "random",
        length_column_name="length",
        include_num_input_tokens_seen="non_padding",  # logged as num_input_tokens_seen: throughput
    )
    return pin_one_gpu(args)


def _losses(log_history: list[dict[str, Any]]) -> list[dict[str, float]]:
    return [{"step": e["step"], "loss": e["loss"]} for e in log_history if "loss" in e]


def _load_finished(model: Any, output_dir: Path) -> TrainResult:
    """Put a finished phase's adapter weights into `model` and return its recorded result."""
    from peft import set_peft_model_state_dict
    from peft.utils import load_peft_weights

    marker = json.loads((output_dir / MARKER).read_text())
    set_peft_model_state_dict(model, load_peft_weights(str(output_dir / ADAPTER_DIR)))
    print(f"{output_dir}: phase already finished at step {marker['global_step']}; loaded its adapter")
    return TrainResult(**{**marker, "skipped": True})


def _settings(config: PhaseConfig) -> dict[str, Any]:
    return {k: v for k, v in dataclasses.asdict(config).items() if k not in NOT_SETTINGS}


def _check_resume_settings(config: PhaseConfig, output_dir: Path) -> None:
    """Refuse to resume a phase whose recorded settings differ from `config`: the result would mix both."""
    from sqlft.rundir import differences

    path = output_dir / CONFIG_FILE
    if not path.is_file():
        return
    recorded = {k: v for k, v in json.loads(path.read_text()).items() if k not in NOT_SETTINGS}
    changed = differences(recorded, _settings(config))
    if changed:
        raise ValueError(
            f"{output_dir}: the checkpoints there were trained with other settings ({'; '.join(changed)}). "
            f"Fix: keep the old values to resume, redo the phase (`sqlft run --force --steps "
            f"{output_dir.name}`), or pass another --out"
        )


class SaveGuard(TrainerCallback):
    """Stops training before a checkpoint save that the disk has no room for (a half-written checkpoint
    would be lost anyway). A checkpoint's size is known after the first; before it, estimated."""

    def __init__(self, output_dir: Path, model: Any):
        self.output_dir = output_dir
        trainable = sum(p.numel() * p.element_size() for p in model.parameters() if p.requires_grad)
        self.estimate = 3 * trainable + 100_000  # at least: weights + two Adam moments + small states

    def on_step_end(self, args, state, control, **kwargs):
        if control.should_save:
            latest = _checkpoints(self.output_dir)
            needed = tree_size(latest[0]) if latest else self.estimate
            ensure_free_space(self.output_dir, needed, f"checkpoint-{state.global_step}")
        return control


def _lm_head_has_lora(model: Any) -> bool:
    head = model.get_output_embeddings()
    return head is not None and hasattr(head, "lora_A")


def build_trainer(
    model: Any,
    tokenizer: Any,
    train_records: list[dict[str, Any]],
    eval_records: list[dict[str, Any]] | None,
    config: PhaseConfig,
    callbacks: list[Any] | None = None,
):
    """The SFTTrainer for a phase, on pre-tokenised records; returns it and the count dropped as too long."""
    from datasets import Dataset
    from transformers import Trainer
    from trl import SFTTrainer
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    if tokenizer.pad_token is None:
        raise ValueError("tokenizer has no pad token. Fix: set tokenizer.pad_token (sqlft.model does this)")
    train_rows, dropped = tokenize_records(train_records, tokenizer, config.max_length)
    if not train_rows:
        raise ValueError(f"no training record fits max_length={config.max_length}. Fix: raise max_length")
    eval_rows, eval_dropped = tokenize_records(eval_records or [], tokenizer, config.max_length)
    if dropped or eval_dropped:
        print(f"dropped {dropped} train and {eval_dropped} eval records over {config.max_length} tokens")
    on_gpu = any(p.device.type == "cuda" for p in model.parameters())
    kwargs = dict(
        model=model,
        args=_training_args(config, model, bool(eval_rows), on_gpu),
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
    fused = on_gpu if config.fused_loss is None else config.fused_loss
    if fused and not _lm_head_has_lora(model):
        trainer = SFTTrainer(**kwargs)
        # TRL casts a quantised model's adapters to bf16; a T4's fp16 grad scaler refuses them (gpu_check)
        for param in model.parameters():
            if param.requires_grad and param.dtype != torch.float32:
                param.data = param.data.float()
        return trainer, dropped
    # TRL 1.16's SFTTrainer always computes log-probs from lm_head.weight directly, and so refuses a
    # LoRA on lm_head (the high-rank preset). The rows already hold their labels, so the plain Trainer
    # with TRL's collator trains the same objective with the model's own loss.
    collator = DataCollatorForLanguageModeling(pad_token_id=tokenizer.pad_token_id)
    return Trainer(data_collator=collator, **kwargs), dropped


def train(
    model: Any,
    tokenizer: Any,
    train_records: list[dict[str, Any]],
    eval_records: list[dict[str, Any]] | None,
    config: PhaseConfig | dict[str, Any],
    *,
    resume: bool = False,
    skip_finished: bool = True,
    callbacks: list[Any] | None = None,
    build: Any = None,
) -> TrainResult:
    """Train the LoRA `model` (see `sqlft.lora.add_lora`) for one phase and save its adapter.

    `resume=True` continues from the last checkpoint in output_dir (same step, optimizer and
    scheduler). A phase whose marker exists is not rerun when `skip_finished`: its adapter is
    loaded into `model` instead, so that what follows sees the trained weights. `build` makes the
    trainer (`build_trainer`'s signature; `sqlft.rl` passes its GRPO trainer): checkpoints, resume,
    time budget, progress file, save guard and the phase's files are the same for every trainer.
    """
    config = config if isinstance(config, PhaseConfig) else PhaseConfig.from_dict(config)
    output_dir = Path(config.output_dir)
    if skip_finished and (output_dir / MARKER).is_file():
        return _load_finished(model, output_dir)

    budget = (
        TimeBudget(config.max_minutes, _time_decay(config), config.warmup_ratio)
        if config.max_minutes > 0
        else None
    )
    checkpoint = complete_checkpoint(output_dir) if resume and output_dir.is_dir() else None
    if resume and checkpoint is None:
        print(f"{output_dir}: no checkpoint to resume from; starting at step 0")
    if checkpoint is not None:
        _check_resume_settings(config, output_dir)
        print(f"{output_dir}: resuming from {checkpoint.name}")
    guard = SaveGuard(output_dir, model)
    progress = ProgressFile(output_dir / "progress.json")
    callbacks = [*(callbacks or []), guard, progress, *([budget] if budget else [])]
    trainer, dropped = (build or build_trainer)(
        model, tokenizer, train_records, eval_records, config, callbacks
    )
    if budget:
        budget.attach(trainer)
        if checkpoint is not None:
            budget.restore(json.loads((checkpoint / "trainer_state.json").read_text()))
    if trainer.is_world_process_zero():
        write_json_atomic(output_dir / CONFIG_FILE, dataclasses.asdict(config), indent=1)
    started = time.monotonic()
    outcome = trainer.train(resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    state = trainer.state
    result = TrainResult(
        output_dir=str(output_dir),
        adapter_dir=None,
        global_step=state.global_step,
        finished=state.global_step >= state.max_steps or bool(budget and budget.spent),
        train_loss=outcome.training_loss,
        losses=_losses(state.log_history),
        dropped_too_long=dropped,
        seconds=round(time.monotonic() - started, 2),
        planned_steps=state.max_steps,
        stopped_by_budget=bool(budget and budget.spent) and state.global_step < state.max_steps,
    )
    if result.finished:
        result.adapter_dir = str(output_dir / ADAPTER_DIR)
    if trainer.is_world_process_zero():  # under data parallelism one process writes the files
        _write_phase(trainer, tokenizer, config, result)
    trainer.accelerator.wait_for_everyone()
    return result


def _write_phase(trainer: Any, tokenizer: Any, config: PhaseConfig, result: TrainResult) -> None:
    """Training log always; the adapter, its tokenizer and the marker (last) once finished, each atomic.

    The adapter is saved whole into a temporary folder and renamed, after a check that the disk has
    room for it (about the size of the newest checkpoint's adapter files).
    """
    output_dir = Path(config.output_dir)
    write_text_atomic(output_dir / "training_log.json", json.dumps(trainer.state.log_history, indent=1))
    if result.adapter_dir:
        latest = _checkpoints(output_dir)
        weights = [latest[0] / name for name in ADAPTER_WEIGHTS if latest and (latest[0] / name).is_file()]
        ensure_free_space(output_dir, tree_size(weights[0]) if weights else 0, "the adapter")
        with atomic_dir(result.adapter_dir) as temp:
            trainer.model.save_pretrained(temp)
            tokenizer.save_pretrained(temp)
        write_json_atomic(output_dir / MARKER, dataclasses.asdict(result), indent=1)
