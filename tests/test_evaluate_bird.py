"""BIRD's execution semantics: sqlft agrees with an oracle of the official comparison on every pair.

The oracle follows bird-bench's `evaluation_ex.py` as read (not copied): Python's sqlite3 on the
database, the prediction then the gold on one cursor, `set(pred) == set(gold)`, any error or a
30 s run scores 0. It opens the database read-only so that no pair can change it.
"""

from __future__ import annotations

import json
import random
import sqlite3
import time
from pathlib import Path

import pytest
import sqlglot
from bird_fixture import build_bird
from sqlglot import exp

from sqlft.evaluate.bird import bird_equal, resolve_semantics
from sqlft.evaluate.execution import Executor
from sqlft.evaluate.report import evaluate_predictions, format_table
from sqlft.evaluate.ves import REWARD_BUCKETS, r_ves, reward


def official_ex(pred: str, gold: str, db_path: Path, timeout_s: float = 30.0) -> int:
    """1 when both run and return the same set of rows, else 0 (errors and timeouts included)."""
    conn = sqlite3.connect(f"{db_path.resolve().as_uri()}?mode=ro", uri=True)
    deadline = time.monotonic() + timeout_s
    conn.set_progress_handler(lambda: int(time.monotonic() > deadline), 10_000)
    try:
        cursor = conn.cursor()
        cursor.execute(pred)
        pred_rows = cursor.fetchall()
        cursor.execute(gold)
        gold_rows = cursor.fetchall()
    except Exception:
        return 0
    finally:
        conn.close()
    return int(set(pred_rows) == set(gold_rows))


def _rewritten(sql: str, change) -> str | None:
    """`sql` with one change applied to its parsed SELECT, or None where sqlglot cannot."""
    try:
        tree = sqlglot.parse_one(sql, read="sqlite")
    except sqlglot.errors.SqlglotError:
        return None
    if not isinstance(tree, exp.Select) or not change(tree):
        return None
    return tree.sql(dialect="sqlite")


def _reverse_columns(tree: exp.Select) -> bool:
    if len(tree.expressions) < 2:
        return False
    tree.set("expressions", list(reversed(tree.expressions)))
    return True


def _drop_order(tree: exp.Select) -> bool:
    if not tree.args.get("order"):
        return False
    tree.set("order", None)
    tree.set("limit", None)
    return True


def _distinct(tree: exp.Select) -> bool:
    if tree.args.get("distinct"):
        tree.set("distinct", None)
    else:
        tree.set("distinct", exp.Distinct())
    return True


FIXED = [  # predictions of their own: constants, NULLs, empty text, writes, statements that are not one
    "SELECT NULL",
    "SELECT 1",
    "SELECT 1.0",
    "SELECT '1'",
    "SELECT NULL UNION ALL SELECT NULL",
    "",
    "   ",
    "-- only a comment",
    "SELECT 1; SELECT 2",
    "SELECT 1; ;",
    "DROP TABLE sqlite_master",
    "SELECT * FROM no_such_table",
    "SELEC 1",
]


def pairs_for(golds: list[str], rng: random.Random, others: int = 6) -> list[tuple[str, str]]:
    """(pred, gold) pairs on one database: each gold against itself, other golds, its rewrites."""
    pairs = []
    for gold in golds:
        preds = [gold, *rng.sample(golds, min(others, len(golds)))]
        preds += [f"{gold};", f"{gold}; ", f"{gold};\n", f"{gold}; ;", f"{gold}; SELECT 1", f"-- why\n{gold}"]
        preds += [f"{gold}; -- done", f"{gold} /* done */", f"/* why */ {gold};;"]
        preds += [f"SELECT * FROM ({gold}) WHERE 0", f"SELECT * FROM ({gold}) LIMIT 1"]
        preds += [p for p in (_rewritten(gold, c) for c in (_reverse_columns, _drop_order, _distinct)) if p]
        preds += rng.sample(FIXED, 3)
        pairs += [(pred, gold) for pred in preds]
        pairs += [(gold, pred) for pred in rng.sample(preds, 2)]  # odd golds too: empty, failing, ...
    for pred in FIXED:
        pairs += [(pred, other) for other in ("SELECT NULL", "SELECT 1", "SELECT NULL WHERE 0", "")]
    return pairs


def test_bird_equal_is_a_set_comparison_with_column_order():
    assert bird_equal([(1, "a"), (1, "a"), (2, "b")], [(2, "b"), (1, "a")])
    assert not bird_equal([("a", 1)], [(1, "a")])
    assert bird_equal([(1,)], [(1.0,)]) and not bird_equal([(1,)], [("1",)])
    assert bird_equal([(None,)], [(None,)]) and bird_equal([], [])


def test_sqlft_agrees_with_the_official_comparison_on_every_spider_dev_pair(spider_dir):
    """Every Spider dev gold against itself, six other golds of its database, rewrites of itself
    (column order, ORDER BY, DISTINCT, empty and one-row results, extra statements, comments) and
    fixed queries (NULLs, constants, empty text, writes, errors): sqlft must score each pair as the
    official does."""
    rng = random.Random(26)
    by_db: dict[str, list[str]] = {}
    for record in json.loads((spider_dir / "dev.json").read_text()):
        by_db.setdefault(record["db_id"], []).append(record["query"])
    executor = Executor(spider_dir / "database", timeout_s=30.0, semantics="bird")
    checked, matches, disagreements = 0, 0, []
    try:
        for db_id, golds in sorted(by_db.items()):
            db_path = spider_dir / "database" / db_id / f"{db_id}.sqlite"
            if not db_path.is_file():  # wta_1 ships without one: both sides fail, nothing to compare
                continue
            for pred, gold in pairs_for(golds, rng):
                official = official_ex(pred, gold, db_path)
                ours = executor.exec_match(pred, gold, db_id).match
                checked += 1
                matches += official
                if int(ours) != official:
                    disagreements.append((db_id, pred, gold, official))
    finally:
        executor.close()
    print(f"{checked} pairs, {matches} official matches, {len(disagreements)} disagreements")
    assert not disagreements[:5], f"{len(disagreements)} of {checked} pairs disagree"
    assert checked > 15_000 and 0.2 < matches / checked < 0.8  # a large set, both verdicts common


def test_a_second_statement_scores_zero_as_python_sqlite3_refuses_it(toy_db_dir):
    executor = Executor(toy_db_dir, semantics="bird")
    assert executor.exec_match("SELECT a FROM t", "SELECT a FROM t ORDER BY a DESC", "toy").match
    for pred in ("SELECT a FROM t; SELECT 1", "SELECT a FROM t; ;"):
        outcome = executor.exec_match(pred, "SELECT a FROM t", "toy")
        assert not outcome.match and outcome.valid is False and outcome.error_kind == "syntax"
    assert executor.exec_match("SELECT a FROM t;", "SELECT a FROM t", "toy").match
    outcome = executor.exec_match("SELECT a, b FROM t", "SELECT b, a FROM t", "toy")
    assert not outcome.match and outcome.error_kind is None  # column order counts
    assert executor.exec_match(
        "SELECT DISTINCT 1 FROM t", "SELECT 1 FROM t", "toy"
    ).match  # duplicates do not
    spider = Executor(toy_db_dir)
    assert spider.exec_match("SELECT a, b FROM t", "SELECT b, a FROM t", "toy").match  # Spider permutes


def test_a_write_is_denied_and_a_slow_query_times_out(toy_db_dir):
    executor = Executor(toy_db_dir, timeout_s=0.2, semantics="bird")
    outcome = executor.exec_match("DELETE FROM t", "SELECT a FROM t WHERE 0", "toy")
    assert not outcome.match and outcome.error_kind == "denied"
    slow = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c"
    outcome = executor.exec_match(slow, "SELECT 1", "toy")
    assert not outcome.match and outcome.error_kind == "timeout"
    outcome = executor.exec_match("SELECT 1", "SELECT * FROM missing", "toy")
    assert outcome.error_kind == "gold"
    key = str(toy_db_dir / "toy" / "toy.sqlite")
    executor._gold_seconds[(key, "SELECT a FROM t")] = 0.2  # a gold that used the pair's whole budget
    outcome = executor.exec_match("SELECT a FROM t ORDER BY a", "SELECT a FROM t", "toy")
    assert not outcome.match and outcome.error_kind == "timeout" and "gold alone" in outcome.error


def test_text_that_is_not_utf8_is_an_error_as_in_the_official(tmp_path):
    (tmp_path / "bad").mkdir()
    conn = sqlite3.connect(tmp_path / "bad" / "bad.sqlite")
    conn.execute("CREATE TABLE t (s TEXT)")
    conn.execute("INSERT INTO t VALUES (CAST(x'41ff42' AS TEXT))")
    conn.commit()
    conn.close()
    db = tmp_path / "bad" / "bad.sqlite"
    assert official_ex("SELECT s FROM t", "SELECT s FROM t ", db) == 0
    assert (
        not Executor(tmp_path, semantics="bird")
        .exec_match("SELECT s FROM t", "SELECT s FROM t ", "bad")
        .match
    )
    assert Executor(tmp_path).exec_match("SELECT s FROM t", "SELECT s FROM t ", "bad").match  # Spider decodes


def test_auto_semantics_follows_the_records_source():
    assert resolve_semantics("auto", [{"source": "bird"}, {"source": "bird"}]) == "bird"
    assert resolve_semantics("auto", [{"source": "bird"}, {"source": "spider"}]) == "spider"
    assert resolve_semantics("auto", [{}]) == "spider"
    assert resolve_semantics("spider", [{"source": "bird"}]) == "spider"
    with pytest.raises(ValueError, match="unknown semantics"):
        resolve_semantics("test-suite", [])
    with pytest.raises(ValueError, match="unknown semantics 'auto'"):
        Executor(None, semantics="auto")  # resolved before an executor is built


def _bird_predictions(root: Path) -> list[dict]:
    from sqlft.data.prepare import prepare_records

    records = prepare_records("bird", root, "dev").records
    wrong = {"simple": "SELECT 1", "moderate": "SELECT 1; SELECT 2", "challenging": None}
    out = []
    for i, record in enumerate(records):
        pred = record["sql"] if i % 2 == 0 else wrong[record["extra"]["difficulty"]] or record["sql"] + " "
        out.append({**record, "gold": record["sql"], "pred": pred})
    return out


def test_the_report_breaks_down_by_difficulty_and_names_its_semantics(tmp_path):
    root = build_bird(tmp_path / "bird")
    records = _bird_predictions(root)
    report = evaluate_predictions(records, root / "dev_databases", with_rouge=False)
    summary = report["summary"]
    assert summary["semantics"] == "bird" and summary["settings"]["semantics"] == "bird"
    table = summary["by_difficulty"]
    assert list(table) == ["simple", "moderate", "challenging"]
    for level, row in table.items():
        group = [r for r in report["records"] if r["difficulty"] == level]
        assert row["n"] == len(group) and row["exec_match"] == sum(r["exec_match"] for r in group)
    assert all(r["hardness"] is None for r in report["records"])  # BIRD grades itself
    text = format_table(summary)
    assert "BIRD's semantics" in text and "challenging" in text and "easy" not in text
    spider = evaluate_predictions(records, root / "dev_databases", with_rouge=False, semantics="spider")
    assert spider["summary"]["semantics"] == "spider" and "Spider's" in format_table(spider["summary"])


def test_r_ves_buckets_and_formula(tmp_path):
    assert [reward(r) for r in (3.0, 2.0, 1.5, 1.0, 0.7, 0.3, 0.1)] == [1.25, 1.25, 1, 1, 0.75, 0.5, 0.25]
    assert REWARD_BUCKETS[0] == (2.0, 1.25)
    assert r_ves([1.0, 0.0, 0.25, 1.25]) == pytest.approx(25 * (1 + 0 + 0.5 + 1.25**0.5))
    root = build_bird(tmp_path / "bird")
    records = _bird_predictions(root)
    report = evaluate_predictions(records, root / "dev_databases", with_rouge=False, ves_repeats=3)
    ves = report["summary"]["r_ves"]
    assert ves["repeats"] == 3 and ves["n"] == len(records)
    rewards = [r["ves_reward"] for r in report["records"]]
    assert all(v == 0 for v, r in zip(rewards, report["records"], strict=True) if not r["exec_match"])
    assert all(
        v in {0.25, 0.5, 0.75, 1, 1.25}
        for v, r in zip(rewards, report["records"], strict=True)
        if r["exec_match"]
    )
    assert ves["r_ves"] == pytest.approx(r_ves(rewards))
    assert "R-VES" in format_table(report["summary"])


def test_the_grpo_reward_scores_with_the_semantics_it_is_given(toy_db_dir):
    from sqlft.rl import SQLReward

    spider, bird = SQLReward(toy_db_dir), SQLReward(toy_db_dir, semantics="bird")
    args = ("SELECT b, a FROM t", "SELECT a, b FROM t", "toy")
    assert spider.score(*args) == 1.0 and bird.score(*args) == 0.1  # runs, but BIRD wants a, b
    assert bird.score("SELECT DISTINCT a FROM t UNION ALL SELECT a FROM t", "SELECT a FROM t", "toy") == 1.0
