"""README's examples, read out of README itself, so that an edit which breaks one fails here.

The fast tests swap the SmolLM2 name for a tiny test model (the only change); the slow ones run the
examples exactly as written.
"""

import json
import re
import shlex
from pathlib import Path

import pytest

from sqlft.cli import main

README = Path(__file__).resolve().parents[1] / "README.md"
TINY = "tiny-llama-warm"


def _block(after: str, language: str) -> str:
    """The first ```language block that follows the line starting with `after`."""
    text = README.read_text(encoding="utf-8")
    start = text.index("\n" + after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"README: no ```{language} block after {after!r}"
    return match.group(1)


def _spider_paths(text: str, spider_dir: Path) -> str:
    assert "../shared/spider" in text  # README's examples are written from the repository root
    return text.replace("../shared/spider", str(spider_dir))


def _run_commands(spider_dir: Path, model: str | None) -> None:
    for line in _spider_paths(_block("Examples on the Spider dev set", "bash"), spider_dir).splitlines():
        if not line.strip():
            continue
        words = shlex.split(line)
        assert words[0] == "sqlft", line
        if model:
            words = [model if w == "smollm2-135m" else w for w in words]
        assert main(words[1:]) == 0, line


@pytest.mark.parametrize(
    "model", [TINY, pytest.param(None, marks=pytest.mark.slow)], ids=["tiny", "as-written"]
)
def test_readme_commands_run(spider_dir, tmp_path, monkeypatch, model) -> None:
    monkeypatch.chdir(tmp_path)
    _run_commands(spider_dir, model)
    predictions = [json.loads(line) for line in Path("pred.jsonl").read_text().splitlines()]
    assert len(predictions) == 50 and all(p["prompt"].startswith("<|im_start|>") for p in predictions)
    summary = json.loads(Path("report.json").read_text())["summary"]
    assert summary["n"] == 50
    if model is None:  # SmolLM2 given raw prompts wrote no valid SQL at all (issue 14)
        assert summary["valid_rate"] > 0.5


@pytest.mark.parametrize(
    "model", [TINY, pytest.param(None, marks=pytest.mark.slow)], ids=["tiny", "as-written"]
)
def test_readme_python_api_example_runs(spider_dir, tmp_path, monkeypatch, capsys, model) -> None:
    code = _spider_paths(_block("## Python API", "python"), spider_dir)
    assert len(code.strip().splitlines()) <= 15
    if model:
        code, swapped = re.subn(r'^MODEL = "smollm2-135m"', f'MODEL = "{model}"', code, flags=re.M)
        assert swapped == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "execution accuracy" in out and ("| " in out or "error:" in out)
    assert (tmp_path / "api-run" / "adapter" / "adapter_config.json").is_file()
