import json
from pathlib import Path

import pytest
import torch

from sqlft import testing
from sqlft.cli import main
from sqlft.commands.predict import read_records
from sqlft.data.records import DataError
from sqlft.generate import generate_sql, merge_adapter


@pytest.fixture(scope="module")
def tiny() -> Path:
    return testing.tiny_model_path("llama", warm_up=True)


@pytest.fixture(scope="module")
def tokenizer(tiny):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(tiny)


@pytest.fixture()
def data_file(tmp_path, tokenizer) -> Path:
    path = tmp_path / "dev.jsonl"
    with path.open("w") as out:
        for i, (question, sql) in enumerate(testing.CORPUS[:5]):
            record = {
                "question": question,
                "sql": sql,
                "db_id": testing.DB_ID,
                "hardness": "easy",
                "id": i,
                "prompt": testing.chat_prompt(tokenizer, question),
            }
            out.write(json.dumps(record) + "\n")
        out.write("\n")  # a trailing blank line is not a record
    return path


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def _expected(model, tokenizer, data_file: Path):
    prompts = [r["prompt"] for r in _read(data_file)]
    return generate_sql(model.eval(), tokenizer, prompts, max_new_tokens=40, progress=False)


def test_predict_end_to_end(tiny, tokenizer, data_file, tmp_path) -> None:
    from transformers import AutoModelForCausalLM

    out = tmp_path / "pred" / "dev.jsonl"
    args = ["predict", "--model", str(tiny), "--data", str(data_file), "--out", str(out)]
    assert main(args + ["--batch-size", "2", "--max-new-tokens", "40"]) == 0
    inputs, preds = _read(data_file), _read(out)
    assert [p["id"] for p in preds] == [0, 1, 2, 3, 4]
    for record, pred in zip(inputs, preds, strict=True):
        assert {k: pred[k] for k in record} == record  # every input field kept
        assert pred["gold"] == record["sql"]
        assert "candidates" not in pred
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    expected = _expected(model, tokenizer, data_file)
    assert [(p["pred"], p["raw"]) for p in preds] == [(g.sql, g.raw) for g in expected]


def test_predict_with_adapter_and_samples(tiny, tokenizer, data_file, tmp_path) -> None:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny, dtype=torch.float32)
    config = LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    peft_model.save_pretrained(tmp_path / "adapter")
    expected = _expected(merge_adapter(peft_model), tokenizer, data_file)

    out = tmp_path / "pred.jsonl"
    common = [
        "predict",
        "--model",
        str(tiny),
        "--adapter",
        str(tmp_path / "adapter"),
        "--data",
        str(data_file),
    ]
    assert main(common + ["--out", str(out), "--max-new-tokens", "40"]) == 0
    assert [p["raw"] for p in _read(out)] == [g.raw for g in expected]

    sampled = tmp_path / "sampled.jsonl"
    assert main(common + ["--out", str(sampled), "--num-samples", "3", "--max-new-tokens", "20"]) == 0
    for pred in _read(sampled):
        assert len(pred["candidates"]) == 3
        assert set(pred["candidates"][0]) == {"raw", "sql", "num_tokens", "score"}
        assert pred["pred"] in {c["sql"] for c in pred["candidates"]}


@pytest.mark.parametrize(
    "line, message",
    [
        ("{not json", "not valid JSON"),
        ('["a list"]', "not a JSON object"),
        ('{"sql": "SELECT 1", "db_id": "x"}', "'prompt' missing"),
        ('{"prompt": "p", "db_id": "x"}', "'sql' missing"),
        ('{"prompt": "p", "sql": "SELECT 1"}', "neither 'db_id' nor 'context'"),
    ],
)
def test_bad_lines_name_file_and_line(tmp_path, line: str, message: str) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"prompt": "p", "sql": "SELECT 1", "context": "CREATE TABLE t (a)"}\n' + line + "\n")
    with pytest.raises(DataError, match=f"bad.jsonl:2: .*{message}"):
        read_records(path)


def test_cli_reports_bad_input_without_loading_a_model(tmp_path, capsys) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text("{broken\n")
    code = main(["predict", "--model", "no-such-model", "--data", str(path), "--out", str(tmp_path / "o")])
    assert code == 2
    assert "bad.jsonl:1: not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_cli_reports_missing_model_or_adapter(tmp_path, data_file, capsys) -> None:
    out = str(tmp_path / "o.jsonl")
    assert main(["predict", "--model", str(tmp_path / "absent"), "--data", str(data_file), "--out", out]) == 2
    assert "cannot load --model" in capsys.readouterr().err
    args = ["predict", "--model", "x", "--adapter", str(tmp_path), "--data", str(data_file), "--out", out]
    assert main(args) == 2
    assert "no adapter_config.json" in capsys.readouterr().err


def test_missing_or_empty_file(tmp_path) -> None:
    with pytest.raises(DataError, match="no such file"):
        read_records(tmp_path / "absent.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(DataError, match="no records"):
        read_records(tmp_path / "empty.jsonl")


def test_limit_reads_first_records(data_file) -> None:
    assert [r["id"] for r in read_records(data_file, limit=2)] == [0, 1]


def _save_adapter(base: Path, dest: Path) -> Path:
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    get_peft_model(model, LoraConfig(r=4, target_modules="all-linear")).save_pretrained(dest)
    return dest


def test_adapter_of_another_base_is_refused(tiny, data_file, tmp_path, capsys) -> None:
    adapter = _save_adapter(tiny, tmp_path / "adapter")
    qwen2 = testing.tiny_model_path("qwen2")  # same shapes as tiny llama: would load silently
    out = tmp_path / "o.jsonl"
    args = ["predict", "--adapter", str(adapter), "--data", str(data_file), "--out", str(out)]
    assert main(args + ["--model", str(qwen2)]) == 2
    err = capsys.readouterr().err
    assert f"trained on {str(tiny)!r}" in err and f"--model {tiny}" in err
    phi = testing.tiny_model_path("phi")  # other layer names and shapes: one line, no traceback
    assert main(args + ["--model", str(phi), "--allow-other-base"]) == 2
    assert "the adapter was trained on a model of other shapes" in capsys.readouterr().err
    assert not out.exists()


def test_adapter_folder_without_weights_names_it(tiny, data_file, tmp_path, capsys) -> None:
    adapter = _save_adapter(tiny, tmp_path / "adapter")
    (adapter / "adapter_model.safetensors").unlink()
    args = ["predict", "--model", str(tiny), "--adapter", str(adapter), "--data", str(data_file)]
    assert main(args + ["--out", str(tmp_path / "o.jsonl")]) == 2
    assert f"{adapter}: adapter_config.json but no adapter weights" in capsys.readouterr().err


def test_prompts_without_chat_template_get_the_models_own(
    tiny, tokenizer, data_file, tmp_path, capsys
) -> None:
    raw = tmp_path / "raw.jsonl"  # what `sqlft data` writes without --tokenizer: the user text and "\n"
    records = _read(data_file)
    raw.write_text("".join(json.dumps({**r, "prompt": r["question"] + "\n"}) + "\n" for r in records))
    common = ["predict", "--model", str(tiny), "--max-new-tokens", "40"]
    assert main(common + ["--data", str(raw), "--out", str(tmp_path / "a.jsonl")]) == 0
    assert "5 of 5 prompts had no chat template" in capsys.readouterr().out
    assert main(common + ["--data", str(data_file), "--out", str(tmp_path / "b.jsonl")]) == 0
    assert "no chat template" not in capsys.readouterr().out
    wrapped, templated = _read(tmp_path / "a.jsonl"), _read(tmp_path / "b.jsonl")
    assert [p["prompt"] for p in wrapped] == [p["prompt"] for p in templated]
    assert [p["pred"] for p in wrapped] == [p["pred"] for p in templated]
