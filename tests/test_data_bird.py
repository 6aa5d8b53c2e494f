"""The BIRD loader, the evidence slot, column notes, `sqlft data --source bird` and README's example."""

import json
import shlex
import shutil

import pytest
from bird_fixture import build_bird

from sqlft.cli import main
from sqlft.data import load_examples
from sqlft.data.bird import column_notes, split_file
from sqlft.data.prepare import prepare_records
from sqlft.data.records import DataError, LoadReport
from sqlft.prompts import load_template


@pytest.fixture(scope="module")
def bird(tmp_path_factory):
    return build_bird(tmp_path_factory.mktemp("bird") / "bird")


def test_dev_records_carry_evidence_difficulty_and_their_database(bird):
    examples, report = load_examples("bird", bird, "dev")
    assert (report.read, report.kept, report.skipped) == (12, 10, 2)
    assert dict(report.dropped) == {"database not usable": 1, "empty question or SQL": 1}
    assert "payroll" in report.samples["database not usable"][0] and "record 11" in report.summary()
    first = examples[1]
    assert (first.source, first.db_id, first.sql) == (
        "bird",
        "school",
        "SELECT name FROM student WHERE gender = 'F'",
    )
    assert (
        first.extra["evidence"] == "female refers to gender = 'F'" and first.extra["difficulty"] == "simple"
    )
    assert first.extra["question_id"] == 1 and first.extra["split"] == "dev"
    assert first.extra["db_path"].endswith("dev_databases/school/school.sqlite")
    assert {e.extra["difficulty"] for e in examples} == {"simple", "moderate", "challenging"}


def test_train_and_mini_dev_splits_and_where_their_files_are_found(bird, tmp_path):
    train, report = load_examples("bird", bird, "train")
    assert report.kept == 8 and all("difficulty" not in e.extra for e in train)
    assert {e.db_id for e in train} == {"library"}
    mini, _ = load_examples("bird", bird / "mini_dev_sqlite.json", "mini_dev")  # the json itself
    assert [e.extra["question_id"] for e in mini] == list(range(1000, 1006))
    nested = tmp_path / "minidev" / "MINIDEV"  # the layout of bird-bench's minidev.zip
    shutil.copytree(bird, nested)
    assert split_file(tmp_path / "minidev", "mini_dev") == nested / "mini_dev_sqlite.json"
    assert prepare_records("bird", tmp_path / "minidev", "mini_dev").db_dir == nested / "dev_databases"
    with pytest.raises(DataError, match="unknown BIRD split 'test'.*dev, train, mini_dev"):
        load_examples("bird", bird, "test")
    with pytest.raises(DataError, match="no dev.json in it or two folders below"):
        load_examples("bird", tmp_path / "minidev" / "MINIDEV" / "dev_databases", "dev")
    with pytest.raises(DataError, match="record 11: database not usable.*payroll.sqlite is missing"):
        load_examples("bird", bird, "dev", strict=True)


def test_a_record_without_evidence_text_is_skipped_and_a_missing_field_is_warned(tmp_path, bird):
    shutil.copytree(bird / "dev_databases", tmp_path / "dev_databases")
    rows = [
        {"db_id": "shop", "question": "How many orders?", "SQL": "SELECT COUNT(*) FROM orders"},
        {"db_id": "shop", "question": "Count them", "evidence": ["a list"], "SQL": "SELECT 1"},
    ]
    (tmp_path / "dev.json").write_text(json.dumps(rows))
    examples, report = load_examples("bird", tmp_path, "dev")
    assert len(examples) == 1 and examples[0].extra["evidence"] == ""
    assert report.dropped["evidence is not text"] == 1
    assert report.warnings == {"no `evidence` given: its prompt has no evidence": 1}


def test_evidence_fills_its_own_line_and_spider_prompts_read_as_before():
    for name, label in (("default", "Evidence: "), ("plain", "-- Evidence: ")):
        template = load_template(name)
        assert template.has_evidence
        without = template.fill("S", "How many?")
        assert "Evidence" not in without
        filled = template.fill("S", "How many?", "  a = 1;\n b = 2 ")
        assert filled == without.replace("How many?", f"How many?\n{label}a = 1; b = 2")
    assert load_template("default").fill("S", "Q") == (
        "Write one SQLite query that answers the question, using only the tables and columns below.\n\n"
        "Database schema:\nS\n\nQuestion: Q"
    )


def test_a_template_without_the_slot_is_accepted_and_the_left_out_evidence_is_reported(bird, tmp_path):
    own = tmp_path / "own.txt"
    own.write_text("{schema}\nQ: {question}\n")
    prepared = prepare_records("bird", bird, "dev", template=own)
    with_evidence = sum(bool(r["extra"]["evidence"]) for r in prepared.records)
    assert prepared.report.warnings == {
        f"{own} has no {{evidence}} slot: these records' evidence is left out": with_evidence
    }
    own.write_text("{schema} {question} {hint}")
    with pytest.raises(DataError, match="optionally \\{evidence\\}"):
        load_template(own)


def test_column_notes_say_more_than_the_name_and_read_windows_1252(bird, tmp_path):
    notes = column_notes(bird / "dev_databases" / "shop")
    assert notes[("orders", "amount")] == "order total in € (euro); NULL: not yet priced"  # cp1252 file
    assert notes[("customer", "segment")].startswith("the client segment; SME = small")
    school = column_notes(bird / "dev_databases" / "school")
    assert (
        school[("student", "gpa")]
        == "grade point average on a 4-point scale; higher is better; NULL: not graded yet"
    )
    assert ("book", "title") not in column_notes(bird / "train_databases" / "library")  # nothing to say
    folder = tmp_path / "db" / "database_description"
    folder.mkdir(parents=True)
    (folder / "t.csv").write_text(
        "original_column_name,column_name,column_description,data_format,value_description\n"
        "first_name,first name,first name,text,\nage,,age in years,integer,\nzip,zip code,,text,\n",
        encoding="utf-8-sig",
    )
    assert column_notes(tmp_path / "db") == {("t", "age"): "age in years", ("t", "zip"): "zip code"}
    (folder / "u.csv").write_text("name,description\nx,an x\n")
    report = LoadReport("bird", "dev.json")
    assert column_notes(tmp_path / "db", report) == {("t", "age"): "age in years", ("t", "zip"): "zip code"}
    assert report.warnings == {
        f"{folder / 'u.csv'}: no original_column_name column, its descriptions are left out": 1
    }
    prompt = prepare_records("bird", bird, "dev", descriptions=True).records[6]["prompt"]
    assert "Column descriptions:\n-- customer.id: the unique id of the customer" in prompt
    assert prompt.index("Column descriptions:") < prompt.index("Question:")
    with pytest.raises(DataError, match="Fix: use --source bird"):
        prepare_records("demo", None, "dev", descriptions=True)


def test_sqlft_data_source_bird(bird, tmp_path, capsys):
    out = tmp_path / "dev.jsonl"
    argv = [
        "data",
        "--source",
        "bird",
        "--path",
        str(bird),
        "--split",
        "dev",
        "--descriptions",
        "--out",
        str(out),
    ]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "read 12, kept 10, skipped 2" in printed and "database not usable" in printed
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert len(records) == 10 and all("Column descriptions:" in r["prompt"] for r in records)
    meta = json.loads((tmp_path / "dev.meta.json").read_text())
    assert meta["db_dir"] == str(bird / "dev_databases")


def test_readme_bird_example_runs(bird, tmp_path, monkeypatch):
    from test_readme_examples import TINY, _block

    monkeypatch.chdir(tmp_path)
    block = _block("Examples on BIRD", "bash")
    assert "BIRD/MINIDEV" in block
    for line in block.replace("BIRD/MINIDEV", str(bird)).splitlines():
        if line.strip():
            words = [TINY if w == "smollm2-135m" else w for w in shlex.split(line)]
            assert words[0] == "sqlft" and main(words[1:]) == 0, line
    summary = json.loads((tmp_path / "report.json").read_text())["summary"]
    assert summary["semantics"] == "bird" and summary["n"] == 6
    assert set(summary["by_difficulty"]) == {"simple", "moderate", "challenging"}
