"""What the notebooks show inline: a live loss curve during training and side-by-side tables."""

from __future__ import annotations

from typing import Any

from transformers import TrainerCallback


class LiveLossPlot(TrainerCallback):
    """Redraws the training (and eval) loss in place as the trainer logs; silent outside IPython."""

    def __init__(self, title: str = "training loss", every: int = 1):
        self.title = title
        self.every = every
        self.train: list[tuple[int, float]] = []
        self.eval: list[tuple[int, float]] = []
        self._handle = None

    def on_log(self, args, state, control, logs=None, **kwargs):
        logs = logs or {}
        if "loss" in logs:
            self.train.append((state.global_step, float(logs["loss"])))
        if "eval_loss" in logs:
            self.eval.append((state.global_step, float(logs["eval_loss"])))
        if state.is_world_process_zero and len(self.train) % self.every == 0:
            self._draw()

    def _draw(self) -> None:
        try:
            from IPython import get_ipython
            from IPython.display import display
        except ImportError:
            return
        if get_ipython() is None:
            return
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(6, 3))
        for points, label in ((self.train, "train"), (self.eval, "eval")):
            if points:
                ax.plot(*zip(*points, strict=True), marker="." if label == "eval" else None, label=label)
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(self.title)
        ax.legend()
        fig.tight_layout()
        if self._handle is None:
            self._handle = display(fig, display_id=True)
        else:
            self._handle.update(fig)
        plt.close(fig)


SUMMARY_ROWS = [
    ("execution accuracy", "exec_accuracy"),
    ("execution accuracy, non-empty gold only", "exec_accuracy_nonempty_gold"),
    ("exact match", "exact_accuracy"),
    ("valid SQL", "valid_rate"),
]


def metrics_table(reports: dict[str, dict[str, Any]]):
    """One column per run (baseline, phase1, phase2), one row per metric, hardness and ROUGE."""
    import pandas as pd

    rows: dict[str, dict[str, Any]] = {}
    for run, report in reports.items():
        summary = report["summary"]
        for label, key in SUMMARY_ROWS:
            rows.setdefault(label, {})[run] = summary.get(key)
        for level, group in summary.get("by_hardness", {}).items():
            rows.setdefault(f"execution accuracy: {level} (n={group['n']})", {})[run] = group["exec_accuracy"]
        for rule in ("self_consistency", "execution_guided"):
            if summary.get(rule):
                rows.setdefault(f"execution accuracy, {rule.replace('_', '-')} over samples", {})[run] = (
                    summary[rule]["exec_accuracy"]
                )
        for name, value in (summary.get("rouge") or {}).items():
            rows.setdefault(name, {})[run] = value
    return pd.DataFrame.from_dict(rows, orient="index")[list(reports)]


def examples_table(report: dict[str, Any], *, matches: bool, n: int = 5, width: int = 90):
    """A few records that the run got right (`matches=True`) or wrong, with question, gold and prediction."""
    import pandas as pd

    def cut(text: Any) -> str:
        text = " ".join(str(text or "").split())
        return text if len(text) <= width else text[: width - 1] + "…"

    picked = [r for r in report["records"] if bool(r.get("exec_match")) == matches][:n]
    return pd.DataFrame(
        [
            {
                "question": cut(r.get("question")),
                "gold": cut(r["gold"]),
                "predicted": cut(r["pred"]),
                "error": cut(r.get("error")),
            }
            for r in picked
        ]
    )
