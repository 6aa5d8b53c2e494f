"""sqlft's metrics for the Hugging Face `evaluate` library: where the metric script lives, and the
two conversions it needs (its inputs to prediction records, a report summary to its scores), kept
here so that the script itself holds no logic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

METRIC_NAME = "sqlft_sql"


def metric_path() -> str:
    """Folder of the metric script, for `evaluate.load(metric_path())` (works offline)."""
    return str(Path(__file__).resolve().parents[1] / "metrics" / METRIC_NAME)


def metric_records(
    predictions: list[str],
    references: list[str],
    db_ids: list[str] | None = None,
    contexts: list[str] | None = None,
    db_dir: str | Path | None = None,
) -> list[dict[str, Any]]:
    """Prediction records as `sqlft eval` reads them; raises ValueError for inputs that do not fit."""
    if db_ids is None and contexts is None:
        raise ValueError("sqlft_sql: no databases; fix: pass db_ids=[...] with db_dir=..., or contexts=[...]")
    if db_ids is not None and db_dir is None:
        raise ValueError("sqlft_sql: db_ids without db_dir; fix: pass db_dir= (Spider's database/ folder)")
    for name, values in (("references", references), ("db_ids", db_ids), ("contexts", contexts)):
        if values is not None and len(values) != len(predictions):
            raise ValueError(
                f"sqlft_sql: {len(values)} {name} for {len(predictions)} predictions; "
                f"fix: give one {name[:-1]} per prediction"
            )
    records = []
    for i, (pred, gold) in enumerate(zip(predictions, references, strict=True)):
        record: dict[str, Any] = {"pred": pred, "gold": gold}
        if db_ids is not None:
            record["db_id"] = db_ids[i]
        if contexts is not None:
            record["context"] = contexts[i]
        records.append(record)
    return records


def metric_scores(summary: dict[str, Any]) -> dict[str, Any]:
    """The metric's result from a report summary (`evaluate_predictions(...)["summary"]`)."""
    scores = {
        "execution_accuracy": summary["exec_accuracy"],
        "execution_accuracy_all": summary["exec_accuracy_all"],
        "exact_match": summary["exact_accuracy"],
        "valid_sql": summary["valid_rate"],
        "scored": summary["scored"],
        "n": summary["n"],
        "errors": summary["errors"],
        "semantics": summary.get("semantics", "spider"),
    }
    return {**scores, **summary.get("rouge", {})}
