"""The T4's fp16-compute + float32-adapter chain: on the CPU as far as it runs there, on CUDA for real.

On a T4 the Trainer computes in fp16 under autocast with a grad scaler, through TRL's SFTTrainer and
its fused LM-head loss (phase 3: TRL's GRPOTrainer); the grad scaler refuses adapters that are not
float32. Here, with the preset's model swapped for the tiny model of its family (NF4, fp16 compute
as the preset says): build the trainer exactly as a GPU run does (`fused_loss=True`), check the
adapter dtypes after it is built, then one step by hand: gradient checkpointing as the preset says,
fp16 autocast on the CPU, the loss, a CPU grad scaler's scale/unscale/step, the preset's optimizer;
every lora_B must move. `device="cuda"` takes the same steps under `torch.autocast("cuda")` with
`torch.amp.GradScaler("cuda")` at its default scale (gpu_check --cuda), several of them, and checks
that the scaler does not skip every step.
"""

from __future__ import annotations

import torch

from sqlft.config import load_preset
from sqlft.plan import read_config


def _dtypes(model, trainable: bool) -> list[str]:
    return sorted(
        {str(p.dtype).removeprefix("torch.") for p in model.parameters() if p.requires_grad == trainable}
    )


def _tiny_of_family(preset_name: str, device: str = "cpu"):
    """The preset with its model swapped for the tiny model of the same family, loaded as the preset
    says (NF4, its compute dtype), with the preset's LoRA added; on CUDA the whole model on GPU 0."""
    from gpu_check_ddp import replacements

    from sqlft.lora import add_lora
    from sqlft.recipe import load_model

    preset = load_preset(preset_name)
    overrides = replacements(read_config(preset.model.name, hub=False)[0]["model_type"])
    placement = "single" if device == "cuda" else preset.model.placement
    config = load_preset(preset_name, {"model.name": overrides["model.name"], "model.placement": placement})
    model, tokenizer = load_model(config)
    return config, add_lora(model, config.model.lora, r=config.model.lora_r or 16, seed=0), tokenizer


def _scaled_step(
    trainer, model, batch, gradient_checkpointing: bool, result: dict, device: str = "cpu", steps: int = 1
) -> None:
    """`steps` steps by hand as the GPU's Trainer takes them: fp16 autocast on `device`, a grad scaler's
    scale/unscale/step/update, the trainer's optimizer; every lora_B must move and the scaler must not
    skip every step (a scale that only halves). On the CPU the scaler starts at 2**10, on CUDA at
    accelerate's default. Adds to `result`."""
    from gpu_check_ddp import optimizer_name

    problems = result["problems"]
    if result["adapter_dtypes_after_trainer"] != ["float32"]:
        problems.append(f"adapters are {result['adapter_dtypes_after_trainer']} after the trainer: the fp16 "
                        "grad scaler needs float32")  # fmt: skip
    if gradient_checkpointing:  # what the Trainer turns on for a GPU run (off on a CPU)
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    model.train()
    trainer.create_optimizer()
    batch = {k: v.to(device) if torch.is_tensor(v) else v for k, v in batch.items()}
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    scaler = torch.amp.GradScaler(device, **({"init_scale": 2.0**10} if device == "cpu" else {}))
    scales, losses = [scaler.get_scale()], []
    try:
        for _ in range(steps):
            with torch.autocast(device, dtype=torch.float16):
                loss = trainer.compute_loss(model, batch)
            scaler.scale(loss).backward()
            scaler.unscale_(trainer.optimizer)
            scaler.step(trainer.optimizer)
            scaler.update()
            trainer.optimizer.zero_grad(set_to_none=True)
            scales.append(scaler.get_scale())
            losses.append(float(loss.detach()))
    except (RuntimeError, NotImplementedError) as error:
        problems.append(f"the fp16 autocast + grad scaler step failed: {error}")
        return
    # lora_A cannot move on the first step (lora_B starts at zero, so A's gradient is zero); every B must
    moved = sum(not torch.equal(before[n], p) for n, p in model.named_parameters() if "lora_B" in n)
    b_count = sum("lora_B" in n for n in before)
    skipped = sum(
        after < earlier for earlier, after in zip(scales, scales[1:], strict=False)
    )  # a skip halves it
    result.update(
        loss=round(losses[-1], 4),
        losses=[round(x, 4) for x in losses],
        optimizer=optimizer_name(trainer.optimizer),
        gradient_checkpointing=gradient_checkpointing,
        lora_b_updated=f"{moved}/{b_count}",
        grad_scale=scaler.get_scale(),
        grad_scales=scales,
        skipped_steps=skipped,
        autocast=f"torch.autocast({device!r}, torch.float16)",
    )
    if not all(torch.isfinite(torch.tensor(losses))):
        problems.append(f"the fp16 losses are {losses}")
    if moved != b_count:
        problems.append(f"the scaled step updated {moved} of {b_count} lora_B weights; all get a gradient")
    if skipped == steps:
        problems.append(f"the grad scaler skipped all {steps} steps (scales {scales}): inf/nan gradients")


def _built(trainer, model) -> dict:
    return {
        "trainer": type(trainer).__name__,
        "adapter_dtypes_after_trainer": _dtypes(model, True),
        "frozen_dtypes": _dtypes(model, False),
        "problems": [],
    }


def check_precision_chain(preset_name: str, output_dir: str, device: str = "cpu", steps: int = 1) -> dict:
    """fp16-autocast, loss-scaled steps of the preset's phase-1 trainer on its family's tiny model."""
    from sqlft.testing import CORPUS, chat_prompt
    from sqlft.train import PhaseConfig, build_trainer

    config, model, tokenizer = _tiny_of_family(preset_name, device)
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
    result = _built(trainer, model)
    batch = next(iter(trainer.get_train_dataloader()))
    _scaled_step(trainer, model, batch, config.phase1.gradient_checkpointing, result, device, steps)
    return result


def check_grpo_precision_chain(
    preset_name: str, output_dir: str, device: str = "cpu", full: bool | None = None
) -> dict:
    """The same for phase 3: the preset's GRPO trainer (TRL casts a quantised model's adapters to
    bf16; sqlft casts them back), its completions generated and rewarded, then one fp16 step of
    GRPO's loss. On the CPU the step is small (16-token completions, two questions' groups); on
    CUDA (or with `full`) it has the preset's own batch, group size and completion length. The
    advantages are set to +1/-1 in turn: the tiny model's completions all fail alike, which would
    leave no gradient to carry through the scaler (the loss then reads 0, the
    two signs cancelling, while its gradient does not)."""
    from sqlft.rl import RLConfig, SQLReward, build_grpo_trainer
    from sqlft.testing import CORPUS, SCHEMA_DDL, chat_prompt

    config, model, tokenizer = _tiny_of_family(preset_name, device)
    p = config.phase3
    full = device != "cpu" if full is None else full
    rows = p.batch_size if full else p.num_generations * 2
    records = [
        {"prompt": chat_prompt(tokenizer, q), "sql": s, "context": SCHEMA_DDL, "db_id": None}
        for q, s in CORPUS[:4]
    ]
    phase = RLConfig.from_dict(
        config.phase3,
        output_dir=output_dir,
        max_length=config.prompt.max_length,
        compute_dtype=config.model.compute_dtype,
        max_steps=1,
        batch_size=rows,
        grad_accum=1,  # one device step: generation, reward, loss
        generation_batch_size=0,
        max_completion_length=p.max_completion_length if full else 16,
    )
    reward = SQLReward(None, timeout_s=5.0)
    try:
        trainer, _ = build_grpo_trainer(model, tokenizer, records, None, phase, reward=reward)
        result = _built(trainer, model)
        batch = trainer._prepare_inputs(next(iter(trainer.get_train_dataloader())))  # generate + reward
        signs = torch.tensor([1.0 if i % 2 == 0 else -1.0 for i in range(len(batch["advantages"]))])
        batch["advantages"] = signs.to(batch["advantages"])
        result["completions"] = len(signs)
        trainer.current_gradient_accumulation_steps = 1  # set by Trainer's loop, which is not running
        _scaled_step(
            trainer, model, batch, p.gradient_checkpointing, result, device, 1 if device == "cpu" else 3
        )
    finally:
        reward.close()
    return result
