import csv
import json
import sqlite3

import pytest

from sqlft.data import DataError, load_examples
from sqlft.data.user_files import load_user_file

CONTEXT = "CREATE TABLE pets (name VARCHAR(20), age INT); INSERT INTO pets VALUES ('Rex', 3), ('Tom', 5);"


def write_csv(path, rows, fields):
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=fields)
        writer.writeheader()
        writer.writerows(rows)
    return path


@pytest.fixture
def pets_db(tmp_path):
    db_dir = tmp_path / "dbs"
    (db_dir / "pets").mkdir(parents=True)
    with sqlite3.connect(db_dir / "pets" / "pets.sqlite") as conn:
        conn.executescript(CONTEXT)
    conn.close()
    return db_dir


def test_csv_with_inline_context(tmp_path):
    path = write_csv(
        tmp_path / "mine.csv",
        [
            {
                "question": "Oldest pet?",
                "query": "SELECT name FROM pets ORDER BY age DESC LIMIT 1",
                "context": CONTEXT,
            },
            {"question": "", "query": "SELECT 1", "context": CONTEXT},
            {"question": "Bad", "query": "SELECT FROM WHERE", "context": CONTEXT},
            {"question": "Young pets?", "query": "SELECT name FROM pets WHERE age < 4", "context": CONTEXT},
        ],
        ["question", "query", "context"],
    )
    examples, report = load_examples("csv", path)
    assert [e.question for e in examples] == ["Oldest pet?", "Young pets?"]
    assert dict(report.dropped) == {"empty question or sql": 1, "gold does not parse": 1}
    assert "row 3" in report.samples["gold does not parse"][0]
    assert examples[0].source == "csv" and examples[0].context.startswith("CREATE TABLE pets")
    assert examples[0].extra["gold_rows"] == 1


def test_jsonl_malformed_line_is_a_counted_skip_naming_the_line(tmp_path):
    path = tmp_path / "mine.jsonl"
    good = {"question": "How many pets?", "query": "SELECT COUNT(*) FROM pets", "context": CONTEXT, "id": 7}
    path.write_text(
        json.dumps(good) + "\n{not json\n\n[1, 2]\n" + json.dumps({**good, "question": "Count?"}) + "\n"
    )
    examples, report = load_user_file(path)
    assert [e.question for e in examples] == ["How many pets?", "Count?"]
    assert examples[0].extra["id"] == 7
    assert report.dropped["malformed JSON line"] == 2 and report.read == 4
    assert "line 2" in report.samples["malformed JSON line"][0]
    assert "line 4" in report.samples["malformed JSON line"][1]


def test_csv_row_with_extra_fields_is_skipped(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text(
        f'question,query,context\n"Count?",SELECT COUNT(*) FROM pets,"{CONTEXT}"\nA,SELECT 1,x,surplus\n'
    )
    examples, report = load_user_file(path)
    assert len(examples) == 1 and report.dropped["malformed CSV row"] == 1


def test_database_folder_schema(tmp_path, pets_db):
    path = tmp_path / "q.jsonl"
    rows = [
        {"question": "Names?", "query": "SELECT name FROM pets", "db_id": "pets"},
        {"question": "Nope?", "query": "SELECT colour FROM pets", "db_id": "pets"},
        {"question": "Where?", "query": "SELECT 1 FROM zoo", "db_id": "zoo"},
        {"question": "Delete", "query": "DELETE FROM pets", "db_id": "pets"},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows))
    examples, report = load_user_file(path, db_dir=pets_db)
    assert [(e.db_id, e.context) for e in examples] == [("pets", None)]
    assert dict(report.dropped) == {
        "gold fails to execute (OperationalError)": 1,
        "unknown db_id": 1,
        "gold is DELETE, not kept": 1,
    }
    kept, _ = load_user_file(path, db_dir=pets_db, statements=("SELECT", "DELETE"))
    assert [e.question for e in kept] == ["Names?", "Delete"]
    with sqlite3.connect(pets_db / "pets" / "pets.sqlite") as conn:  # the DELETE ran on a copy
        assert conn.execute("SELECT COUNT(*) FROM pets").fetchone() == (2,)
    conn.close()


def test_custom_column_names_and_dialect(tmp_path):
    path = write_csv(
        tmp_path / "mine.csv",
        [{"nl": "Names?", "gold": "SELECT `name` FROM `pets`", "ddl": CONTEXT}],
        ["nl", "gold", "ddl"],
    )
    examples, _ = load_user_file(path, question_col="nl", sql_col="gold", context_col="ddl", dialect="mysql")
    assert examples[0].sql == 'SELECT "name" FROM "pets"'


def test_missing_column_names_file_column_present_and_option(tmp_path):
    path = write_csv(
        tmp_path / "mine.csv",
        [{"question": "q", "sql": "SELECT 1", "context": CONTEXT}],
        ["question", "sql", "context"],
    )
    with pytest.raises(DataError) as info:
        load_user_file(path)
    message = str(info.value)
    assert str(path) in message and "'query'" in message
    assert "columns present: question, sql, context" in message and "sql_col=" in message


def test_no_schema_column_or_no_db_dir(tmp_path):
    path = write_csv(tmp_path / "a.csv", [{"question": "q", "query": "SELECT 1"}], ["question", "query"])
    with pytest.raises(DataError, match="context_col="):
        load_user_file(path)
    path = write_csv(
        tmp_path / "b.csv",
        [{"question": "q", "query": "SELECT 1", "db_id": "x"}],
        ["question", "query", "db_id"],
    )
    with pytest.raises(DataError, match="db_dir="):
        load_user_file(path)


def test_bad_paths(tmp_path):
    with pytest.raises(DataError, match="no such file"):
        load_user_file(tmp_path / "absent.csv")
    (tmp_path / "notes.txt").write_text("hello")
    with pytest.raises(DataError, match="unsupported file type"):
        load_user_file(tmp_path / "notes.txt")
    with pytest.raises(DataError, match="pass path="):
        load_user_file(None)


def test_bytes_that_are_not_utf8_cost_their_record_only_and_are_named(tmp_path):
    good = {"question": "How many pets?", "query": "SELECT COUNT(*) FROM pets", "context": CONTEXT}
    line = json.dumps(good).encode()
    bad = json.dumps({**good, "question": "Pets named XX?"}).encode().replace(b"XX", b"\xff\xfe")
    other = json.dumps({**good, "question": "Count?"}).encode()
    files = {
        "mine.jsonl": line + b"\n" + bad + b"\n" + other + b"\n",
        "mine.json": b"[" + line + b",\n" + bad + b",\n" + other + b"]",
        "mine.csv": b"question,query,context\n"
        + b'"How many pets?",SELECT COUNT(*) FROM pets,"'
        + CONTEXT.encode()
        + b'"\n'
        + b'"Pets named \xff?",SELECT COUNT(*) FROM pets,"'
        + CONTEXT.encode()
        + b'"\n'
        + b'"Count?",SELECT COUNT(*) FROM pets,"'
        + CONTEXT.encode()
        + b'"\n',
    }
    for name, content in files.items():
        path = tmp_path / name
        path.write_bytes(content)
        examples, report = load_user_file(path)
        assert len(examples) == 2, name
        assert report.skipped == 1 and report.read == 3, name
        sample = next(iter(report.samples.values()))[0]
        assert str(path) in sample and ("2" in sample.split(":")[1]) and "UTF-8" in sample, sample
        with pytest.raises(DataError, match=rf"{name}: .*2.*UTF-8.*Fix"):
            load_user_file(path, strict=True)
    jsonl_sample = load_user_file(tmp_path / "mine.jsonl")[1].samples
    offset = len(line) + 1 + bad.index(b"\xff")
    assert f"at byte {offset}" in next(iter(jsonl_sample.values()))[0]
