"""Self-consistency voting and execution-guided fallback over candidate SQL."""

import sqlite3

import pytest

from sqlft.evaluate.consistency import (
    denotation,
    execution_guided,
    runner,
    self_consistency,
    unconditioned_join,
    voters,
)
from sqlft.evaluate.execution import Executor


def fake_run(table):
    def run(sql):
        if table[sql] is None:
            raise sqlite3.OperationalError("no such column")
        return table[sql]

    return run


def test_majority_of_execution_results_wins():
    run = fake_run({"a": [(1,)], "b": [(2,)], "c": [(1.0,)], "d": None})
    choice = self_consistency(["b", "a", "c", "d"], run, scores=[0.9, 0.5, 0.6, 1.0])
    assert (choice.sql, choice.votes, choice.executed) == ("c", 2, 3)  # a and c agree; c scores higher
    assert choice.errors[3] and choice.errors[0] is None


def test_ties_go_to_the_best_score_then_the_earliest():
    run = fake_run({"a": [(1,)], "b": [(2,)]})
    assert self_consistency(["a", "b"], run, scores=[0.1, 0.2]).sql == "b"
    assert self_consistency(["a", "b"], run).sql == "a"


def test_a_result_holding_a_value_beats_a_larger_group_of_empty_ones():
    run = fake_run({"a": [], "b": [], "c": [(None,)], "d": [(3,)], "e": [(None, None)]})
    choice = self_consistency(["a", "b", "c", "e", "d"], run)
    assert (choice.sql, choice.votes, choice.executed) == ("d", 1, 5)
    assert self_consistency(["a", "b", "c"], run).sql == "a"  # all empty: the majority still wins


def test_a_cross_product_nobody_asked_for_loses_to_a_conditioned_join():
    on = "SELECT a FROM t JOIN u ON t.id = u.t_id"
    cross = ["SELECT a FROM t JOIN u", "SELECT a FROM t AS x JOIN u AS y"]
    run = fake_run({on: [(1,)], cross[0]: [(1,), (2,)], cross[1]: [(2,), (1,)]})
    choice = self_consistency([*cross, on], run)
    assert (choice.sql, choice.votes) == (on, 1)
    # a group counts as sound when one of its queries is: the conditioned one is kept
    same = fake_run({on: [(1,)], cross[0]: [(1,)], "SELECT 2": [(2,)]})
    assert self_consistency([cross[0], "SELECT 2", on], same).sql == on
    assert self_consistency(cross, run).sql == cross[0]  # only cross products: the majority still wins


@pytest.mark.parametrize(
    ("sql", "unconditioned"),
    [
        ("SELECT * FROM a JOIN b", True),
        ("SELECT * FROM a JOIN b ON 1", True),
        ("SELECT * FROM a AS x JOIN b AS y ON x.id", True),  # compares nothing
        ("SELECT * FROM a AS x JOIN b AS y ON x.id = y.a_id OR y.b LIKE 'z%'", False),
        ("SELECT * FROM a AS x JOIN b AS y ON x.id = y.a_id JOIN c", True),
        ("SELECT * FROM (SELECT * FROM a JOIN b) AS s", True),
        ("SELECT * FROM a JOIN b ON a.id = b.a_id", False),
        ("SELECT * FROM a LEFT JOIN b USING (id)", False),
        ("SELECT * FROM a NATURAL JOIN b", False),
        ("SELECT * FROM a CROSS JOIN b", False),  # asked for in so many words
        ("SELECT * FROM a, b WHERE a.id = b.a_id", False),
        ("SELECT count(*) FROM a", False),
        ("SELECT FROM WHERE (((", False),  # unparsable: judged by running it, not here
    ],
)
def test_unconditioned_join(sql, unconditioned):
    assert unconditioned_join(sql) is unconditioned


def test_voters_are_the_samples_and_greedy_first_on_ties_when_asked():
    record = {"pred": "g", "candidates": [{"sql": "s1", "score": -0.2}, {"sql": "s2"}, "s3"]}
    assert voters(record) == (["s1", "s2", "s3"], [-0.2, 0.0, 0.0])
    assert voters(record, with_greedy=True) == (["g", "s1", "s2", "s3"], [0.0, -0.2, 0.0, 0.0])
    assert voters({"pred": "", "candidates": ["s1"]}, with_greedy=True) == (["s1"], [0.0])


def test_nothing_executes():
    run = fake_run({"a": None, "b": None})
    choice = self_consistency(["a", "b"], run, scores=[0.1, 0.2])
    assert (choice.sql, choice.executed) == ("b", 0)
    assert execution_guided(["a", "b"], run).index == 0
    assert self_consistency([], run).index == -1
    with pytest.raises(ValueError):
        self_consistency(["a"], run, scores=[1, 2])


def test_denotation_ignores_row_and_column_order():
    assert denotation([(1, "x"), (2, "y")]) == denotation([("y", 2), ("x", 1)])
    assert denotation([(1,), (1,)]) != denotation([(1,)])


def test_execution_guided_on_a_real_database(tmp_path):
    (tmp_path / "toy").mkdir()
    conn = sqlite3.connect(tmp_path / "toy" / "toy.sqlite")
    conn.execute("CREATE TABLE t (a)")
    conn.execute("INSERT INTO t VALUES (1)")
    conn.commit()
    conn.close()
    run = runner(Executor(tmp_path), "toy")
    choice = execution_guided(["SELECT nope FROM t", "DROP TABLE t", "SELECT a FROM t"], run)
    assert (choice.index, choice.sql) == (2, "SELECT a FROM t")
    assert "no such column" in choice.errors[0] and "not authorized" in choice.errors[1]
    votes = self_consistency(["SELECT a FROM t", "SELECT 2", "SELECT DISTINCT a FROM t"], run)
    assert (votes.index, votes.votes) == (0, 2)
