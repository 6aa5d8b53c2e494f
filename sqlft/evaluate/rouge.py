"""ROUGE-1/2/L/Lsum of predicted against gold SQL, with `rouge_score` (works offline).

rouge_score tokenises on letters and digits only, so `COUNT(*)` scores like `count`: report
ROUGE to compare with published numbers, never as the measure of correctness.
"""

from __future__ import annotations

ROUGE_TYPES = ("rouge1", "rouge2", "rougeL", "rougeLsum")


def rouge_per_record(preds: list[str], golds: list[str]) -> list[dict[str, float]]:
    """F-measure of each ROUGE type for each (pred, gold) pair."""
    from rouge_score import rouge_scorer

    scorer = rouge_scorer.RougeScorer(list(ROUGE_TYPES), use_stemmer=False)
    out = []
    for pred, gold in zip(preds, golds, strict=True):
        scores = scorer.score(gold or "", pred or "")
        out.append({name: scores[name].fmeasure for name in ROUGE_TYPES})
    return out


def rouge(preds: list[str], golds: list[str]) -> dict[str, float]:
    """Mean F-measure per ROUGE type over all pairs (empty dict for no pairs)."""
    per_record = rouge_per_record(preds, golds)
    if not per_record:
        return {}
    return {name: sum(r[name] for r in per_record) / len(per_record) for name in ROUGE_TYPES}
