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
# # 01 · Phase 1: syntax anchoring
#
# The first phase teaches the model the *form* of the answer: one SQLite query, nothing else,
# then stop. It trains a LoRA adapter (QLoRA when the preset loads the base in 4 bits; the cell
# below says which this run did) on gretel-style synthetic text-to-SQL (on Kaggle:
# `gretelai/synthetic_text_to_sql`; in the demo: sqlft's own generated set), where every example
# carries its `CREATE TABLE` + `INSERT` context. The loader transpiled each context and gold query
# to SQLite and kept only examples whose gold query **runs**, so the model never learns from SQL
# that fails.
#
# Loss is computed on the completion only (the SQL and its end-of-sequence token): the prompt is
# masked, so the model learns to answer, and to stop, rather than to repeat questions.
#
# The parameters cell works as in 00 (papermill's injected values follow it); the settings
# table lists every preset key this phase reads, with the value it ran with.

# %% tags=["parameters"]
preset = "demo"
overrides = {}
run_dir = "runs/demo"
previous_runs = []

# %%
from sqlft import findings, recipe
from sqlft.evaluate import format_table
from sqlft.evaluate.figures import plot_steps
from sqlft.notebook import load_reports, samples_table, settings_table

config, run = recipe.setup(preset, overrides, run_dir, previous_runs)
findings.describe_phase(config, "phase1")

# %%
settings_table(config, "phase1")

# %% [markdown]
# ## Training data
#
# What the loader kept and what it dropped (with the reason for each drop), prompt lengths in
# tokens, and one training example exactly as the model sees it.

# %%
tokenizer = recipe.load_tokenizer(config)
train_set, dev = recipe.prepare_phase(config, "phase1", run, tokenizer)
recipe.show_prepared(train_set)

# %% [markdown]
# ## Training
#
# The loss curve updates live. At every evaluation a few dev questions are answered (one line
# each time: how many execute and match); the last round is shown in full below, and every round
# is saved in `sql_samples.csv`. An interrupted run resumes from its last complete checkpoint when
# this notebook is run again.

# %%
model, tokenizer = recipe.run_phase(config, "phase1", run, overrides)

# %%
samples_table(run, "phase1")

# %% [markdown]
# ## Phase 1 on the dev set
#
# The same dev questions as the baseline. Phase 1 has seen no Spider-style data yet: what it
# should have gained is well-formed, executable SQL that ends where it should, so the chart puts
# the valid-SQL rate beside execution accuracy.

# %%
report = recipe.predict_and_score(config, model, tokenizer, dev, run, "phase1")
print(format_table(report["summary"]))

# %%
run.mark_done("phase1", exec_accuracy=report["summary"]["exec_accuracy"])
reports = load_reports(run)  # every finished step so far
plot_steps(reports, run.figures / "phase1_steps.png", title="Baseline and phase 1")

# %%
findings.what_this_shows(config, run, reports, "phase1")
