"""What the notebooks show inline: a live loss curve during training and side-by-side tables."""

from __future__ import annotations

from pathlib import Path
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
    """One column per run (baseline, phase1, phase2), one row per metric, hardness (difficulty for
    BIRD) and ROUGE."""
    import pandas as pd

    from sqlft.evaluate.consistency import VOTES
    from sqlft.evaluate.report import breakdown

    rows: dict[str, dict[str, Any]] = {}
    for run, report in reports.items():
        summary = report["summary"]
        for label, key in SUMMARY_ROWS:
            rows.setdefault(label, {})[run] = summary.get(key)
        best = summary.get("best_of")
        if best:
            label = f"execution accuracy, best of {best['samples']} ({best['vote']} vote)"
            rows.setdefault(label, {})[run] = best["exec_accuracy"]
        for level, group in breakdown(summary)[1].items():
            rows.setdefault(f"execution accuracy: {level} (n={group['n']})", {})[run] = group["exec_accuracy"]
        for rule in ("self_consistency", "execution_guided"):
            if summary.get(rule) and not (best and VOTES[best["vote"]] == rule):  # not twice
                rows.setdefault(f"execution accuracy, {rule.replace('_', '-')} over samples", {})[run] = (
                    summary[rule]["exec_accuracy"]
                )
        for name, value in (summary.get("rouge") or {}).items():
            rows.setdefault(name, {})[run] = value
    return pd.DataFrame.from_dict(rows, orient="index")[list(reports)]


def full_table(rows: list[dict[str, Any]], caption: str = ""):
    """A table that shows every character of its SQL, left-aligned and wrapped, without an index."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    styler = frame.style.hide(axis="index").set_properties(
        **{"text-align": "left", "white-space": "pre-wrap", "vertical-align": "top"}
    )
    styler = styler.set_table_styles(
        [
            {"selector": "th", "props": [("text-align", "left")]},
            {"selector": "caption", "props": [("text-align", "left"), ("white-space", "nowrap")]},
        ]
    )
    return styler.set_caption(caption) if caption else styler


def _note(text: str):
    """A sentence shown as text where a table has nothing to show."""
    from IPython.display import Markdown

    return Markdown(text)


def reward_settings(config: Any):
    """Phase 3's GRPO and reward settings, each with what it means, before training."""
    p, e = config.phase3, config.eval
    rows = p.generation_batch_size or p.batch_size * p.grad_accum
    settings = {
        "enabled": f"{p.enabled}: {p.reason}" if p.reason else p.enabled,
        "group size (num_generations)": p.num_generations,
        "prompts per generation batch": rows // p.num_generations,
        "max_completion_length": p.max_completion_length,
        "temperature": p.temperature,
        "beta (KL to phase 2)": p.beta,
        "learning_rate": p.learning_rate,
        "execution reward": f"weight {p.execution_weight}: 1 match, {p.runs_reward} runs but wrong, 0 error",
        "format reward": f"weight {p.format_weight}: 0.5 one statement + 0.5 ends with EOS",
        "query limits": f"{e.timeout} s per query, read-only, as sqlft eval",
        "budget": f"{p.max_minutes} min" if p.max_minutes else f"max_steps {p.max_steps}, epochs {p.epochs}",
    }
    rows = [{"setting": key, "value": str(value)} for key, value in settings.items()]
    return full_table(rows, "phase 3: GRPO and rewards")


def _flat(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in values.items():
        if isinstance(value, dict):
            flat.update(_flat(value, f"{prefix}{key}."))
        elif value is not None:
            flat[f"{prefix}{key}"] = value
    return flat


def settings_table(config: Any, step: str):
    """The resolved preset values this step ran with, as the dotted keys `-p`/`overrides` take; each says
    whether it came from the preset file (named in the caption) or from an override."""
    from sqlft.config import load_preset
    from sqlft.rundir import STEP_SECTIONS

    preset = config.to_dict()
    from_file = _flat(load_preset(config.origin).to_dict()) if config.origin else {}
    rows = [
        {
            "setting": key,
            "value": str(value),
            "from": "preset file" if from_file.get(key, object()) == value else "override",
        }
        for section in STEP_SECTIONS[step] or ("eval",)
        for key, value in _flat(preset[section], f"{section}.").items()
    ]
    caption = (
        f"{step} of preset {config.name} ({preset_source(config.origin)}): change any value with "
        "-p KEY=VALUE or in `overrides`"
    )
    return full_table(rows, caption)


def preset_source(origin: str | Path | None) -> str:
    """The preset file as a report shows it, without this machine's folders: a shipped preset by its
    place in the package, a user's file (or a Kaggle kernel's copy) by its name."""
    from importlib import resources

    if not origin:
        return "built in code"
    path = Path(origin)
    shipped = Path(str(resources.files("sqlft.presets")))
    return f"sqlft/presets/{path.name}" if path.resolve().parent == shipped.resolve() else path.name


def verdict(record: dict[str, Any]) -> str:
    """✓ or ✗ and why: the wrong result, or the error kind (syntax, unknown name, ...)."""
    from sqlft.evaluate.report import error_label

    if record.get("exec_match"):
        return "✓ match"
    return f"✗ {error_label(record['error_kind'])}" if record.get("error_kind") else "✗ wrong result"


def samples_table(run: Any, phase: str):
    """The SQL sample callback's last evaluation during training: question, gold, generated, verdicts."""
    import csv

    path = run.root / phase / "sql_samples.csv"
    if not path.is_file():
        return _note(f"{phase}: no evaluation ran during training, so there are no samples")
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    last = max(int(r["step"]) for r in rows)
    shown = [
        {
            "question": r["question"],
            "gold": r["gold"],
            "generated": r["generated"],
            "executes": "✓" if r["executes"] == "True" else "✗",
            "matches": "✓" if r["matches"] == "True" else "✗",
        }
        for r in rows
        if int(r["step"]) == last
    ]
    return full_table(shown, f"{phase}: SQL samples at step {last} (every evaluation is in {path.name})")


def failure_examples(report: dict[str, Any], per_kind: int = 1):
    """Each kind of failure, largest first, with its count and an example: question, SQL, gold, error."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for record in report["records"]:
        if not record.get("exec_match"):
            groups.setdefault(verdict(record)[2:], []).append(record)
    total = len(report["records"]) or 1
    rows = []
    for kind, group in sorted(groups.items(), key=lambda item: -len(item[1])):
        for i, record in enumerate(group[:per_kind]):
            rows.append(
                {
                    "failure": kind if i == 0 else "",
                    "count": f"{len(group)} ({len(group) / total:.0%})" if i == 0 else "",
                    "question": record.get("question", ""),
                    "predicted": record.get("pred", ""),
                    "gold": record["gold"],
                    "error": record.get("error") or "",
                }
            )
    if not rows:
        return _note("every record matched")
    return full_table(rows, f"failures of {len(report['records'])} records, one example per kind")


def _key(record: dict[str, Any]) -> tuple:
    return record.get("db_id"), record.get("question"), record["gold"]


def side_by_side(reports: dict[str, dict[str, Any]], n: int = 8):
    """The same questions answered by every step, with each step's SQL and verdict.

    Questions whose verdicts differ between steps come first (the last step right before the last
    step wrong), then questions every step got wrong, so the table shows what training changed.
    """
    steps = list(reports)
    by_step = {step: {_key(r): r for r in report["records"]} for step, report in reports.items()}
    shared = [k for k in by_step[steps[-1]] if all(k in by_step[s] for s in steps)]

    def order(key: tuple) -> tuple:
        hits = [bool(by_step[s][key].get("exec_match")) for s in steps]
        same = len(set(hits)) == 1
        return (same, hits[-1] if same else not hits[-1])

    rows = []
    for key in sorted(shared, key=order)[:n]:
        row = {"question": key[1], "gold": key[2]}
        for step in steps:
            record = by_step[step][key]
            row[step] = f"{verdict(record)}\n{record.get('pred', '')}"
        rows.append(row)
    caption = f"{len(rows)} of {len(shared)} dev questions, answered by {', '.join(steps)}"
    return full_table(rows, caption)


def load_reports(run: Any, steps: list[str] | None = None, constrained: bool = False) -> dict[str, dict]:
    """Each step's report in series order: the steps named (each must be done), or every finished
    step that wrote one (a phase the preset turned off writes none)."""
    import json

    from sqlft.rundir import STEPS

    if steps is not None:
        for step in steps:
            run.require(step)
    names = steps or [step for step, _ in STEPS if run.is_done(step) and run.report(step).is_file()]
    reports = {}
    for step in names:
        path = run.report(step, constrained=constrained)
        if path.is_file():
            reports[step] = json.loads(path.read_text(encoding="utf-8"))
    return reports


def constrained_table(run: Any):
    """Plain against schema-constrained decoding per step, when the preset scored both."""
    import pandas as pd

    plain, constrained = load_reports(run), load_reports(run, constrained=True)
    if not constrained:
        return _note(
            "schema-constrained decoding was off in this run (on: `-p eval.schema_constrained=true`)"
        )
    rows = {}
    for step, report in constrained.items():
        for label, source in (("plain", plain[step]), ("constrained", report)):
            s = source["summary"]
            unknown = s["errors"].get("schema", 0) / max(s["n"], 1)
            rows[f"{step}, {label}"] = {
                "execution accuracy": s["exec_accuracy"],
                "valid SQL": s["valid_rate"],
                "unknown table/column": unknown,
            }
            if s.get("best_of"):  # best-of decoding, constrained sampling in the constrained row
                rows[f"{step}, {label}"][f"best of {s['best_of']['samples']}"] = s["best_of"]["exec_accuracy"]
    return pd.DataFrame.from_dict(rows, orient="index").style.format("{:.1%}", na_rep="–")


def example_question(run: Any, report: dict[str, Any]):
    """A dev question the step got right (else its first one) and its database file: a starting
    point to replace with your own, which shows what a working answer looks like."""
    from sqlft.data.prepare import Prepared

    db_dir = Prepared.load(run.step_dir("baseline") / "dev.jsonl").db_dir
    with_db = [r for r in report["records"] if r.get("db_id")]
    record = next((r for r in with_db if r.get("exec_match")), with_db[0])
    return db_dir / record["db_id"] / f"{record['db_id']}.sqlite", record["question"]
