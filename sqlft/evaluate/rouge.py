"""ROUGE-1/2/L/Lsum of predicted against gold SQL: rouge_score's numbers, without its nltk import.

rouge_score's scorer imports nltk (seconds of start-up) for a stemmer that is off here. This
module uses rouge_score's own tokenizer and the same n-gram and LCS formulas, and hands
texts with several lines to rouge_score's scorer, whose summary-level LCS (rougeLsum) it does
not redo; tests check that both give the same numbers. The tokenizer keeps letters and digits
only, so `COUNT(*)` scores like `count`: report ROUGE to compare with published numbers, never
as the measure of correctness.
"""

from __future__ import annotations

from collections import Counter

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def _fmeasure(hits: int, n_pred: int, n_gold: int) -> float:
    precision, recall = hits / max(n_pred, 1), hits / max(n_gold, 1)
    return 2 * precision * recall / (precision + recall) if precision + recall > 0 else 0.0


def _ngram_f(gold: list[str], pred: list[str], n: int) -> float:
    gold_grams = Counter(tuple(gold[i : i + n]) for i in range(len(gold) - n + 1))
    pred_grams = Counter(tuple(pred[i : i + n]) for i in range(len(pred) - n + 1))
    hits = sum(min(count, pred_grams[gram]) for gram, count in gold_grams.items())
    return _fmeasure(hits, sum(pred_grams.values()), sum(gold_grams.values()))


def _lcs_f(gold: list[str], pred: list[str]) -> float:
    """F-measure of the longest common subsequence, its length by the bit-parallel method
    (Hyyro 2004): one big-integer step per gold token instead of a table."""
    if not gold or not pred:
        return 0.0
    masks: dict[str, int] = {}
    for j, token in enumerate(pred):
        masks[token] = masks.get(token, 0) | (1 << j)
    full = (1 << len(pred)) - 1
    v = full
    for token in gold:
        u = v & masks.get(token, 0)
        v = ((v + u) | (v - u)) & full
    return _fmeasure(len(pred) - v.bit_count(), len(pred), len(gold))


def _score(pred: str, gold: str) -> dict[str, float]:
    from rouge_score.tokenize import tokenize

    if "\n" in pred or "\n" in gold:
        from rouge_score import rouge_scorer

        scores = rouge_scorer.RougeScorer(list(ROUGE_TYPES)).score(gold, pred)
        return {name: scores[name].fmeasure for name in ROUGE_TYPES}
    gold_tokens, pred_tokens = tokenize(gold, None), tokenize(pred, None)
    lcs = _lcs_f(gold_tokens, pred_tokens)  # one line each: summary-level LCS is plain LCS
    return {
        "rouge1": _ngram_f(gold_tokens, pred_tokens, 1),
        "rouge2": _ngram_f(gold_tokens, pred_tokens, 2),
        "rougeL": lcs,
        "rougeLsum": lcs,
    }


def rouge_per_record(preds: list[str], golds: list[str]) -> list[dict[str, float]]:
    """F-measure of each ROUGE type for each (pred, gold) pair (no stemming, as HF `evaluate`)."""
    return [_score(pred or "", gold or "") for pred, gold in zip(preds, golds, strict=True)]


def rouge(preds: list[str], golds: list[str]) -> dict[str, float]:
    """Mean F-measure per ROUGE type over all pairs (empty dict for no pairs)."""
    per_record = rouge_per_record(preds, golds)
    if not per_record:
        return {}
    return {name: sum(r[name] for r in per_record) / len(per_record) for name in ROUGE_TYPES}
