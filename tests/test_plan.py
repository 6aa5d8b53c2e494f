"""`sqlft plan`: parameter counts against real models and peft, plausible T4 verdicts, the command."""

import json

import pytest
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, LlamaConfig, LlamaForCausalLM

from sqlft import testing
from sqlft.cli import main
from sqlft.config import load_preset, shipped_presets
from sqlft.plan import (
    GIB,
    SHIPPED_CONFIGS,
    ModelShape,
    Setup,
    estimate,
    generation_plan,
    layer_activation_bytes,
    read_config,
    rl_plan,
    rl_rows,
    setup_from_preset,
)

# Hand-copied from the models' config.json on the hub (the sizes the plan reads).
QWEN_7B = {
    "model_type": "qwen2",
    "hidden_size": 3584,
    "intermediate_size": 18944,
    "num_hidden_layers": 28,
    "num_attention_heads": 28,
    "num_key_value_heads": 4,
    "vocab_size": 152064,
    "tie_word_embeddings": False,
}
QWEN_1_5B = {**QWEN_7B, "hidden_size": 1536, "intermediate_size": 8960, "num_attention_heads": 12}
QWEN_1_5B.update(num_key_value_heads=2, vocab_size=151936, tie_word_embeddings=True)
NEMO_12B = {
    "model_type": "mistral",
    "hidden_size": 5120,
    "intermediate_size": 14336,
    "num_hidden_layers": 40,
    "num_attention_heads": 32,
    "num_key_value_heads": 8,
    "head_dim": 128,
    "vocab_size": 131072,
    "tie_word_embeddings": False,
}
PHI_2 = {
    "model_type": "phi",
    "hidden_size": 2560,
    "intermediate_size": 10240,
    "num_hidden_layers": 32,
    "num_attention_heads": 32,
    "num_key_value_heads": None,
    "vocab_size": 51200,
    "tie_word_embeddings": False,
}
REAL = {
    "Qwen/Qwen2.5-Coder-7B-Instruct": QWEN_7B,
    "Qwen/Qwen2.5-Coder-1.5B-Instruct": QWEN_1_5B,
    "mistralai/Mistral-Nemo-Instruct-2407": NEMO_12B,
    "microsoft/phi-2": PHI_2,
}


@pytest.mark.parametrize(
    ("config", "published"), [(QWEN_7B, 7.62e9), (QWEN_1_5B, 1.54e9), (NEMO_12B, 12.2e9), (PHI_2, 2.78e9)]
)
def test_parameter_counts_match_published_sizes(config, published):
    assert ModelShape.from_config(config).total_params() == pytest.approx(published, rel=0.02)


@pytest.mark.parametrize("arch", testing.ARCHS)
def test_counts_match_tiny_models_and_peft(arch):
    path = testing.tiny_model_path(arch)
    config, _ = read_config(str(path))
    shape = ModelShape.from_config(config)
    model = AutoModelForCausalLM.from_pretrained(path)
    assert shape.total_params() == pytest.approx(model.num_parameters(), rel=0.03)  # norms, biases aside
    targets = ["q_proj", "k_proj", "v_proj"] + (
        ["dense", "fc1", "fc2"] if arch == "phi" else ["o_proj", "gate_proj", "up_proj", "down_proj"]
    )
    peft_model = get_peft_model(model, LoraConfig(r=8, target_modules=targets))
    assert shape.lora_params(8, "all-linear") == peft_model.get_nb_trainable_parameters()[0]


def test_nemo_needs_two_t4s_and_smaller_models_fit_one():
    nemo = ModelShape.from_config(NEMO_12B)
    one = estimate(nemo, Setup(quantization="nf4", max_length=1024, batch_size=4))
    assert not one.fits and one.verdict.startswith("does not fit")
    split = estimate(nemo, Setup(batch_size=1, placement="split", gpus=2))
    assert split.weights_per_gpu_gib < 7 and split.fits and split.per_gpu_gib < split.total_gib
    assert estimate(ModelShape.from_config(QWEN_7B), Setup(batch_size=1)).fits
    assert estimate(ModelShape.from_config(PHI_2), Setup(batch_size=4)).fits


def test_components_move_the_right_way():
    phi = ModelShape.from_config(PHI_2)
    base = estimate(phi, Setup(batch_size=4))
    parts = {c.name: c.gib for c in base.components}
    no_ckpt = {
        c.name: c.gib for c in estimate(phi, Setup(batch_size=4, gradient_checkpointing=False)).components
    }
    assert no_ckpt["activations"] > 5 * parts["activations"]
    fp32_adam = {c.name: c.gib for c in estimate(phi, Setup(optimizer="adamw_torch")).components}
    assert fp32_adam["optimizer states"] == pytest.approx(4 * parts["optimizer states"])
    fp16 = {c.name: c.gib for c in estimate(phi, Setup(quantization=None)).components}
    assert fp16["weights (block linears)"] == pytest.approx(
        parts["weights (block linears)"] * 2 / 0.5, rel=0.05
    )
    assert not estimate(phi, Setup(quantization=None, gradient_checkpointing=False)).fits
    assert estimate(phi, Setup(batch_size=8)).total_gib > base.total_gib
    assert (
        "gradient checkpointing" in estimate(phi, Setup(batch_size=16, gradient_checkpointing=False)).verdict
    )


@pytest.mark.parametrize("name", [n for n in shipped_presets() if n.startswith("kaggle")])
def test_every_kaggle_preset_fits_its_t4s(name):
    preset = load_preset(name)
    shape, setup = ModelShape.from_config(REAL[preset.model.name]), setup_from_preset(preset)
    plan = estimate(shape, setup, name)
    assert plan.fits, plan.table()
    generation = generation_plan(
        shape, setup, preset.eval.batch_size, setup.max_length, preset.eval.max_new_tokens
    )
    assert generation.fits, generation.table()


@pytest.mark.parametrize("name", [n for n in shipped_presets() if n.startswith("kaggle")])
def test_every_kaggle_phase3_fits_its_t4s(name):
    preset = load_preset(name)
    shape, setup = ModelShape.from_config(REAL[preset.model.name]), setup_from_preset(preset, "phase3")
    p = preset.phase3
    plan = rl_plan(shape, setup, rl_rows(preset), setup.max_length, p.max_completion_length, name)
    assert plan.fits and plan.per_gpu_gib <= 0.9 * setup.gpu_gib, plan.table()
    names = [c.name for c in plan.components]
    assert "LoRA weights (fp32)" in names and "optimizer states" in names
    assert any(n.startswith(("step:", "generation:")) for n in names)


def test_phase3_plan_holds_the_larger_of_generation_and_step():
    shape = ModelShape.from_config(QWEN_1_5B)
    setup = Setup(batch_size=2, max_length=1024)
    few = {c.name: c for c in rl_plan(shape, setup, 4, 1024, 256).components}
    assert "step: activations" in few and "generation: KV cache (fp16)" not in few
    many = {c.name: c for c in rl_plan(shape, setup, 512, 1024, 256).components}
    kv = 2 * 28 * 2 * 128 * 2 * 512 * 1280 / GIB  # K and V, layers, KV heads, head dim, fp16, rows, tokens
    assert many["generation: KV cache (fp16)"].gib == pytest.approx(kv)
    assert "step: activations" not in many and "the step needs" in many["generation: KV cache (fp16)"].note
    step_logits = few["step: logits and loss"].gib
    assert step_logits == pytest.approx(2 * 256 * QWEN_1_5B["vocab_size"] * 12 / GIB)  # completion only


def test_plan_command_for_phase3(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(QWEN_1_5B))
    args = [
        "plan",
        "--model",
        str(tmp_path),
        "--preset",
        "kaggle-t4x2-qwen2.5-coder-1.5b",
        "--phase",
        "phase3",
    ]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert "phase 3 (GRPO" in table and "fits" in table and "256 completion tokens" in table
    assert main(["plan", "--model", str(tmp_path), "--phase", "phase3"]) == 2
    assert "needs a --preset" in capsys.readouterr().err


def test_phi2_evaluating_32_prompts_at_once_overflows_a_t4():
    setup = setup_from_preset(load_preset("kaggle-t4x2-phi2"))
    plan = generation_plan(ModelShape.from_config(PHI_2), setup, batch=32, prompt_tokens=1024, new_tokens=256)
    assert not plan.fits and "eval batch_size" in plan.verdict


def test_kv_cache_matches_what_generate_keeps():
    config = LlamaConfig(
        vocab_size=64,
        hidden_size=64,
        intermediate_size=96,
        num_hidden_layers=3,
        num_attention_heads=4,
        num_key_value_heads=2,
    )
    model = LlamaForCausalLM(config).to(torch.float16)
    out = model.generate(
        torch.randint(64, (2, 10)), max_new_tokens=5, min_new_tokens=5, return_dict_in_generate=True
    )
    cache = out.past_key_values
    kept = sum(layer.keys.nbytes + layer.values.nbytes for layer in cache.layers)
    plan = generation_plan(ModelShape.from_config(config.to_dict()), Setup(), 2, 10, 5)
    kv = next(c for c in plan.components if c.name.startswith("KV"))
    # generate stores the last new token's key/value only when it runs one more step: 14 of 15 positions
    assert kept * 15 / 14 == pytest.approx(kv.gib * GIB, rel=1e-6)


@pytest.mark.parametrize("name", REAL)
def test_preset_models_plan_offline_from_shipped_configs(name, monkeypatch):
    shipped = json.loads((SHIPPED_CONFIGS / f"{name.replace('/', '--')}.json").read_text())
    assert {k: shipped[k] for k in REAL[name]} == REAL[name]

    def unreachable(*args, **kwargs):
        raise OSError("hub unreachable")

    monkeypatch.setattr("transformers.AutoConfig.from_pretrained", unreachable)
    config, origin = read_config(name)
    assert config == shipped and "shipped with sqlft" in origin
    with pytest.raises(FileNotFoundError, match="other/model"):
        read_config("other/model")


def test_config_without_sizes_names_its_origin():
    with pytest.raises(ValueError, match="my.json.*hidden_size"):
        ModelShape.from_config({"model_type": "x", "vocab_size": 10}, "my.json")


def test_command_prints_table_and_json(tmp_path, capsys):
    (tmp_path / "config.json").write_text(json.dumps(NEMO_12B))
    assert main(["plan", "--model", str(tmp_path / "config.json"), "--batch-size", "4"]) == 0
    table = capsys.readouterr().out
    assert "does not fit" in table and "logits and loss" in table
    args = ["plan", "--model", str(tmp_path), "--preset", "kaggle-t4x2-mistral-nemo-12b", "--json"]
    assert main(args) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["setup"]["placement"] == "split" and plan["fits"] and plan["setup"]["gpus"] == 2
    assert plan["generation"]["fits"] and plan["config"].endswith("config.json")
    kv = next(c for c in plan["generation"]["components"] if c["name"].startswith("KV"))
    assert "8 x (1024 prompt + 256 new)" in kv["note"]  # the preset's eval batch and new tokens
    assert main(["plan", "--model", "tiny-qwen2", "--placement", "ddp", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["shape"]["model_type"] == "qwen2"
    assert main(["plan", "--model", str(tmp_path / "missing.json")]) == 2
    assert "missing.json" in capsys.readouterr().err


def _saved_bytes_per_token(config: dict, dropout: float, tokens: tuple[int, int] = (2, 64)) -> float:
    """Bytes autograd keeps for backward (parameters excluded) in a bf16 LoRA forward, per token."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**config)).to(torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=8, lora_dropout=dropout, target_modules="all-linear"))
    params = {p.untyped_storage().data_ptr() for p in model.parameters()}
    saved: dict[int, int] = {}

    def pack(t):
        storage = t.untyped_storage()
        if storage.data_ptr() not in params:
            saved[storage.data_ptr()] = storage.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        model(input_ids=torch.randint(config["vocab_size"], tokens))
    return sum(saved.values()) / (tokens[0] * tokens[1])


@pytest.mark.parametrize("dropout", [0.05, 0.0])
def test_activation_coefficients_match_what_autograd_saves(dropout):
    config = dict(
        vocab_size=256, hidden_size=192, intermediate_size=512, num_attention_heads=4, num_key_value_heads=2
    )
    one, three = (_saved_bytes_per_token({**config, "num_hidden_layers": n}, dropout) for n in (1, 3))
    measured = (three - one) / 2  # per layer, embeddings excluded
    expected = layer_activation_bytes(ModelShape.from_config({**config, "num_hidden_layers": 1}), 1, dropout)
    assert measured == pytest.approx(expected, rel=0.1)
