"""`sqlft eval` and evaluate_predictions: records in order, bad lines counted, summary, files."""

import csv
import json
import subprocess
import sys

import pytest

from sqlft.evaluate.consistency import best_of
from sqlft.evaluate.report import evaluate_predictions, failure_table, format_table, read_predictions


@pytest.fixture
def db_dir(toy_db_dir):
    return toy_db_dir


RECORDS = [
    {"id": 0, "db_id": "toy", "gold": "SELECT a FROM t", "pred": "SELECT a FROM t", "question": "all a"},
    {"id": 1, "db_id": "toy", "gold": "SELECT a FROM t WHERE a > 5", "pred": "SELECT a FROM t WHERE a > 9"},
    {"id": 2, "db_id": "toy", "gold": "SELECT count(*) FROM t", "pred": "SELECT nope FROM t"},
    {
        "id": 3,
        "db_id": "toy",
        "gold": "SELECT a, b FROM t ORDER BY a",
        "pred": "SELECT b, a FROM t ORDER BY a DESC",
    },
    {"id": 4, "db_id": "../toy", "gold": "SELECT 1", "pred": "SELECT 1"},
    {"id": 5, "db_id": "toy", "gold": "SELECT bad FROM t", "pred": "SELECT 1"},
    {
        "id": 6,
        "context": "CREATE TABLE u (x); INSERT INTO u VALUES (4);",
        "gold": "SELECT 4",
        "pred": "SELECT x FROM u",
    },
]


def _write_jsonl(path, lines):
    path.write_text("\n".join(x if isinstance(x, str) else json.dumps(x) for x in lines) + "\n")
    return path


def test_records_keep_order_fields_and_get_verdicts(db_dir):
    report = evaluate_predictions([dict(r) for r in RECORDS], db_dir, timeout_s=5)
    records = report["records"]
    assert [r["id"] for r in records] == list(range(7))
    assert records[0]["question"] == "all a"
    assert [r["exec_match"] for r in records] == [True, True, False, False, False, False, True]
    assert records[0]["exact_match"] and not records[3]["exact_match"]
    assert records[2]["error"].startswith("unknown table/column") and records[2]["valid"] is False
    assert records[4]["error"].startswith("unknown db")
    assert records[5]["error"].startswith("gold error")
    assert records[1]["gold_empty"] is True and records[0]["gold_empty"] is False
    assert all(r["hardness"] in {"easy", "medium", "hard", "extra"} for r in records)
    summary = report["summary"]
    assert (summary["n"], summary["scored"], summary["exec_match"]) == (7, 5, 3)
    assert summary["exec_accuracy"] == pytest.approx(3 / 5)
    assert summary["exec_accuracy_nonempty_gold"] == pytest.approx(2 / 4)  # record 1 left out
    assert (summary["empty_gold"], summary["empty_gold_matches"]) == (1, 1)
    assert summary["errors"] == {"schema": 1, "unknown_db": 1, "gold": 1}
    assert sum(row["n"] for row in summary["by_hardness"].values()) == 5
    assert set(summary["rouge"]) == {"rouge1", "rouge2", "rougeL", "rougeLsum"}
    assert "without empty-gold" in format_table(summary)
    assert "| unknown table/column | 1 |" in failure_table(report)


def test_workers_give_the_same_records_in_the_same_order(db_dir):
    many = [dict(RECORDS[i % len(RECORDS)], id=i) for i in range(40)]
    one = evaluate_predictions([dict(r) for r in many], db_dir, timeout_s=5, with_rouge=False)
    two = evaluate_predictions([dict(r) for r in many], db_dir, timeout_s=5, workers=2, with_rouge=False)
    assert two["records"] == one["records"]
    assert two["summary"] == one["summary"]


def test_bad_lines_are_counted_errors_naming_file_and_line(tmp_path, db_dir):
    path = _write_jsonl(
        tmp_path / "pred.jsonl",
        [
            RECORDS[0],
            "{not json",
            "[1, 2]",
            {"db_id": "toy", "pred": "SELECT 1"},
            {"gold": "SELECT 1", "pred": "x"},
        ],
    )
    records = read_predictions(path)
    assert len(records) == 5
    assert records[1]["error"].startswith(f"input: {path} line 2: not valid JSON")
    assert "line 3: not a JSON object" in records[2]["error"]
    assert "line 4: missing or non-string gold" in records[3]["error"] and "fix:" in records[3]["error"]
    assert "line 5: neither db_id nor context" in records[4]["error"]
    report = evaluate_predictions(records, db_dir)
    assert [r["exec_match"] for r in report["records"]] == [True, False, False, False, False]
    assert report["summary"]["errors"] == {"input": 4}
    assert report["summary"]["exec_accuracy"] == 1.0


def _run_cli(args, cwd):
    code = (
        "import json, sys\n"
        "from sqlft.cli import main\n"
        f"rc = main({['eval', *args]!r})\n"
        "heavy = ('torch', 'transformers', 'pandas', 'matplotlib', 'nltk', 'absl')\n"
        "heavy = sorted(m for m in heavy if m in sys.modules)\n"
        "print(json.dumps({'rc': rc, 'heavy': heavy}))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout, json.loads(done.stdout.strip().splitlines()[-1])


def test_cli_writes_json_and_csv_without_importing_the_ml_stack_or_plotting(tmp_path, db_dir):
    pred = _write_jsonl(tmp_path / "pred.jsonl", [*RECORDS, "oops"])
    out = tmp_path / "run" / "report.json"
    stdout, status = _run_cli(
        [str(pred), "--db-dir", str(db_dir), "--out", str(out), "--timeout", "5", "--workers", "2"], tmp_path
    )
    assert status == {"rc": 0, "heavy": []}
    assert "exec" in stdout and f"{pred} line 8: not valid JSON" in stdout
    report = json.loads(out.read_text())
    assert len(report["records"]) == 8 and report["summary"]["exec_match"] == 3
    rows = list(csv.DictReader(out.with_suffix(".csv").open()))
    assert [row["exec_match"] for row in rows] == [
        "True",
        "True",
        "False",
        "False",
        "False",
        "False",
        "True",
        "False",
    ]
    assert {"id", "db_id", "gold", "pred", "error", "hardness"} <= set(rows[0])


def test_cli_refuses_a_missing_file(tmp_path):
    stdout, status = _run_cli([str(tmp_path / "none.jsonl"), "--no-rouge"], tmp_path)
    assert status["rc"] == 2 and "no such file" in stdout


def test_api_marks_incomplete_records_without_touching_the_input(db_dir):
    records = [
        {"db_id": "toy", "gold": "SELECT 1"},
        {"gold": "SELECT 1", "pred": "SELECT 1"},
        dict(RECORDS[0]),
    ]
    report = evaluate_predictions(records, db_dir, with_rouge=False)
    assert records[0] == {"db_id": "toy", "gold": "SELECT 1"}
    assert [r["error_kind"] for r in report["records"]] == ["input", "input", None]
    assert "missing or non-string pred" in report["records"][0]["error"]
    assert report["summary"]["exec_accuracy"] == 1.0 and report["summary"]["scored"] == 1


def test_odd_text_survives_the_round_trip(tmp_path, db_dir):
    from sqlft.evaluate.report import write_report

    records = [dict(RECORDS[0], question="caf\u00e9 \ud800"), dict(RECORDS[0], pred="SELECT '\ud800'")]
    report = evaluate_predictions(records, db_dir, with_rouge=True)
    assert report["records"][1]["error_kind"] == "syntax"
    json_path, csv_path = write_report(report, tmp_path / "r.json")
    assert json.loads(json_path.read_text(encoding="utf-8"))["records"][0]["question"] == "caf\u00e9 \ud800"
    assert len(list(csv.DictReader(csv_path.open(encoding="utf-8")))) == 2


def test_sampled_candidates_get_selection_rows_beside_greedy(db_dir):
    gold = "SELECT a FROM t WHERE b = 'y'"
    records = [
        {  # greedy wrong; the first sample fails, the second runs but is wrong, two agree on the right rows
            "db_id": "toy",
            "gold": gold,
            "pred": "SELECT a FROM t",
            "candidates": [
                {"sql": "SELECT nope FROM t", "score": -0.1},
                {"sql": "SELECT a FROM t", "score": -0.2},
                {"sql": "SELECT a FROM t WHERE b = 'y'", "score": -0.5},
                {"sql": "SELECT a FROM t WHERE a = 2", "score": -0.4},
            ],
        },
        {  # the majority is wrong, the execution-guided pick (the likeliest that runs, sampled last) is right
            "db_id": "toy",
            "gold": gold,
            "pred": gold,
            "candidates": [
                {"sql": "SELECT 5", "score": -0.2},
                {"sql": "SELECT 5", "score": -0.3},
                {"sql": gold, "score": -0.1},
            ],
        },
        {"db_id": "toy", "gold": gold, "pred": gold},  # no candidates: no selection verdicts
    ]
    report = evaluate_predictions(records, db_dir, with_rouge=False)
    rows = report["records"]
    assert [r["exec_match"] for r in rows] == [False, True, True]
    assert (rows[0]["self_consistency_match"], rows[0]["execution_guided_match"]) == (True, False)
    assert (rows[1]["self_consistency_match"], rows[1]["execution_guided_match"]) == (False, True)
    assert "self_consistency_match" not in rows[2]
    summary = report["summary"]
    assert summary["exec_accuracy"] == pytest.approx(2 / 3)  # greedy numbers unchanged
    assert summary["self_consistency"] == {"n": 2, "exec_match": 1, "exec_accuracy": 0.5}
    assert summary["execution_guided"]["exec_match"] == 1
    assert "self-consistency over sampled candidates: 0.500 exec (2 records" in format_table(summary)
    summary["best_of"] = best_of(summary, 4, "executable")
    assert summary["best_of"] == {
        "samples": 4,
        "vote": "executable",
        "n": 2,
        "exec_match": 1,
        "exec_accuracy": 0.5,
        "greedy_exec_accuracy": pytest.approx(2 / 3),
    }
    assert "best of 4 (executable vote): 0.500 exec (2 records; greedy above)" in format_table(summary)
    no_candidates = evaluate_predictions(records[2:], db_dir, with_rouge=False)["summary"]
    assert best_of(no_candidates, 4, "execution") is None


@pytest.mark.parametrize(
    "report",
    [
        {"summary": {"n": 0, "nested": {"a": [1, None]}}, "records": []},
        {"records": [{"pred": "x", "sql": {"a": [1, 2]}}, {}]},
        {"summary": {}, "extra": "kept", "records": [{"q": "caf\u00e9"}]},
    ],
)
def test_report_json_reads_back_as_written(tmp_path, report):
    from sqlft.evaluate.report import write_report

    json_path, _ = write_report(report, tmp_path / "r.json")
    assert json.loads(json_path.read_text(encoding="utf-8")) == report


def test_a_prediction_line_that_is_not_utf8_is_one_bad_record_named_by_line_and_byte(tmp_path):
    good = json.dumps({"db_id": "pets", "gold": "SELECT 1", "pred": "SELECT 1"}).encode()
    bad = good.replace(b'SELECT 1"}', b'SELECT \xff"}')
    path = tmp_path / "preds.jsonl"
    path.write_bytes(good + b"\n" + bad + b"\n" + good + b"\n")
    records = read_predictions(path)
    assert [r.get("pred") for r in records] == ["SELECT 1", None, "SELECT 1"]
    assert records[1]["error_kind"] == "input"
    offset = len(good) + 1 + bad.index(b"\xff")
    assert f"{path} line 2: undecodable bytes (not UTF-8) at byte {offset}" in records[1]["error"]


def test_a_50mb_prediction_is_scored_invalid_unread_and_wrong_types_duplicates_are_named(db_dir, tmp_path):
    huge = "SELECT a FROM t WHERE a IN (" + ", ".join(["1"] * 17_000_000) + ")"  # about 50 MB
    path = _write_jsonl(
        tmp_path / "preds.jsonl",
        [
            {"id": 0, "db_id": "toy", "gold": "SELECT a FROM t", "pred": "SELECT a FROM t"},
            {"id": 1, "db_id": "toy", "gold": "SELECT a FROM t", "pred": huge},
            {"id": 2, "db_id": ["toy"], "gold": "SELECT a FROM t", "pred": "SELECT a FROM t"},
            {"id": 0, "db_id": "toy", "gold": "SELECT a FROM t", "pred": "SELECT b FROM t"},
        ],
    )
    assert path.stat().st_size > 50_000_000
    report = evaluate_predictions(read_predictions(path), db_dir, timeout_s=5)
    records = report["records"]
    assert records[1]["error_kind"] == "too_long" and records[1]["valid"] is False
    assert "51,000,0" in records[1]["error"] and len(records[1]["pred"]) < 300
    assert records[2]["error_kind"] == "input" and "`db_id` is a list, not a string" in records[2]["error"]
    summary = report["summary"]
    assert (summary["n"], summary["scored"], summary["exec_match"]) == (4, 3, 1)
    assert summary["duplicates"] == {"count": 1, "examples": ["0"]}
    table = format_table(summary)
    assert "scored 3 of 4" in table and "duplicates: 1 records repeat an earlier id" in table
