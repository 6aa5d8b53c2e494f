"""Export: a GGUF written with the gguf package's maps loads back in transformers and predicts the
same next token as the merged model on every corpus prompt; the model card and the Hub upload."""

import json
from pathlib import Path

import gguf
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from sqlft.cli import main
from sqlft.export import ExportError, compare_next_tokens, export_gguf, pre_tokenizer_name
from sqlft.lora import add_lora
from sqlft.testing import CORPUS, chat_prompt, tiny_model_path


def _adapter(base: Path, dest: Path, preset: str = "all-linear") -> Path:
    """An adapter with non-zero B, so that merging changes the weights."""
    model = add_lora(AutoModelForCausalLM.from_pretrained(base), preset, seed=0)
    torch.manual_seed(1)
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_B" in name:
                param.normal_(0, 0.02)
    model.save_pretrained(dest)
    return dest


def _prompts(folder: Path) -> list[str]:
    tokenizer = AutoTokenizer.from_pretrained(folder)
    return [chat_prompt(tokenizer, question) for question, _ in CORPUS]


@pytest.mark.parametrize(
    "arch, outtype",
    [("llama", "f16"), ("mistral", "f16"), ("qwen2", "f16"), ("llama", "q8_0"), ("qwen2", "q8_0")],
)
def test_gguf_round_trip_agrees_with_the_merged_model(arch, outtype, tmp_path) -> None:
    base = tiny_model_path(arch, warm_up=True)
    adapter = _adapter(base, tmp_path / "run" / "phase2" / "adapter")
    args = ["export", "--model", str(base), "--adapter", str(adapter), "--out", str(tmp_path / "out")]
    assert main(args + ["--format", "gguf", "--outtype", outtype]) == 0
    assert main(args[:-1] + [str(tmp_path / "merged"), "--format", "merged", "--dtype", "fp32"]) == 0
    gguf_file = tmp_path / "out" / f"model-{outtype}.gguf"
    reader = gguf.GGUFReader(gguf_file)
    kinds = {t.tensor_type.name for t in reader.tensors}
    assert kinds == ({"F16", "F32"} if outtype == "f16" else {"Q8_0", "F32"})
    result = compare_next_tokens(tmp_path / "merged", gguf_file, _prompts(base))
    n = len(CORPUS)
    assert result["same_token_ids"] == n and result["same_next_token"] == n, result
    assert result["chat_template_kept"]
    card = (tmp_path / "out" / "README.md").read_text()
    assert f'gguf_file="model-{outtype}.gguf"' in card and "library_name: gguf" in card
    loaded = AutoModelForCausalLM.from_pretrained(tmp_path / "out", gguf_file=gguf_file.name)
    assert loaded.config.model_type == {"mistral": "llama"}.get(arch, arch)  # llama.cpp's convention


def test_tied_embeddings_with_an_lm_head_adapter(tmp_path) -> None:
    """SmolLM2 ties its head to the embeddings: the merge unties them and the GGUF keeps both."""
    rig = tiny_model_path("llama")
    config = AutoModelForCausalLM.from_pretrained(rig).config
    config.tie_word_embeddings = True
    torch.manual_seed(0)
    AutoModelForCausalLM.from_config(config).save_pretrained(tmp_path / "base")
    AutoTokenizer.from_pretrained(rig).save_pretrained(tmp_path / "base")
    adapter = _adapter(tmp_path / "base", tmp_path / "adapter", preset="high-rank")  # includes lm_head
    args = ["export", "--model", str(tmp_path / "base"), "--adapter", str(adapter)]
    assert main(args + ["--out", str(tmp_path / "out"), "--format", "gguf"]) == 0
    assert main(args + ["--out", str(tmp_path / "merged"), "--dtype", "fp32"]) == 0
    names = {t.name for t in gguf.GGUFReader(tmp_path / "out" / "model-f16.gguf").tensors}
    assert {"token_embd.weight", "output.weight"} <= names
    result = compare_next_tokens(tmp_path / "merged", tmp_path / "out" / "model-f16.gguf", _prompts(rig))
    assert result["same_next_token"] == len(CORPUS), result


def test_unsupported_models_are_refused_with_the_way_on(tmp_path) -> None:
    with pytest.raises(ExportError, match="model_type 'phi' .*convert_hf_to_gguf.py"):
        export_gguf(tiny_model_path("phi"), tmp_path / "x.gguf")
    assert not list(tmp_path.iterdir())
    folder = tmp_path / "tok"
    folder.mkdir()
    (folder / "tokenizer.json").write_text(json.dumps({"pre_tokenizer": {"type": "Whitespace"}}))
    with pytest.raises(ExportError, match="tokenizer.json: pre-tokenizer"):
        pre_tokenizer_name(folder, "llama")


def test_push_to_hub_uploads_the_folder_with_its_card(tmp_path, monkeypatch, capsys) -> None:
    calls = []
    monkeypatch.setattr(
        "huggingface_hub.HfApi.create_repo",
        lambda self, repo, **kw: calls.append(("create", repo, kw)) or f"https://hf.co/{repo}",
    )
    monkeypatch.setattr(
        "huggingface_hub.HfApi.upload_folder", lambda self, **kw: calls.append(("upload", kw))
    )
    base = tiny_model_path("qwen2", warm_up=True)
    adapter = _adapter(base, tmp_path / "adapter")
    args = ["export", "--model", str(base), "--adapter", str(adapter), "--out", str(tmp_path / "out")]
    assert main(args + ["--push-to-hub", "me/sql-model", "--private"]) == 0
    assert calls[0] == ("create", "me/sql-model", {"private": True, "exist_ok": True})
    assert calls[1][1]["repo_id"] == "me/sql-model" and calls[1][1]["folder_path"] == str(tmp_path / "out")
    assert (tmp_path / "out" / "README.md").is_file() and (tmp_path / "out" / "config.json").is_file()
    assert "uploaded to https://hf.co/me/sql-model" in capsys.readouterr().out


def test_model_card_carries_base_data_preset_metrics_and_loading(tmp_path) -> None:
    from sqlft.config import load_preset
    from sqlft.modelcard import write_model_card

    run = tmp_path / "run"
    for step, accuracy in (("baseline", 0.25), ("phase1", 0.5)):
        (run / step).mkdir(parents=True)
        summary = {"n": 8, "scored": 8, "exec_accuracy": accuracy, "exact_accuracy": 0.125, "valid_rate": 1.0}
        (run / step / "report.json").write_text(json.dumps({"summary": summary}))
    card = write_model_card(
        run / "phase1" / "adapter", base_model="smollm2-135m", run_dir=run, preset=load_preset("demo")
    ).read_text()
    assert card.startswith("---\nbase_model: HuggingFaceTB/SmolLM2-135M-Instruct\nlibrary_name: peft\n")
    assert "license: apache-2.0" in card and "preset `demo`" in card
    assert "| baseline | 8 of 8 | 25.0% | 12.5% | 100.0% |" in card and "| phase1 | 8 of 8 | 50.0%" in card
    assert "phase 2: `demo` split `train`" in card
    assert 'PeftModel.from_pretrained(base, "THIS_FOLDER_OR_REPO")' in card
    (run / "metrics.json").write_text(
        json.dumps({"preset": "demo", "phase2": {**summary, "exec_accuracy": 0.75}})
    )
    merged = write_model_card(
        tmp_path / "m", base_model="Qwen/Qwen2.5-Coder-1.5B-Instruct", kind="merged", run_dir=run
    )
    text = merged.read_text()
    assert "| phase2 | 8 of 8 | 75.0%" in text and "| baseline" not in text  # metrics.json wins once written
    assert "library_name: transformers" in text and "Not recorded" in text
