"""Exact match after sqlglot normalisation."""

import pytest

from sqlft.evaluate.exact import exact_match, normalize_sql


@pytest.mark.parametrize(
    "pred, gold",
    [
        ("select  name from SINGER", "SELECT name FROM singer"),  # case and whitespace
        ('SELECT "name" FROM `singer`;', "SELECT name FROM singer"),  # quoting, semicolon
        (
            "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.id = T2.sid",
            "SELECT singer.name FROM singer JOIN concert ON singer.id = concert.sid",
        ),  # table aliases
        ("SELECT count(*) AS n FROM t", "SELECT COUNT(*) FROM t"),  # unused column alias
    ],
)
def test_equivalent_spellings_match(pred, gold):
    assert exact_match(pred, gold)


@pytest.mark.parametrize(
    "pred, gold",
    [
        (
            "SELECT name FROM singer WHERE country = 'france'",
            "SELECT name FROM singer WHERE country = 'France'",
        ),
        ("SELECT name, age FROM singer", "SELECT age, name FROM singer"),
        ("SELECT a FROM t AS x JOIN t AS y ON x.a = y.b", "SELECT a FROM t JOIN t ON t.a = t.b"),  # self-join
        ("SELECT count(*) AS n FROM t ORDER BY n", "SELECT count(*) FROM t ORDER BY n"),  # alias in use
        ("SELECT 1; SELECT 2", "SELECT 1; SELECT 2"),  # not one statement
        ("SELEC name FROM", "SELEC name FROM"),  # does not parse
    ],
)
def test_different_queries_do_not_match(pred, gold):
    assert not exact_match(pred, gold)


def test_normalized_text_is_stable():
    once = normalize_sql("select T1.Name from Singer as T1 where T1.Age > 20")
    assert once == "SELECT singer.name FROM singer WHERE singer.age > 20"
    assert normalize_sql(once) == once
    assert normalize_sql('SELECT "Song Name" FROM t') == 'SELECT "Song Name" FROM t'
