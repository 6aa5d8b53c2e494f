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


def test_same_numbers_as_rouge_scorer(spider_dir):
    import json
    import random

    from rouge_score import rouge_scorer

    dev = json.loads((spider_dir / "dev.json").read_text())
    rng = random.Random(0)
    queries = [r["query"] for r in dev]
    pairs = [(rng.choice(queries), rng.choice(queries)) for _ in range(300)]
    pairs += [(q, q.replace(" ", "\n", 3)) for q in queries[:30]]  # several lines: rougeLsum differs
    pairs += [("", "SELECT 1"), ("()", "*"), ("a a a b", "a b b b")]
    pairs += [(q, q) for q in queries[:20]] + [("SELECT", "SELECT"), ("()", "()"), ("", ""), ("a\nb", "a\nb")]
    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
    ours = rouge_per_record([p for p, _ in pairs], [g for _, g in pairs])
    for (pred, gold), mine in zip(pairs, ours, strict=True):
        theirs = scorer.score(gold, pred)
        assert mine == pytest.approx({k: theirs[k].fmeasure for k in ROUGE_TYPES}), (pred, gold)
