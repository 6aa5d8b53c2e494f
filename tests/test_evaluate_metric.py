"""The `evaluate` metric script shipped in the package: loads offline, imports sqlft from evaluate's
modules cache, and reports the numbers of sqlft's own evaluation."""

from pathlib import Path

import pytest

from sqlft.evaluate import evaluate_predictions, metric_path, metric_records


@pytest.fixture
def db_dir(toy_db_dir):
    return toy_db_dir


PREDS = ["SELECT a FROM t", "SELECT b, a FROM t WHERE a > 1", "SELECT nope FROM t", "SELECT a FROM t"]
GOLDS = ["select a from t", "SELECT a, b FROM t WHERE a >= 2", "SELECT a FROM t", "SELECT a FROM t LIMIT 1"]


@pytest.fixture
def metric(tmp_path, monkeypatch):
    import evaluate

    monkeypatch.setattr(evaluate.config, "HF_MODULES_CACHE", tmp_path / "modules")
    return evaluate.load(metric_path(), cache_dir=str(tmp_path / "metrics"), keep_in_memory=True)


def test_script_is_where_evaluate_looks_for_it():
    folder = Path(metric_path())
    assert (folder / f"{folder.name}.py").is_file()  # evaluate wants the file named after its folder


def test_loads_offline_from_a_copy_and_gives_sqlft_eval_numbers(metric, db_dir, tmp_path):
    import os

    assert os.environ["HF_HUB_OFFLINE"] == "1"
    assert type(metric).__module__.startswith("evaluate_modules.metrics.sqlft_sql")
    assert (tmp_path / "modules").is_dir()  # the script ran from evaluate's copy, not the package
    scores = metric.compute(predictions=PREDS, references=GOLDS, db_ids=["toy"] * 4, db_dir=str(db_dir))
    records = metric_records(PREDS, GOLDS, ["toy"] * 4, db_dir=db_dir)
    summary = evaluate_predictions(records, db_dir, with_rouge=False)["summary"]
    assert scores["execution_accuracy"] == summary["exec_accuracy"] == 0.5
    assert scores["exact_match"] == summary["exact_accuracy"] == 0.25  # case only differs in the first
    assert scores["valid_sql"] == 0.75
    assert scores["errors"] == {"schema": 1}
    assert "rouge1" not in scores


def test_batches_contexts_and_rouge(metric):
    metric.add_batch(predictions=["SELECT 4"], references=["SELECT x FROM u"])
    metric.add_batch(predictions=["SELECT 5"], references=["SELECT x FROM u"])
    context = "CREATE TABLE u (x); INSERT INTO u VALUES (4);"
    scores = metric.compute(contexts=[context, context], rouge=True)
    assert (scores["execution_accuracy"], scores["n"]) == (0.5, 2)
    assert scores["rouge1"] == pytest.approx(1 / 3)  # "select" shared: precision 1/2, recall 1/4


def test_inputs_that_do_not_fit_say_how_to_fix_them():
    with pytest.raises(ValueError, match="fix: give one db_id per prediction"):
        metric_records(["SELECT 1"] * 2, ["SELECT 1"] * 2, ["toy"], db_dir="db")
    with pytest.raises(ValueError, match="db_ids without db_dir"):
        metric_records(["SELECT 1"], ["SELECT 1"], ["toy"])
    with pytest.raises(ValueError, match="no databases"):
        metric_records(["SELECT 1"], ["SELECT 1"])


def test_bird_semantics_through_the_metric(metric, db_dir):
    scores = metric.compute(
        predictions=PREDS, references=GOLDS, db_ids=["toy"] * 4, db_dir=str(db_dir), semantics="bird"
    )
    assert scores["semantics"] == "bird"
    assert scores["execution_accuracy"] == 0.25  # `b, a` for `a, b` no longer matches: column order counts
