"""Figures from evaluation reports: accuracy by hardness (Spider) or difficulty (BIRD) for one run,
side-by-side bars for several runs, and failures by kind. The backend is left to matplotlib (inline
in a notebook, Agg on a machine with no display), so the notebooks show the figures they save."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt

from sqlft.evaluate.hardness import LEVELS
from sqlft.evaluate.report import breakdown, error_label

GROUPS = (*LEVELS, "all", "non-empty gold")


def accuracies(report: dict[str, Any], metric: str = "exec_accuracy") -> dict[str, float]:
    """Accuracy per hardness level (per difficulty for BIRD), overall and without empty-gold
    records (0 where undefined)."""
    summary = report["summary"]
    kind, table = breakdown(summary)
    levels = [level for level in table if level != "unknown"] if kind == "difficulty" else LEVELS
    values = {level: table.get(level, {}).get(metric) for level in levels}
    values["all"] = summary.get(metric)
    if metric == "exec_accuracy":
        values["non-empty gold"] = summary.get("exec_accuracy_nonempty_gold")
    return {k: v or 0.0 for k, v in values.items()}


def _save(fig, path: str | Path | None):
    """Save when asked; close it in pyplot so a notebook shows the returned figure once, not twice."""
    if path is not None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(fig)
    return fig


def plot_accuracy_by_hardness(report: dict[str, Any], path: str | Path | None = None, title: str = ""):
    """Bar chart of execution accuracy per hardness level for one run."""
    return compare_runs({title or "run": report}, path, title=title or "Execution accuracy by hardness")


def compare_runs(
    reports: dict[str, dict[str, Any]],
    path: str | Path | None = None,
    metric: str = "exec_accuracy",
    title: str = "",
):
    """Grouped bars, one colour per run (e.g. baseline, phase1, phase2), one group per level."""
    runs = {name: accuracies(report, metric) for name, report in reports.items()}
    groups = list(next(iter(runs.values()))) if runs else []
    width = 0.8 / max(len(runs), 1)
    fig, ax = plt.subplots(figsize=(max(6, 1.4 * len(groups)), 3.8))
    for i, (name, values) in enumerate(runs.items()):
        xs = [g + (i - (len(runs) - 1) / 2) * width for g in range(len(groups))]
        bars = ax.bar(xs, [values[g] for g in groups], width, label=name)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel(metric.replace("_", " "))
    kind = breakdown(next(iter(reports.values()))["summary"])[0] if reports else "hardness"
    ax.set_title(title or f"{metric.replace('_', ' ').replace('exec ', 'execution ').capitalize()} by {kind}")
    if len(runs) > 1:
        ax.legend(fontsize=8)
    fig.tight_layout()
    return _save(fig, path)


def plot_steps(reports: dict[str, dict[str, Any]], path: str | Path | None = None, title: str = ""):
    """Valid SQL and execution accuracy (with its 95% interval) per step: what each step bought."""
    from sqlft.evaluate.stats import interval

    names = list(reports)
    summaries = [reports[name]["summary"] for name in names]
    fig, ax = plt.subplots(figsize=(max(5, 1.6 * len(names)), 3.6))
    width = 0.38
    for offset, key, label in (
        (-width / 2, "valid_rate", "valid SQL"),
        (width / 2, "exec_accuracy", "execution accuracy"),
    ):
        values = [s.get(key) or 0.0 for s in summaries]
        errors = [interval(v, s["scored"]) for v, s in zip(values, summaries, strict=True)]
        bars = ax.bar(
            [i + offset for i in range(len(names))],
            values,
            width,
            label=label,
            yerr=errors if key == "exec_accuracy" else None,
            capsize=3,
        )
        ax.bar_label(bars, labels=[f"{100 * v:.0f}%" for v in values], fontsize=8, padding=2)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylim(0, 1.1)
    ax.set_ylabel(f"share of {summaries[-1]['n']} dev questions" if summaries else "")
    ax.set_title(title or "Valid SQL and execution accuracy by step")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return _save(fig, path)


def plot_failures(report: dict[str, Any], path: str | Path | None = None, title: str = "Failures by kind"):
    """Horizontal bars: records that did not match, by error kind ("wrong result" when it ran)."""
    kinds = Counter(
        error_label(r["error_kind"]) if r.get("error_kind") else "wrong result"
        for r in report["records"]
        if not r["exec_match"]
    )
    fig, ax = plt.subplots(figsize=(6, 0.4 * max(len(kinds), 1) + 1.2))
    names = [k for k, _ in kinds.most_common()][::-1]
    ax.barh(names, [kinds[k] for k in names])
    ax.set_xlabel("records")
    ax.set_title(title)
    fig.tight_layout()
    return _save(fig, path)
