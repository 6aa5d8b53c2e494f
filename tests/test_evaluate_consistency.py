"""Self-consistency voting and execution-guided fallback over candidate SQL."""

import sqlite3

import pytest

from sqlft.evaluate.consistency import denotation, execution_guided, runner, self_consistency
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
