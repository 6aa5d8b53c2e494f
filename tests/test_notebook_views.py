"""What the notebooks show: the progress line, settings, full SQL tables, generated sentences, conclusions."""

from pathlib import Path

import nbformat
import pytest
from nbclient import NotebookClient
from notebook_checks import render_problems

from sqlft.config import load_preset
from sqlft.evaluate.report import format_table
from sqlft.evaluate.stats import interval, paired_difference
from sqlft.findings import comparison, describe_phase, what_this_shows
from sqlft.notebook import failure_examples, settings_table, side_by_side
from sqlft.progressbar import ProgressBar
from sqlft.rundir import STEPS, RunDir

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
LONG_SQL = "SELECT " + ", ".join(f"T1.column_number_{i}" for i in range(30)) + " FROM a_table AS T1"


def record(question, match, error_kind=None, pred="SELECT 1", gold=LONG_SQL, **extra):
    return {
        "db_id": "db",
        "question": question,
        "gold": gold,
        "pred": pred,
        "exec_match": match,
        "error_kind": error_kind,
        "error": f"no such column: x ({question})" if error_kind else None,
        **extra,
    }


def report(records):
    return {"records": records, "summary": {}}


def test_progress_in_a_notebook_kernel_is_one_output_updated_in_place():
    cell = (
        "from sqlft.progressbar import ProgressBar\n"
        "bar = ProgressBar(60, 'generate', 'sequences', every=0)\n"
        "for _ in range(60):\n"
        "    bar.update(1, **{'new tokens/s': '9.0'})\n"
        "bar.close()"
    )
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(cell)])
    NotebookClient(notebook, kernel_name="python3", timeout=120).execute()
    outputs = notebook.cells[0].outputs
    assert len(outputs) == 1, outputs
    assert outputs[0]["data"]["text/plain"].startswith("generate: 60/60 sequences in ")
    assert outputs[0]["data"]["text/plain"].endswith(", 9.0 new tokens/s")


def test_progress_in_a_log_is_one_summary_line(capsys):
    bar = ProgressBar(5, "generate", "sequences")  # pytest's stderr is no terminal
    for _ in range(5):
        bar.update(1)
    bar.close()
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("generate: 5/5 sequences in ")


def test_phase_description_follows_the_preset():
    demo, smoke = load_preset("demo"), load_preset("smoke")
    assert "plain LoRA" in describe_phase(demo, "phase1").data
    assert "not QLoRA" in describe_phase(demo, "phase1").data
    assert "QLoRA" in describe_phase(smoke, "phase1").data and "NF4" in describe_phase(smoke, "phase1").data
    assert "2 times lower than phase 1's 0.002" in describe_phase(demo, "phase2").data
    tenfold = load_preset("demo", {"phase2.learning_rate": 2e-4})
    assert "10 times lower" in describe_phase(tenfold, "phase2").data
    assert "4 optimizer steps" in describe_phase(smoke, "phase2").data


def test_settings_table_lists_the_dotted_keys_the_step_reads():
    html = settings_table(load_preset("demo", {"phase1.learning_rate": 3e-3}), "phase1").to_html()
    assert "phase1.learning_rate" in html and "0.003" in html
    assert "model.lora" in html and "prompt.max_length" in html
    assert "phase2.learning_rate" not in html


def test_settings_table_says_which_values_are_overrides_and_names_the_preset_file(tmp_path):
    preset = tmp_path / "mine.yaml"
    preset.write_text("name: mine\nphase1:\n  learning_rate: 2.0e-3\n")
    table = settings_table(load_preset(str(preset), {"phase1.max_steps": 7}), "phase1")
    rows = {row["setting"]: row for row in table.data.to_dict("records")}
    assert (rows["phase1.max_steps"]["value"], rows["phase1.max_steps"]["from"]) == ("7", "override")
    assert (rows["phase1.learning_rate"]["value"], rows["phase1.learning_rate"]["from"]) == (
        "0.002",
        "preset file",
    )
    assert "(mine.yaml)" in table.caption and str(tmp_path) not in table.caption  # no machine folders
    shipped = settings_table(load_preset("demo"), "phase1").caption
    assert "(sqlft/presets/demo.yaml)" in shipped


def test_paired_difference_and_interval():
    gain, half = paired_difference([True, True, False, True], [False, True, False, False])
    assert gain == pytest.approx(0.5)
    assert half == pytest.approx(1.96 * (1 / 3) ** 0.5 / 2)
    assert interval(0.5, 100) == pytest.approx(0.098)
    with pytest.raises(ValueError, match="same questions"):
        paired_difference([True], [True, False])


def test_failure_examples_show_each_kind_with_its_sql_in_full():
    records = [
        record("q1", False, "schema", pred=LONG_SQL + " WHERE x = 1"),
        record("q2", False, "schema"),
        record("q3", False, None, pred="SELECT 2"),
        record("q4", True),
    ]
    html = failure_examples(report(records)).to_html()
    assert LONG_SQL + " WHERE x = 1" in html  # neither cut nor wrapped by pandas
    assert "unknown table/column" in html and "2 (50%)" in html
    assert "wrong result" in html and "SELECT 2" in html
    assert "q2" not in html  # one example per kind
    assert "text-align: left" in html


def test_side_by_side_puts_questions_whose_verdicts_differ_first():
    questions = ["same-right", "fixed", "same-wrong", "broken"]
    before = [
        record("same-right", True),
        record("fixed", False, "syntax"),
        record("same-wrong", False),
        record("broken", True),
    ]
    after = [
        record("same-right", True),
        record("fixed", True, pred=LONG_SQL),
        record("same-wrong", False),
        record("broken", False, "schema"),
    ]
    html = side_by_side({"baseline": report(before), "phase2": report(after)}, n=4).to_html()
    order = sorted(questions, key=html.index)
    assert order[:2] == ["fixed", "broken"]  # changed ones first, the one the last step got right first
    assert order[2] == "same-wrong" and LONG_SQL in html
    assert "✗ syntax error" in html and "✓ match" in html


def summary(records):
    from sqlft.evaluate.report import summarize

    return summarize(records, with_rouge=False)


def test_what_this_shows_compares_with_intervals_and_names_caveats(tmp_path):
    from sqlft.jsonl import write_jsonl

    run = RunDir(tmp_path)
    before = [record(f"q{i}", i < 2, hardness="easy") for i in range(40)]
    after = [record(f"q{i}", i < 30, hardness="easy") for i in range(40)]
    for r in before + after:
        r.update(gold_empty=False, exact_match=False, valid=True)
    reports = {"baseline": {"records": before, "summary": summary(before)}}
    reports["phase2"] = {"records": after, "summary": summary(after)}
    write_jsonl([{"db_id": "db", "question": "t"}], run.step_dir("phase2") / "train.jsonl")
    text = what_this_shows(load_preset("smoke"), run, reports, "phase2").data
    assert "**75.0%**" in text and "+70.0 points of execution accuracy over baseline" in text
    assert "larger than its uncertainty" in text
    assert "100% of the dev questions ask about databases phase2 trained on (db)" in text
    assert "no dev question has an empty gold result" in text
    assert "within its uncertainty" in comparison(reports["baseline"], reports["baseline"], "itself")


def test_summary_table_says_when_no_gold_is_empty():
    records = [record("q", True, gold_empty=False, exact_match=True, valid=True)]
    text = format_table(summary(records))
    assert "0 of 0" not in text and "no gold result is empty" in text


@pytest.mark.parametrize("stem", [stem for _, stem in STEPS])
def test_shipped_notebook_reads_clean(stem):
    """The executed notebooks in the repository, rendered to HTML as a reader gets them."""
    assert render_problems(NOTEBOOKS / f"{stem}.ipynb") == []


def test_best_of_is_its_own_row_in_the_metrics_and_the_findings(tmp_path):
    from sqlft.evaluate.consistency import best_of
    from sqlft.notebook import metrics_table

    records = [
        record(f"q{i}", i < 4, self_consistency_match=i < 6, execution_guided_match=i < 5, gold_empty=False)
        for i in range(10)
    ]
    for r in records:
        r.update(exact_match=False, valid=True)
    s = summary(records)
    s["best_of"] = best_of(s, 4, "execution")
    table = metrics_table({"phase2": {"records": records, "summary": s}})
    assert table.loc["execution accuracy", "phase2"] == 0.4  # greedy stays greedy
    assert table.loc["execution accuracy, best of 4 (execution vote)", "phase2"] == 0.6
    assert table.loc["execution accuracy, execution-guided over samples", "phase2"] == 0.5
    assert "execution accuracy, self-consistency over samples" not in table.index  # the vote's rule, once

    def findings(summary_):
        reports = {"phase2": {"records": records, "summary": summary_}}
        return what_this_shows(load_preset("smoke"), RunDir(tmp_path), reports, "phase2").data

    assert "execution accuracy **40.0%**" in findings(s)
    assert "best of 4 sampled answers (execution vote), scored apart from greedy: **60.0%**" in findings(s)
    assert "best of" not in findings({k: v for k, v in s.items() if k != "best_of"})
