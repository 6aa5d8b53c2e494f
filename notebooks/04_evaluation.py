# ---
# jupyter:
#   jupytext:
#     cell_metadata_filter: tags,-all
#     text_representation:
#       extension: .py
#       format_name: percent
#       format_version: '1.3'
#       jupytext_version: 1.19.6
#   kernelspec:
#     display_name: Python 3 (ipykernel)
#     language: python
#     name: python3
# ---

# %% [markdown]
# # 04 · Evaluation: every step side by side
#
# The baseline and each training step that ran (phase 1, phase 2, and phase 3 where the preset
# turns it on) were scored on the same dev questions with the same prompts. **Execution accuracy**
# is the measure of correctness, with the semantics of Spider's test-suite evaluator: the
# predicted query must return the gold query's rows (as a multiset; in order only when the gold
# has `ORDER BY`; columns may be permuted). On BIRD data the semantics are BIRD's (rows as a set,
# column order counts) and the tables break down by BIRD's difficulty instead of Spider's hardness;
# "What this shows" at the end names the semantics. Because a query that returns nothing
# "matches" a gold query that returns nothing, accuracy is also shown without the records whose
# gold result is empty. Exact match (after normalisation) and valid-SQL rate follow; ROUGE is there
# to compare with published numbers, not as a measure of correctness (it ignores punctuation, so
# `COUNT(*)` scores like `count`).

# %% tags=["parameters"]
preset = "demo"
overrides = {}
run_dir = "runs/demo"
previous_runs = []

# %%
import json

from sqlft import findings, recipe
from sqlft.answer import notebook_ask
from sqlft.evaluate.figures import compare_runs, plot_failures, plot_steps
from sqlft.notebook import (
    constrained_table,
    example_question,
    failure_examples,
    load_reports,
    metrics_table,
    settings_table,
    side_by_side,
)

config, run = recipe.setup(preset, overrides, run_dir, previous_runs)
load_reports(run, ["baseline", "phase1", "phase2"])  # each must be finished
reports = load_reports(run)  # and any later step that ran
last = list(reports)[-1]
settings_table(config, "evaluation")

# %% [markdown]
# ## The numbers
#
# With `eval.samples: N` (N > 1) every step also samples N answers per question and keeps the one
# that `eval.vote` picks: `execution`, the result most of them agree on (self-consistency), or
# `executable`, the likeliest answer that runs. Its row, *best of N*, is scored apart from greedy
# decoding, which stays the first row; with `eval.schema_constrained` the samples are constrained too.

# %%
metrics_table(reports).style.format("{:.3f}", na_rep="–")

# %%
plot_steps(reports, run.figures / "steps.png")

# %%
compare_runs(reports, run.figures / "exec_accuracy_by_hardness.png")  # by difficulty for BIRD

# %% [markdown]
# ## The same questions, every step
#
# Each row is one dev question answered by every step, with the step's verdict and its SQL in
# full. Questions on which the steps disagree come first: they show what training changed.

# %%
side_by_side(reports)

# %% [markdown]
# ## What the last step still gets wrong
#
# Its failures by kind, and one example of each kind with the SQL it wrote.

# %%
plot_failures(reports[last], run.figures / f"{last}_failures.png", title=f"{last}: failures by kind")

# %%
failure_examples(reports[last])

# %% [markdown]
# ## Schema-constrained decoding
#
# With `eval.schema_constrained` every step is also decoded so that each table and column the
# model writes exists in the question's schema (`sqlft.constrained`); the table compares both.

# %%
constrained_table(run)

# %% [markdown]
# ## metrics.json
#
# One entry per step, with its summary (execution accuracy overall, by Spider hardness or BIRD
# difficulty and without empty-gold records, exact match, valid SQL, ROUGE, error counts, and the
# semantics that scored it).

# %%
metrics = {"preset": config.name, **{step: report["summary"] for step, report in reports.items()}}
run.metrics.write_text(json.dumps(metrics, indent=1) + "\n")
run.mark_done("evaluation", **{step: report["summary"]["exec_accuracy"] for step, report in reports.items()})
findings.what_this_shows(config, run, reports, last)

# %% [markdown]
# ## Ask your own database
#
# The trained model answers a question about any SQLite file: the prompt is built from the file's
# schema as in training, the answer names only the file's tables and columns (schema-constrained
# decoding), and the SQL runs read-only with time and row limits. The model loads as training
# loaded it (the preset's quantisation and placement); where it does not fit this machine's GPU the
# cell says so and skips. It starts from a dev question the last step answered correctly; replace
# `db` and `question` with your own (or, from a shell:
# `sqlft ask --adapter runs/demo/phase2/adapter --db my.sqlite "question"`).

# %%
db, question = example_question(run, reports[last])  # or db = "my.sqlite"; question = "How many ...?"
print(notebook_ask(config, run.adapter(last), db, question))
