"""The recipe's steps as the notebooks call them: each takes the preset and the run directory.

Everything here is glue between `sqlft.config` and the library (data, model, LoRA, training,
generation, metrics), so that a notebook cell is one readable call and `sqlft train` (used for
multi-GPU runs under `accelerate launch`) runs exactly the same code.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlft.config import DataSection, Preset, load_preset
from sqlft.data.prepare import Prepared, prepare_records
from sqlft.jsonl import write_jsonl
from sqlft.rundir import RunDir

PHASES = ("phase1", "phase2", "phase3")  # phase 3: GRPO with an execution reward (sqlft.rl)


def setup(
    preset: str, overrides: dict[str, Any] | None, run_dir: str, previous_runs: list[str] | None = None
):
    """Load and validate the preset, open the run directory, adopt finished steps of earlier runs."""
    config = load_preset(preset, overrides)
    run = RunDir(Path(run_dir))
    run.root.mkdir(parents=True, exist_ok=True)
    adopted = run.adopt(previous_runs or [], config.to_dict())
    if adopted:
        print(f"adopted finished steps from earlier runs: {', '.join(adopted)}")
    if wandb_enabled(config):
        os.environ.setdefault("WANDB_PROJECT", config.wandb_project)
        os.environ.setdefault("WANDB_DIR", str(run.root))  # offline runs stay inside the run directory
        mode = os.environ.get("WANDB_MODE", "online")
        print(f"W&B logging on: project {config.wandb_project}, mode {mode}")
    return config, run


def wandb_enabled(config: Preset) -> bool:
    """W&B is off unless the preset names a project and a key or WANDB_MODE turns it on."""
    mode = os.environ.get("WANDB_MODE", "").lower()
    if not config.wandb_project or mode == "disabled":
        return False
    return mode in ("online", "offline") or bool(os.environ.get("WANDB_API_KEY"))


def load_tokenizer(config: Preset):
    from sqlft.model import load_tokenizer as load

    return load(config.model.name)


def load_model(config: Preset):
    """The base model as the preset asks (quantisation, compute dtype, placement)."""
    from sqlft.model import load_model_and_tokenizer

    m = config.model
    return load_model_and_tokenizer(
        m.name,
        quantization=m.quantization,
        compute_dtype=m.compute_dtype,
        placement=m.placement,
        max_memory_per_gpu=m.max_memory_per_gpu,
        # fp16 (a T4): eager attention forms QK^T in fp16 before scaling it (transformers 5 does not
        # upcast phi's), which overflows where SDPA, scaling inside with fp32 accumulation, does not
        attn_implementation="sdpa" if m.compute_dtype == "fp16" else None,
    )


def prepare(config: Preset, data: DataSection, tokenizer: Any, out: str | Path | None = None) -> Prepared:
    """Records with prompts for one data section; written to `out` as JSON Lines when given.

    `prompt.max_length` guards training data only: the eval section's questions are all asked and
    scored, however long their prompts, as the official evaluators count them (a dropped long-schema
    question would leave an easier set, and a longer schema format would look better than it is)."""
    p = config.prompt
    scored_whole = data is config.eval.data
    prepared = prepare_records(
        data.source,
        data.path,
        data.split,
        schema_style=p.schema,
        sample_values=p.sample_values,
        value_retrieval=p.value_retrieval,
        tokenizer=tokenizer,
        max_length=None if scored_whole else p.max_length,
        template=p.template,
        system=p.system,
        limit=data.limit,
        descriptions=p.descriptions and data.source == "bird",
    )
    if out is not None:
        prepared.save(out)
    return prepared


def prepare_phase(config: Preset, phase: str, run: RunDir, tokenizer: Any) -> tuple[Prepared, Prepared]:
    """A phase's training records and the dev records it is evaluated on, saved for `train_phase`."""
    section = getattr(config, phase)
    train_set = prepare(config, section.data, tokenizer, out=run.step_dir(phase) / "train.jsonl")
    dev = prepare(config, config.eval.data, tokenizer, out=run.step_dir(phase) / "eval.jsonl")
    return train_set, dev


def show_prepared(prepared: Prepared, label: str = "training") -> None:
    """What was kept and dropped, prompt lengths, and one example exactly as the model sees it."""
    print(prepared.summary())
    first = prepared.records[0]
    print(f"\n--- {label} prompt ---\n{first['prompt']}\n--- completion ---\n{first['completion']}")


def predict_and_score(config: Preset, model: Any, tokenizer: Any, prepared: Prepared, run: RunDir, step: str):
    """Generate SQL for every record, score it, write predictions and report into the step's folder.

    With `eval.schema_constrained` the records are decoded a second time naming only their schema's
    tables and columns, into `predictions_constrained.jsonl` and `report_constrained.json`. With
    `eval.samples` > 1 each decoding also samples that many candidates per question; the summary's
    `best_of` is the accuracy of the one `eval.vote` picks, beside greedy's (never mixed into it).
    """
    from sqlft.evaluate import evaluate_predictions, write_report
    from sqlft.evaluate.consistency import best_of
    from sqlft.generate import add_sampled_candidates, predict_records

    e = config.eval

    def decode_and_score(schemas: list | None) -> dict[str, Any]:
        settings = {"batch_size": e.batch_size, "max_new_tokens": e.max_new_tokens, "schemas": schemas}
        predictions = predict_records(model, tokenizer, prepared.records, **settings)
        if e.samples > 1:  # sampled candidates for best-of decoding, beside greedy `pred`
            add_sampled_candidates(model, tokenizer, predictions, e.samples, seed=0, **settings)
        constrained = schemas is not None
        write_jsonl(predictions, run.predictions(step, constrained=constrained))
        report = evaluate_predictions(
            predictions,
            prepared.db_dir,
            timeout_s=e.timeout,
            semantics=e.semantics,
            ves_repeats=e.ves_repeats,
        )
        if e.samples > 1:
            report["summary"]["best_of"] = best_of(report["summary"], e.samples, e.vote)
        extent = training_extent(run, step) if step in PHASES else None
        if extent:  # how much of its data the phase saw
            report["summary"]["training"] = extent
        write_report(report, run.report(step, constrained=constrained))
        return report

    report = decode_and_score(None)
    if e.schema_constrained:
        from sqlft.constrained import record_schemas

        decode_and_score(record_schemas(prepared.records, prepared.db_dir))
    if step in PHASES:  # the phase's adapter explains itself wherever it is copied or pushed
        from sqlft.modelcard import write_model_card

        write_model_card(run.adapter(step), base_model=config.model.name, run_dir=run.root, preset=config)
    return report


def training_extent(run: RunDir, phase: str) -> dict[str, Any] | None:
    """Steps trained, steps planned and whether the time budget stopped the phase (from phase_done.json)."""
    from sqlft.train import MARKER

    path = run.root / phase / MARKER
    if not path.is_file():
        return None
    done = json.loads(path.read_text())
    return {
        "steps": done["global_step"],
        "planned_steps": done.get("planned_steps"),
        "stopped_by_budget": done.get("stopped_by_budget", False),
    }


def phase_config(config: Preset, phase: str, run: RunDir):
    """Trainer settings for `phase`: the preset's section plus where to write and at what precision."""
    from sqlft.rl import RLConfig
    from sqlft.train import PhaseConfig

    section = getattr(config, phase)
    # phase 3's queries run under `sqlft eval`'s time limit
    kind, extra = (RLConfig, {"timeout": config.eval.timeout}) if phase == "phase3" else (PhaseConfig, {})
    return kind.from_dict(
        section,
        output_dir=str(run.step_dir(phase)),
        max_length=config.prompt.max_length,
        compute_dtype=config.model.compute_dtype,
        report_to="wandb" if wandb_enabled(config) else "none",
        **extra,
    )


def train_phase(
    config: Preset, phase: str, run: RunDir, *, live_plot: bool = False, callbacks: list | None = None
):
    """Load the base, add (or continue) the adapter, train on the phase's prepared records.

    Phase 2 continues the phase-1 adapter, phase 3 (GRPO, `sqlft.rl`) the phase-2 adapter.
    Records come from `<phase>/train.jsonl` and `<phase>/eval.jsonl`, written by the notebook's
    data step. An interrupted phase resumes from its last checkpoint.
    """
    from sqlft.callbacks import SQLSampleCallback
    from sqlft.lora import add_lora
    from sqlft.train import train

    if phase not in PHASES:
        raise ValueError(f"phase must be one of {PHASES}, not {phase!r}")
    if run.settings(phase) is None:  # a kernel runs without `sqlft run`: a later session adopts by these
        run.record_settings(phase, config.to_dict())
    section = getattr(config, phase)
    train_data = Prepared.load(run.root / phase / "train.jsonl")
    train_records = train_data.records
    dev = Prepared.load(run.root / phase / "eval.jsonl")
    eval_records = dev.records
    model, tokenizer = load_model(config)
    adapter = None
    if phase in ("phase2", "phase3"):
        previous = PHASES[PHASES.index(phase) - 1]
        run.require(previous)
        adapter = run.adapter(previous)
    m = config.model
    overrides = {
        k: v
        for k, v in {"r": m.lora_r, "lora_alpha": m.lora_alpha, "lora_dropout": m.lora_dropout}.items()
        if v is not None
    }
    model = add_lora(
        model,
        m.lora,
        adapter=adapter,
        gradient_checkpointing=section.gradient_checkpointing,
        seed=section.seed,
        **({} if adapter else overrides),
    )
    callbacks = list(callbacks or [])
    samples = eval_records[: section.sample_questions]
    if samples:
        callbacks.append(
            SQLSampleCallback(
                tokenizer,
                samples,
                db_dir=dev.db_dir,
                max_new_tokens=config.eval.max_new_tokens,
                csv_path=run.root / phase / "sql_samples.csv",
                schema_constrained=config.eval.schema_constrained,
                every=section.eval_steps if phase == "phase3" else 0,  # GRPO never evaluates
            )
        )
    if live_plot and phase != "phase3":  # GRPO's loss is not a curve to watch: see reward_curves
        from sqlft.notebook import LiveLossPlot

        callbacks.append(LiveLossPlot(title=f"{phase} training loss"))
    settings = phase_config(config, phase, run)
    if phase != "phase3":
        result = train(
            model,
            tokenizer,
            train_records,
            eval_records[: section.eval_limit] or None,
            settings,
            resume=True,
            callbacks=callbacks,
        )
        return model, tokenizer, result
    from functools import partial

    from sqlft.evaluate.bird import resolve_semantics
    from sqlft.rl import SQLReward, build_grpo_trainer

    reward = SQLReward(
        train_data.db_dir,
        settings.timeout,
        section.runs_reward,
        resolve_semantics(config.eval.semantics, train_records),  # as `sqlft eval` decides
    )
    try:
        result = train(
            model,
            tokenizer,
            train_records,
            None,
            settings,
            resume=True,
            callbacks=callbacks,
            build=partial(build_grpo_trainer, reward=reward),
        )
    finally:
        reward.close()
    return model, tokenizer, result


def phase3_enabled(config: Preset, run: RunDir) -> bool:
    """True when the preset runs phase 3; otherwise say why and mark the step done as skipped, so
    that the evaluation compares only the steps that ran."""
    p = config.phase3
    if p.enabled:
        print(f"phase 3 of {config.name}: on. {p.reason}".rstrip())
        return True
    reason = p.reason or "the preset leaves phase3.enabled false"
    print(f"phase 3 of {config.name}: skipped. {reason}")
    run.mark_done("phase3", skipped=True, reason=reason)
    return False


def plot_rewards(run: RunDir, phase: str = "phase3"):
    """Each reward function's mean per logged step (and their weighted total), from the training log."""
    from sqlft.rl import plot_reward_curves

    log = run.root / phase / "training_log.json"
    if not log.is_file():
        return "no training log"
    return plot_reward_curves(json.loads(log.read_text()), run.figures / f"{phase}_rewards.png")


def data_parallel_gpus(config: Preset) -> int:
    """How many GPUs a `ddp` (or `auto`) preset trains on here under `accelerate launch`; 0 means
    train in this process (one GPU, a split model, the CPU, or already inside a launcher)."""
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    launched = int(os.environ.get("WORLD_SIZE", "1")) > 1
    return gpus if config.model.placement in ("ddp", "auto") and gpus > 1 and not launched else 0


def load_trained(config: Preset, phase: str, run: RunDir):
    """The base model with a finished phase's adapter, for predictions."""
    from peft import PeftModel

    adapter = run.adapter(phase)
    if not (adapter / "adapter_config.json").is_file():
        raise FileNotFoundError(f"{adapter}: no trained adapter. Fix: run the {phase} training step first")
    model, tokenizer = load_model(config)
    return PeftModel.from_pretrained(model, str(adapter)), tokenizer


def run_phase(config: Preset, phase: str, run: RunDir, overrides: dict[str, Any] | None = None):
    """Train `phase` here (live loss curve) or, for a data-parallel preset on several GPUs, under
    `accelerate launch`; returns the trained model and its tokenizer for predictions."""
    gpus = data_parallel_gpus(config)
    if gpus:
        train_phase_distributed(str(config.origin), overrides or {}, phase, run, gpus)
        from sqlft.train import MARKER, TrainResult

        print(f"{phase}: {TrainResult(**json.loads((run.root / phase / MARKER).read_text())).extent()}")
        return load_trained(config, phase, run)
    model, tokenizer, result = train_phase(config, phase, run, live_plot=True)
    print(f"{phase}: {result.extent()}; trained in {result.seconds:.0f} s; adapter in {result.adapter_dir}")
    return model, tokenizer


def train_phase_distributed(
    preset_path: str, overrides: dict[str, Any], phase: str, run: RunDir, gpus: int
) -> None:
    """Run `sqlft train` under `accelerate launch`, one data-parallel replica per GPU."""
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--num_processes",
        str(gpus),
        "-m",
        "sqlft.cli",
        "train",
        "--preset",
        preset_path,
        "--phase",
        phase,
        "--run-dir",
        str(run.root),
    ]
    for key, value in overrides.items():
        command += ["-p", f"{key}={json.dumps(value)}"]
    print("running:", " ".join(command))
    subprocess.run(command, check=True)
