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


def _ngram_f(gold: Counter, pred: Counter) -> float:
    hits = sum(min(gold[gram], pred[gram]) for gram in gold.keys() & pred.keys())
    return _fmeasure(hits, pred.total(), gold.total())


class _Tokens:
    """A text's tokens with their unigram and bigram counts, computed once per distinct text."""

    def __init__(self, text: str):
        from rouge_score.tokenize import tokenize

        self.tokens = tokenize(text, None)
        self.unigrams = Counter(self.tokens)
        self.bigrams = Counter(zip(self.tokens, self.tokens[1:], strict=False))


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


def _score(pred: str, gold: str, texts: dict[str, _Tokens]) -> dict[str, float]:
    if "\n" in pred or "\n" in gold:
        from rouge_score import rouge_scorer

        scores = rouge_scorer.RougeScorer(list(ROUGE_TYPES)).score(gold, pred)
        return {name: scores[name].fmeasure for name in ROUGE_TYPES}
    for text in (gold, pred):
        if text not in texts:
            texts[text] = _Tokens(text)
    g, p = texts[gold], texts[pred]
    if pred == gold:  # all shared: F is 1 wherever there is an n-gram (a token, two for rouge2)
        one = 1.0 if g.tokens else 0.0
        return {"rouge1": one, "rouge2": 1.0 if g.bigrams else 0.0, "rougeL": one, "rougeLsum": one}
    lcs = _lcs_f(g.tokens, p.tokens)  # one line each: summary-level LCS is plain LCS
    return {
        "rouge1": _ngram_f(g.unigrams, p.unigrams),
        "rouge2": _ngram_f(g.bigrams, p.bigrams),
        "rougeL": lcs,
        "rougeLsum": lcs,
    }


def rouge_per_record(preds: list[str], golds: list[str]) -> list[dict[str, float]]:
    """F-measure of each ROUGE type for each (pred, gold) pair (no stemming, as HF `evaluate`);
    each distinct text is tokenised once and each distinct pair scored once."""
    texts: dict[str, _Tokens] = {}
    pairs: dict[tuple[str, str], dict[str, float]] = {}
    out = []
    for pred, gold in zip(preds, golds, strict=True):
        key = (pred or "", gold or "")
        if key not in pairs:
            pairs[key] = _score(*key, texts)
        out.append(dict(pairs[key]))
    return out


def rouge(preds: list[str], golds: list[str]) -> dict[str, float]:
    """Mean F-measure per ROUGE type over all pairs (empty dict for no pairs)."""
    per_record = rouge_per_record(preds, golds)
    if not per_record:
        return {}
    return {name: sum(r[name] for r in per_record) / len(per_record) for name in ROUGE_TYPES}
