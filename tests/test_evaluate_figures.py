"""Figures from reports: files written, bars carry the report's numbers."""

import pytest

from sqlft.evaluate.figures import accuracies, compare_runs, plot_accuracy_by_hardness, plot_failures


def _report(acc):
    records = [
        {"exec_match": True, "error_kind": None},
        {"exec_match": False, "error_kind": "syntax"},
        {"exec_match": False, "error_kind": None},
    ]
    by_hardness = {lvl: {"n": 3, "exec_accuracy": acc, "exact_accuracy": acc / 2} for lvl in ("easy", "hard")}
    summary = {"exec_accuracy": acc, "exec_accuracy_nonempty_gold": acc / 3, "by_hardness": by_hardness}
    return {"summary": summary, "records": records}


def test_accuracies_fill_missing_levels_with_zero():
    values = accuracies(_report(0.6))
    assert values == pytest.approx(
        {"easy": 0.6, "medium": 0.0, "hard": 0.6, "extra": 0.0, "all": 0.6, "non-empty gold": 0.2}
    )
    assert "non-empty gold" not in accuracies(_report(0.6), "exact_accuracy")


def test_figures_are_written(tmp_path):
    runs = {"baseline": _report(0.1), "phase1": _report(0.3), "phase2": _report(0.5)}
    fig = compare_runs(runs, tmp_path / "runs.png")
    heights = sorted(round(bar.get_height(), 3) for bar in fig.axes[0].patches)
    assert heights.count(0.5) == 3 and len(heights) == 18  # 3 runs x 6 groups
    plot_accuracy_by_hardness(runs["phase2"], tmp_path / "one.png")
    failures = plot_failures(runs["phase2"], tmp_path / "fail.png")
    labels = {t.get_text() for t in failures.axes[0].get_yticklabels()}
    assert labels == {"syntax error", "wrong result"}
    for name in ("runs.png", "one.png", "fail.png"):
        assert (tmp_path / name).stat().st_size > 1000
