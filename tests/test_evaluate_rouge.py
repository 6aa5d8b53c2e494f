"""ROUGE with rouge_score, offline."""

import pytest

from sqlft.evaluate.rouge import ROUGE_TYPES, rouge, rouge_per_record


def test_identical_queries_score_one():
    scores = rouge(["SELECT name FROM singer"], ["SELECT name FROM singer"])
    assert scores == {name: 1.0 for name in ROUGE_TYPES}


def test_punctuation_is_dropped_so_count_star_looks_like_count():
    assert rouge(["SELECT COUNT(*) FROM t"], ["SELECT count FROM t"])["rouge1"] == 1.0


def test_partial_overlap_and_mean():
    per = rouge_per_record(["select a from t", "x y"], ["select a from s", "x y"])
    assert per[0]["rouge1"] == pytest.approx(0.75)
    assert per[1]["rouge2"] == 1.0
    assert rouge(["select a from t", "x y"], ["select a from s", "x y"])["rouge1"] == pytest.approx(0.875)
    assert rouge([], []) == {}
