import json
import shutil
from pathlib import Path

import datasets
import pytest

from sqlft.data import DataError, load_examples
from sqlft.data.spider import load_spider

FIXTURE = Path(__file__).parent / "fixtures" / "spider"


def test_real_dev_split_loads_whole(spider_dir):
    examples, report = load_spider(spider_dir, "dev")
    assert (report.read, report.kept, report.skipped) == (1034, 1034, 0)
    first = examples[0]
    assert first.question == "How many singers do we have?"
    assert first.sql == "SELECT count(*) FROM singer"
    assert (first.db_id, first.context, first.source) == ("concert_singer", None, "spider")
    assert set(first.extra) >= {"sql", "query_toks", "query_toks_no_value", "question_toks"}
    assert first.extra["sql"]["select"]  # the parsed query that hardness is computed from
    assert len({e.db_id for e in examples}) == 20


def test_unknown_db_and_empty_question_are_counted():
    examples, report = load_spider(FIXTURE, "dev")
    assert [e.db_id for e in examples] == ["concert_singer", "concert_singer", "pets_1"]
    assert dict(report.dropped) == {"unknown db_id": 1, "empty question or sql": 1}
    assert (
        "record 3" in report.samples["unknown db_id"][0]
        and "no_such_db" in report.samples["unknown db_id"][0]
    )
    with pytest.raises(DataError, match=r"record 3: unknown db_id.*Fix: add its entry"):
        load_spider(FIXTURE, "dev", strict=True)


def test_train_joins_train_spider_and_train_others():
    examples, report = load_spider(FIXTURE, "train")
    assert len(examples) == 3
    assert report.path.endswith("train_spider.json + " + str(FIXTURE / "train_others.json"))
    assert {e.extra["split"] for e in examples} == {"train"}


def test_limit_and_a_single_split_file():
    examples, _ = load_examples("spider", FIXTURE / "dev.json", limit=1)
    assert len(examples) == 1


def test_hub_when_the_split_json_is_absent(tmp_path, monkeypatch):
    shutil.copy(FIXTURE / "tables.json", tmp_path / "tables.json")
    calls = []
    rows = [
        {
            k: r[k]
            for k in ("db_id", "query", "question", "query_toks", "query_toks_no_value", "question_toks")
        }
        for r in json.loads((FIXTURE / "dev.json").read_text())
    ]

    def fake_load_dataset(hub_id, split):
        calls.append((hub_id, split))
        return datasets.Dataset.from_list(rows)

    monkeypatch.setattr(datasets, "load_dataset", fake_load_dataset)
    examples, report = load_spider(tmp_path, "dev")
    assert calls == [("xlangai/spider", "validation")]
    assert len(examples) == 3 and report.dropped["unknown db_id"] == 1
    assert examples[0].extra["query_toks"][0] == "SELECT"

    examples, _ = load_spider(None, "train", tables_json=tmp_path / "tables.json", hub_id="me/spider")
    assert calls[-1] == ("me/spider", "train")


def test_schemas_are_required(tmp_path):
    with pytest.raises(DataError, match="tables_json="):
        load_spider(None, "dev")
    with pytest.raises(DataError, match="no such Spider folder"):
        load_spider(tmp_path / "absent", "dev")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "tables.json").write_text("[")
    shutil.copy(FIXTURE / "dev.json", bad / "dev.json")
    with pytest.raises(DataError, match="not valid JSON"):
        load_spider(bad, "dev")


def test_databases_that_cannot_run_queries_are_named_with_the_records_they_cost(tmp_path):
    release = tmp_path / "spider"
    shutil.copytree(FIXTURE, release)
    (release / "database" / "concert_singer").mkdir(parents=True)
    (release / "database" / "concert_singer" / "concert_singer.sqlite").write_bytes(b"")
    (release / "database" / "pets_1").mkdir(parents=True)
    garbage = release / "database" / "pets_1" / "pets_1.sqlite"
    garbage.write_bytes(b"not a database at all" * 100)
    examples, report = load_spider(release, "dev")
    assert len(examples) == 3  # kept: the schema comes from tables.json
    unexecutable = ": its questions are kept, but none of them can be executed"
    assert report.warnings == {
        f"{release}/database/concert_singer/concert_singer.sqlite is empty (0 bytes){unexecutable}": 2,
        f"{garbage} is not a SQLite database (file is not a database){unexecutable}": 1,
    }
    assert "warning: 2 records" in report.summary()
    assert garbage.read_bytes() == b"not a database at all" * 100
    shutil.rmtree(release / "database" / "pets_1")
    _, report = load_spider(release, "dev")
    assert any("pets_1.sqlite is missing" in message for message in report.warnings)
