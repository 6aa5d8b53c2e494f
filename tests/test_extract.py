import json
import random
import re

import pytest

from sqlft.extract import extract_sql

# Quoted text (kept as is) or a run of whitespace (collapsed): an independent reference normaliser.
_QUOTED_OR_SPACE = re.compile(r"""('(?:[^']|'')*'|"[^"]*")|\s+""")


def normalise(sql: str) -> str:
    out = _QUOTED_OR_SPACE.sub(lambda m: m.group(1) or " ", sql).strip()
    return out[:-1].rstrip() if out.endswith(";") else out


@pytest.mark.parametrize(
    "raw, expected",
    [
        ("SELECT name FROM singer", "SELECT name FROM singer"),
        ("SELECT name FROM singer;", "SELECT name FROM singer"),
        ("  select  count(*)\n  from   singer ;  ", "select count(*) from singer"),
        ("```sql\nSELECT a FROM t\n```", "SELECT a FROM t"),
        ("```SQL\nSELECT a FROM t;\n```\nThis query returns a.", "SELECT a FROM t"),
        ("```\nSELECT a FROM t\n```", "SELECT a FROM t"),
        ("```sql SELECT a FROM t```", "SELECT a FROM t"),
        ("```sql\nSELECT a FROM t", "SELECT a FROM t"),  # unclosed fence (truncated output)
        ("Here is the query:\nSELECT a FROM t", "SELECT a FROM t"),
        ("Here is the SQL query you asked for: SELECT a FROM t", "SELECT a FROM t"),
        ("SQL: SELECT a FROM t", "SELECT a FROM t"),
        ("Answer: select a from t", "select a from t"),
        ("**SQL Query:** SELECT a FROM t", "SELECT a FROM t"),
        ("To select the names we need:\nSELECT name FROM singer", "SELECT name FROM singer"),
        ("The answer is SELECT x FROM y. This query returns x", "SELECT x FROM y"),
        ("Use `SELECT name FROM singer` here.", "SELECT name FROM singer"),
        ("SELECT a FROM t\n\nThis query selects a from t.", "SELECT a FROM t"),
        ("SELECT a FROM t\nExplanation: picks a", "SELECT a FROM t"),
        ("SELECT a FROM t This query selects a", "SELECT a FROM t"),
        ("SELECT a FROM t\nQuestion: how many?\nSELECT count(*) FROM t", "SELECT a FROM t"),
        ("SELECT a\nFROM t\nWHERE b = 1\nORDER BY a", "SELECT a FROM t WHERE b = 1 ORDER BY a"),
        ("<|im_start|>assistant\nSELECT a FROM t<|im_end|>\n<|im_start|>user", "SELECT a FROM t"),
        ("SELECT a FROM t</s>", "SELECT a FROM t"),
        ("SELECT a FROM t<|endoftext|>garbage", "SELECT a FROM t"),
        ("[INST] how many? [/INST] SELECT count(*) FROM t", "SELECT count(*) FROM t"),
        ("<s> SELECT a FROM t", "SELECT a FROM t"),
        ("SELECT a FROM t<|im_end|>\n<|im_start|>assistant\nSELECT b FROM u", "SELECT a FROM t"),
        (
            "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHow many?<|im_end|>\n"
            "<|im_start|>assistant\nSELECT count(*) FROM t<|im_end|>",
            "SELECT count(*) FROM t",
        ),
        ("<s>[INST] How many? [/INST] SELECT count(*) FROM t</s>", "SELECT count(*) FROM t"),
        (
            "<|start_header_id|>assistant<|end_header_id|>\n\nSELECT a FROM t<|eot_id|>",
            "SELECT a FROM t",
        ),
        ("<|eot_id|>", ""),
        ("", ""),
        ("SELECT a FROM t; DROP TABLE t;", "SELECT a FROM t"),
        ("SELECT a FROM t WHERE s = 'x;y' ; SELECT 2", "SELECT a FROM t WHERE s = 'x;y'"),
        ('SELECT "a;b" FROM t; SELECT 2', 'SELECT "a;b" FROM t'),
        ("SELECT [my;col] FROM t; SELECT 2", "SELECT [my;col] FROM t"),
        ("SELECT `a;b` FROM t; SELECT 2", "SELECT `a;b` FROM t"),
        ("SELECT 'it''s; here' FROM t; x", "SELECT 'it''s; here' FROM t"),
        ("SELECT a FROM t WHERE s = 'two  spaces\n kept'", "SELECT a FROM t WHERE s = 'two  spaces\n kept'"),
        ("SELECT a -- the column; really\nFROM t", "SELECT a FROM t"),
        ("SELECT a /* ; */ FROM t", "SELECT a FROM t"),
        ("SELECT a FROM t.", "SELECT a FROM t"),
        ("SELECT a FROM t WHERE x = 'The query returns'", "SELECT a FROM t WHERE x = 'The query returns'"),
        ("WITH c AS (SELECT 1) SELECT * FROM c", "WITH c AS (SELECT 1) SELECT * FROM c"),
        ("(SELECT a FROM t) UNION (SELECT b FROM u)", "(SELECT a FROM t) UNION (SELECT b FROM u)"),
        ("I do not know.", ""),
        ("We have 12 singers.", ""),
        ("Select the names of singers:\nSELECT name FROM singer", "SELECT name FROM singer"),
        ("With the schema above, the query is:\nSELECT a FROM t", "SELECT a FROM t"),
        (
            "with recursive c(n) as (select 1) select n from c",
            "with recursive c(n) as (select 1) select n from c",
        ),
    ],
)
def test_extract_cases(raw: str, expected: str) -> None:
    assert extract_sql(raw) == expected


DECORATIONS = [
    "{sql}",
    "{sql};",
    "```sql\n{sql}\n```",
    "```sql\n{sql};\n```\n\nThis query joins the tables.",
    "```\n{sql}\n```",
    "Here is the query:\n{sql}",
    "Here is the SQL query:\n\n```sql\n{sql}\n```\nNote: it uses a join.",
    "SQL: {sql}",
    "Answer: {sql}",
    "{sql}\n\nThis query returns the requested rows.",
    "{sql}\nExplanation: the query filters rows.",
    "{sql}; SELECT 1; SELECT 2",
    "<|im_start|>assistant\n{sql}<|im_end|>\n<|im_start|>user\nnext",
    "{sql}</s>",
    "{sql}<|endoftext|>",
    "{sql}<|eot_id|>",
    "[INST] What is asked? [/INST] {sql}",
    "<s> {sql} </s>",
    "  \n{sql}  \n\n",
]


@pytest.fixture(scope="module")
def gold_corpus(spider_dir) -> list[str]:
    return sorted({record["query"] for record in json.loads((spider_dir / "dev.json").read_text())})


def test_gold_is_fixed_point(gold_corpus: list[str]) -> None:
    failures = [g for g in gold_corpus if extract_sql(g) != normalise(g)]
    assert len(gold_corpus) > 500
    assert failures == []


@pytest.mark.parametrize("template", DECORATIONS)
def test_decorated_gold_extracts_back(gold_corpus: list[str], template: str) -> None:
    failures = [g for g in gold_corpus if extract_sql(template.format(sql=g)) != normalise(g)]
    assert failures[:3] == []


def _reflow(sql: str, rng: random.Random) -> str:
    """Replace each whitespace run outside quotes by a random mix of spaces, tabs and newlines."""
    return _QUOTED_OR_SPACE.sub(
        lambda m: m.group(1) or "".join(rng.choice(" \t\n") for _ in range(rng.randint(1, 3))), sql
    )


def test_reflowed_gold_extracts_back(gold_corpus: list[str]) -> None:
    rng = random.Random(0)
    failures = []
    for gold in gold_corpus:
        raw = rng.choice(DECORATIONS).format(sql=_reflow(gold, rng))
        if extract_sql(raw) != normalise(gold):
            failures.append(raw)
    assert failures[:3] == []


@pytest.mark.parametrize(
    "text, complete",
    [
        ("```sql\nSELECT 1\n```\nThis query counts", True),
        ("```sql\nSELECT 1", False),
        ("SELECT 'a;b' FROM t", False),
        ("SELECT 'a;b' FROM t; -- and now an explanation", True),
        ("Here is how to select rows; then", False),
        ("Sure, here it is:\nSELECT a FROM t; It returns", True),
        ("SELECT a FROM t", False),
    ],
)
def test_answer_complete_says_when_decoding_can_stop(text, complete):
    from sqlft.extract import answer_complete

    assert answer_complete(text) is complete
    if complete:  # stopping here loses nothing extract_sql would keep
        assert extract_sql(text) == extract_sql(text + " SELECT 2; more words")
