"""Metrics for text-to-SQL predictions: execution match with Spider's official rules, exact
match, valid SQL, ROUGE, hardness, self-consistency, reports and figures; `metric_path()` gives
the Hugging Face `evaluate` metric script (`evaluate.load(metric_path())`, offline).

(Not the Hugging Face `evaluate` library: inside sqlft import this package by its full name.)
Figures live in `sqlft.evaluate.figures`, imported on demand because matplotlib is slow to load.
"""

from sqlft.evaluate.consistency import execution_guided, self_consistency
from sqlft.evaluate.exact import exact_match, normalize_sql
from sqlft.evaluate.execution import Executor, result_eq
from sqlft.evaluate.hardness import hardness, hardness_from_sql, hardness_from_text
from sqlft.evaluate.metric import metric_path, metric_records, metric_scores
from sqlft.evaluate.report import (
    evaluate_predictions,
    failure_table,
    format_table,
    read_predictions,
    summarize,
    write_report,
)

__all__ = [
    "Executor",
    "evaluate_predictions",
    "exact_match",
    "execution_guided",
    "failure_table",
    "format_table",
    "hardness",
    "hardness_from_sql",
    "hardness_from_text",
    "metric_path",
    "metric_records",
    "metric_scores",
    "normalize_sql",
    "read_predictions",
    "result_eq",
    "self_consistency",
    "summarize",
    "write_report",
]
