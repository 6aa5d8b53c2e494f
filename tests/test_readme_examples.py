"""README's examples, read out of README itself, so that an edit which breaks one fails here.

They run with one change: the SmolLM2 name becomes a tiny test model (SmolLM2 takes 2.5 minutes
for the 50 predictions on this CPU). That SmolLM2 itself gets the prompts it needs is checked on
its tokenizer alone: the prompts predict wraps equal those `sqlft data --tokenizer` writes.
"""

import json
import re
import shlex
from pathlib import Path

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


def _run_commands(spider_dir: Path, model: str) -> None:
    for line in _spider_paths(_block("Examples on the Spider dev set", "bash"), spider_dir).splitlines():
        if not line.strip():
            continue
        words = shlex.split(line)
        assert words[0] == "sqlft", line
        words = [model if w == "smollm2-135m" else w for w in words]
        assert main(words[1:]) == 0, line


def test_readme_commands_run(spider_dir, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    _run_commands(spider_dir, TINY)
    predictions = [json.loads(line) for line in Path("pred.jsonl").read_text().splitlines()]
    assert len(predictions) == 50 and all(p["prompt"].startswith("<|im_start|>") for p in predictions)
    summary = json.loads(Path("report.json").read_text())["summary"]
    assert summary["n"] == 50 and summary["scored"] == 50


def test_smollm2_gets_the_prompts_sqlft_data_writes_with_its_tokenizer(spider_dir) -> None:
    """Without a chat template SmolLM2 wrote no valid SQL for README's example (issue 14)."""
    from sqlft.commands.predict import apply_missing_chat_template
    from sqlft.data.prepare import prepare_records
    from sqlft.model import load_tokenizer

    tokenizer = load_tokenizer("smollm2-135m")
    options = dict(schema_style="compact", limit=20)
    raw = prepare_records("spider", spider_dir, "dev", **options).records
    templated = prepare_records("spider", spider_dir, "dev", tokenizer=tokenizer, **options).records
    assert apply_missing_chat_template(raw, tokenizer) == 20
    assert [r["prompt"] for r in raw] == [r["prompt"] for r in templated]


def test_readme_python_api_example_runs(spider_dir, tmp_path, monkeypatch, capsys) -> None:
    code = _spider_paths(_block("## Python API", "python"), spider_dir)
    assert len(code.strip().splitlines()) <= 15
    code, swapped = re.subn(r'^MODEL = "smollm2-135m"', f'MODEL = "{TINY}"', code, flags=re.M)
    assert swapped == 1
    monkeypatch.chdir(tmp_path)
    exec(compile(code, str(README), "exec"), {})
    out = capsys.readouterr().out
    assert "execution accuracy" in out and ("| " in out or "error:" in out)
    assert (tmp_path / "api-run" / "adapter" / "adapter_config.json").is_file()


def test_readme_ask_example_exits_with_the_status_it_states(spider_dir, capsys) -> None:
    """README's `sqlft ask` example runs as written, with SmolLM2 itself (about 20 CPU seconds), and
    ends with the exit status README's next line states; status 0 means its rows were shown."""
    command, status_line = _spider_paths(_block("## Ask your own database", "bash"), spider_dir).splitlines()
    words = shlex.split(command)
    assert words[0] == "sqlft" and words[1] == "ask", command
    stated = re.fullmatch(r'echo "exit status \$\?"\s+#\s*(\d)', status_line.strip())
    assert stated, f"README: the line after the ask example must state its status, not {status_line!r}"
    assert main(words[1:]) == int(stated.group(1)), command
    out = capsys.readouterr().out
    assert ("|---|" in out) == (stated.group(1) == "0")
