"""The T4's fp16-compute + float32-adapter chain, as far as a CPU runs it.

On a T4 the Trainer computes in fp16 under autocast with a grad scaler, through TRL's SFTTrainer and
its fused LM-head loss; the grad scaler refuses adapters that are not float32. Here, with the
preset's model swapped for the tiny model of its family (NF4, fp16 compute as the preset says): build
the trainer exactly as a GPU run does (`fused_loss=True`), check the adapter dtypes after it is
built, then one step by hand: gradient checkpointing as the preset says, fp16 autocast on the CPU, the
fused loss, a CPU grad scaler's scale/unscale/step, the preset's optimizer; every lora_B must move.
What stays GPU-only: the CUDA fp16 kernels themselves.
"""

from __future__ import annotations

import torch

from sqlft.config import load_preset
from sqlft.plan import read_config


def _dtypes(model, trainable: bool) -> list[str]:
    return sorted(
        {str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.requires_grad == trainable}
    )


def check_precision_chain(preset_name: str, output_dir: str) -> dict:
    """One fp16-autocast, loss-scaled step of the preset's trainer on its family's tiny model."""
    from gpu_check_ddp import optimizer_name, replacements

    from sqlft.lora import add_lora
    from sqlft.recipe import load_model
    from sqlft.testing import CORPUS, chat_prompt
    from sqlft.train import PhaseConfig, build_trainer

    preset = load_preset(preset_name)
    overrides = replacements(read_config(preset.model.name, hub=False)[0]["model_type"])
    config = load_preset(preset_name, {"model.name": overrides["model.name"]})
    model, tokenizer = load_model(config)
    model = add_lora(model, config.model.lora, r=config.model.lora_r or 16, seed=0)
    records = [{"prompt": chat_prompt(tokenizer, q), "completion": s} for q, s in CORPUS[:8]]
    phase = PhaseConfig.from_dict(
        config.phase1,
        output_dir=output_dir,
        max_length=config.prompt.max_length,
        compute_dtype=config.model.compute_dtype,
        fused_loss=True,  # the GPU's path: TRL's SFTTrainer with its fused LM-head loss
        max_steps=1,
    )
    trainer, _ = build_trainer(model, tokenizer, records, None, phase)
    result = {
        "trainer": type(trainer).__name__,
        "adapter_dtypes_after_trainer": _dtypes(model, True),
        "frozen_dtypes": _dtypes(model, False),
        "problems": [],
    }
    problems = result["problems"]
    if result["adapter_dtypes_after_trainer"] != ["float32"]:
        problems.append(f"adapters are {result['adapter_dtypes_after_trainer']} after the trainer: the fp16 "
                        "grad scaler needs float32")  # fmt: skip
    if config.phase1.gradient_checkpointing:  # what the Trainer turns on for a GPU run (off on a CPU)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    trainer.create_optimizer()
    batch = next(iter(trainer.get_train_dataloader()))
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    scaler = torch.amp.GradScaler("cpu", init_scale=2.0**10)
    try:
        with torch.autocast("cpu", dtype=torch.float16):
            loss = trainer.compute_loss(model, batch)
        scaler.scale(loss).backward()
        scaler.unscale_(trainer.optimizer)
        scaler.step(trainer.optimizer)
        scaler.update()
    except (RuntimeError, NotImplementedError) as error:
        problems.append(f"the fp16 autocast + grad scaler step failed: {error}")
        return result
    # lora_A cannot move on the first step (lora_B starts at zero, so A's gradient is zero); every B must
    moved = sum(not torch.equal(before[n], p) for n, p in model.named_parameters() if "lora_B" in n)
    b_count = sum("lora_B" in n for n in before)
    result.update(
        loss=round(float(loss), 4),
        optimizer=optimizer_name(trainer.optimizer),
        gradient_checkpointing=config.phase1.gradient_checkpointing,
        lora_b_updated=f"{moved}/{b_count}",
        grad_scale=scaler.get_scale(),
    )
    if not torch.isfinite(loss):
        problems.append(f"the fp16 loss is {float(loss)}")
    if moved != b_count:
        problems.append(f"the scaled step updated {moved} of {b_count} lora_B weights; all get a gradient")
    return result
