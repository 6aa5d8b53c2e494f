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
# # 04 · Evaluation: baseline, phase 1 and phase 2 side by side
#
# All three were scored on the same dev questions with the same prompts. **Execution accuracy**
# is the measure of correctness, with the semantics of Spider's test-suite evaluator: the
# predicted query must return the gold query's rows (as a multiset; in order only when the gold
# has `ORDER BY`; columns may be permuted). Because a query that returns nothing "matches" a gold
# query that returns nothing, accuracy is also shown without the records whose gold result is
# empty. Exact match (after normalisation) and valid-SQL rate follow; ROUGE is there to compare
# with published numbers, not as a measure of correctness (it ignores punctuation, so
# `COUNT(*)` scores like `count`).

# %% tags=["parameters"]
preset = "demo"
overrides = {}
run_dir = "runs/demo"
previous_runs = []

# %%
import json

from sqlft import recipe
from sqlft.evaluate.figures import compare_runs, plot_failures
from sqlft.notebook import examples_table, metrics_table

config, run = recipe.setup(preset, overrides, run_dir, previous_runs)
steps = ["baseline", "phase1", "phase2"]
for step in steps:
    run.require(step)
reports = {step: json.loads(run.report(step).read_text()) for step in steps}

# %% [markdown]
# ## The numbers

# %%
table = metrics_table(reports)
table.style.format("{:.3f}", na_rep="–")

# %%
compare_runs(reports, run.figures / "exec_accuracy_by_hardness.png", title="Execution accuracy by hardness")

# %% [markdown]
# ## What phase 2 gets right, and what it still gets wrong

# %%
examples_table(reports["phase2"], matches=True)

# %%
examples_table(reports["phase2"], matches=False)

# %%
plot_failures(reports["phase2"], run.figures / "phase2_failures.png", title="Phase 2: failures by kind")

# %% [markdown]
# ## metrics.json
#
# One entry per step, with its summary (execution accuracy overall, by hardness and without
# empty-gold records, exact match, valid SQL, ROUGE, error counts).

# %%
metrics = {"preset": config.name, **{step: reports[step]["summary"] for step in steps}}
run.metrics.write_text(json.dumps(metrics, indent=1) + "\n")
run.mark_done("evaluation", **{step: reports[step]["summary"]["exec_accuracy"] for step in steps})
{step: round(reports[step]["summary"]["exec_accuracy"], 3) for step in steps}
