"""sqlft's text-to-SQL metrics as a Hugging Face `evaluate` metric, loadable offline:

    import evaluate, sqlft.evaluate
    metric = evaluate.load(sqlft.evaluate.metric_path())
    metric.compute(predictions=preds, references=golds, db_ids=db_ids, db_dir="spider/database")

`evaluate` copies this script into its modules cache and imports it from there, so it holds no
logic of its own: every number comes from `sqlft.evaluate.evaluate_predictions`, the code behind
`sqlft eval` (execution match with Spider's official rules, exact match, valid SQL, ROUGE).
"""

import datasets
import evaluate

import sqlft.evaluate

_DESCRIPTION = """Execution accuracy of predicted SQL against gold SQL on SQLite databases (Spider's
official test-suite rules: rows as bags unless the gold orders them, columns may be permuted,
DISTINCT dropped), exact match after sqlglot normalisation, the share of predictions that run,
and optionally ROUGE-1/2/L/Lsum (rouge_score, no stemming) for comparison with published numbers.
Queries run read-only with a time limit: predictions are untrusted code."""

_KWARGS_DESCRIPTION = """
Args:
    predictions: predicted SQL strings.
    references: gold SQL strings, one per prediction.
    db_ids: Spider database names, one per prediction (a folder under `db_dir`); or leave out
        and give `contexts`.
    db_dir: the folder holding one folder per db_id (Spider's `database/`).
    contexts: SQLite statements that build an in-memory database, one per prediction (used
        where a record has no db_id).
    timeout: seconds per query (default 30).
    keep_distinct: do not drop DISTINCT before executing (default False, as the official).
    semantics: "spider" (test-suite rules, the default) or "bird" (BIRD's set comparison).
    rouge: also report ROUGE (default False).
Returns:
    execution_accuracy: matches over scored pairs (whose gold ran); None when none were scored.
    semantics: the execution semantics that scored them.
    execution_accuracy_all: matches over all pairs.
    exact_match: exact matches over scored pairs.
    valid_sql: predictions that ran, over scored pairs.
    scored, n: pair counts; errors: counts by error kind.
    rouge1, rouge2, rougeL, rougeLsum: with `rouge=True`.
Example:
    >>> metric = evaluate.load(sqlft.evaluate.metric_path())
    >>> context = "CREATE TABLE t (a)"
    >>> metric.compute(predictions=["SELECT 1"], references=["SELECT 1"], contexts=[context])["exact_match"]
    1.0
"""

_CITATION = """@inproceedings{zhong2020semantic,
  title={Semantic Evaluation for Text-to-SQL with Distilled Test Suites},
  author={Zhong, Ruiqi and Yu, Tao and Klein, Dan},
  booktitle={EMNLP},
  year={2020}
}"""


@evaluate.utils.file_utils.add_start_docstrings(_DESCRIPTION, _KWARGS_DESCRIPTION)
class SqlftSql(evaluate.Metric):
    """Execution accuracy, exact match, valid SQL and ROUGE from `sqlft.evaluate`."""

    def _info(self) -> evaluate.MetricInfo:
        return evaluate.MetricInfo(
            description=_DESCRIPTION,
            citation=_CITATION,
            inputs_description=_KWARGS_DESCRIPTION,
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
            reference_urls=["https://github.com/taoyds/test-suite-sql-eval"],
        )

    def _compute(
        self,
        predictions,
        references,
        db_ids=None,
        db_dir=None,
        contexts=None,
        timeout=30.0,
        keep_distinct=False,
        rouge=False,
        semantics="spider",
    ):
        records = sqlft.evaluate.metric_records(predictions, references, db_ids, contexts, db_dir)
        report = sqlft.evaluate.evaluate_predictions(
            records,
            db_dir,
            timeout_s=timeout,
            keep_distinct=keep_distinct,
            with_rouge=rouge,
            semantics=semantics,
        )
        return sqlft.evaluate.metric_scores(report["summary"])
