"""Value retrieval: the FTS5 index, its cache, the matcher, and the values in prepared records."""

import sqlite3

import pytest

from sqlft.data.prepare import prepare_records
from sqlft.data.records import DataError, Example
from sqlft.values import MIN_SCORE, ValueIndex, ValueRetriever, build_index, index_path, score, words

SHOP = """
CREATE TABLE country (code TEXT PRIMARY KEY, name TEXT, continent TEXT, population INTEGER);
CREATE TABLE city (id INTEGER PRIMARY KEY, name TEXT, country TEXT REFERENCES country(code), state TEXT);
INSERT INTO country VALUES ('USA', 'United States', 'North America', 300), ('FRA', 'France', 'Europe', 60),
  ('AUS', 'Australia', 'Oceania', 20), ('AUT', 'Austria', 'Europe', 9);
INSERT INTO city VALUES (1, 'Raleigh', 'USA', 'NorthCarolina'), (2, 'Paris', 'FRA', 'Île-de-France'),
  (3, 'Vienna', 'AUT', 'Wien'), (4, 'Dallas', 'USA', 'Texas');
"""


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("SQLFT_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def shop_db(tmp_path):
    path = tmp_path / "db" / "shop" / "shop.sqlite"
    path.parent.mkdir(parents=True)
    with sqlite3.connect(path) as conn:
        conn.executescript(SHOP)
    conn.close()
    return path


def test_score_prefers_whole_phrases_and_folds_plurals_and_adjectives():
    asked = words("Which cities are in the United States, in Asian countries or in Europe?")
    assert score("United States", asked) == 2.0  # every word, as one phrase
    assert score("Asia", asked) == 2.0  # 'Asian'
    assert score("Europe", asked) == 2.0
    assert score("States United", asked) == 1.0  # every word, not in order
    assert score("Nordic Countries", asked) == 0.5 < MIN_SCORE  # one common word of two is no match
    assert score("Austria", asked) == 0.0
    assert words("Île-de-France") == ["ile", "de", "france"]


def test_index_is_built_once_per_content_and_leaves_the_source_alone(cache, shop_db, tmp_path):
    before = shop_db.read_bytes()
    path = build_index(shop_db)
    assert path.is_file() and path.is_relative_to(cache / "values")
    built = path.stat().st_mtime_ns
    copy = tmp_path / "copy.sqlite"
    copy.write_bytes(before)
    assert build_index(copy) == path and path.stat().st_mtime_ns == built  # same content, same index
    assert shop_db.read_bytes() == before
    with sqlite3.connect(shop_db) as conn:
        conn.execute("INSERT INTO city VALUES (5, 'Austin', 'USA', 'Texas')")
    conn.close()
    assert index_path(shop_db) != path  # new content, new index
    assert not list(path.parent.glob(".*"))  # no temporary file left behind


def test_search_finds_the_values_the_question_names(cache, shop_db):
    index = ValueIndex.open(shop_db)
    try:
        found = index.search("How many cities are in North Carolina or in the United States?", 5)
        assert [(m.table, m.column, m.value) for m in found] == [
            ("country", "name", "United States"),
            ("city", "state", "NorthCarolina"),
        ]
        assert [m.value for m in index.search("Which European countries are there?", 5)] == ["Europe"]
        assert index.search("Which European countries are there?", 0) == []
        assert len(index.search("France Paris Vienna Texas Raleigh Dallas Europe", 3)) == 3
        assert index.search("How many are there?", 5) == []  # only stop words
    finally:
        index.close()


def test_retriever_reads_databases_and_inline_contexts(cache, shop_db):
    retriever = ValueRetriever(2, shop_db.parent.parent)
    by_db = retriever.for_example(Example("Cities in France?", "", "spider", db_id="shop"))
    assert by_db == [{"table": "country", "column": "name", "value": "France"}]
    inline = Example("Cities in Texas?", "", "gretel", context=SHOP)
    assert retriever.for_example(inline) == [{"table": "city", "column": "state", "value": "Texas"}]
    with pytest.raises(DataError, match="Fix"):
        retriever.for_example(Example("Cities in Texas?", "", "spider", db_id="no_such_db"))
    retriever.close()


def test_spider_record_keeps_its_values_and_shows_them_in_the_prompt(spider_dir, cache):
    prepared = prepare_records("spider", spider_dir, "dev", schema_style="mschema", value_retrieval=5)
    wta = [r for r in prepared.records if r["db_id"] == "wta_1"]
    assert wta and all(r["extra"]["retrieved_values"] == [] for r in wta)  # no .sqlite: kept, warned
    assert any("wta_1" in message for message in prepared.report.warnings)
    with_values = [r for r in prepared.records if r["extra"]["retrieved_values"]]
    assert len(with_values) > 300
    for record in with_values:
        for item in record["extra"]["retrieved_values"]:
            assert set(item) == {"table", "column", "value"}
            assert f"'{item['value']}'" in record["prompt"].replace(record["question"], "")
    plain = prepare_records("spider", spider_dir, "dev", schema_style="mschema").records
    assert all("retrieved_values" not in r["extra"] for r in plain)


def test_prepare_summary_says_how_many_questions_got_values(cache):
    with_values = prepare_records("demo", None, "dev", schema_style="compact", value_retrieval=3)
    got = sum(bool(r["extra"]["retrieved_values"]) for r in with_values.records)
    assert 0 < got < len(with_values.records)
    assert f"value retrieval: {got} of {len(with_values.records)} questions name database values" in (
        with_values.summary()
    )
    assert "value retrieval" not in prepare_records("demo", None, "dev", schema_style="compact").summary()
