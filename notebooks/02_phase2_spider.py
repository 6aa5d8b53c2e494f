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
# # 02 · Phase 2: Spider alignment
#
# The second phase continues **the same adapter** on Spider-style data (on Kaggle: Spider's
# training split, or BIRD's with the `-bird` presets, whose prompts also carry each question's
# evidence; in the demo: the demo databases' training questions), with the database schema in
# every prompt and a lower learning rate than phase 1 (the cell below says how much lower in this
# run), so that it adapts to the benchmark's databases and conventions without forgetting what
# phase 1 anchored.
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
run.require("phase1")
findings.describe_phase(config, "phase2")

# %%
settings_table(config, "phase2")

# %% [markdown]
# ## Training data: questions with their schemas

# %%
tokenizer = recipe.load_tokenizer(config)
train_set, dev = recipe.prepare_phase(config, "phase2", run, tokenizer)
recipe.show_prepared(train_set)

# %% [markdown]
# ## Training, continuing the phase-1 adapter
#
# As in phase 1: a live loss curve, a line per evaluation round, and the last round of SQL samples
# in full after training.

# %%
model, tokenizer = recipe.run_phase(config, "phase2", run, overrides)

# %%
samples_table(run, "phase2")

# %% [markdown]
# ## Phase 2 on the dev set

# %%
report = recipe.predict_and_score(config, model, tokenizer, dev, run, "phase2")
print(format_table(report["summary"]))

# %%
run.mark_done("phase2", exec_accuracy=report["summary"]["exec_accuracy"])
reports = load_reports(run)  # every finished step so far
plot_steps(reports, run.figures / "phase2_steps.png", title="Baseline, phase 1 and phase 2")

# %%
findings.what_this_shows(config, run, reports, "phase2")
