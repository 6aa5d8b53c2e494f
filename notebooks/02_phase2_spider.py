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
# training split; in the demo: the demo databases' training questions), with the database schema
# in every prompt and a learning rate ten times lower, so that it adapts to Spider's databases and
# conventions without forgetting what phase 1 anchored.

# %% tags=["parameters"]
preset = "demo"
overrides = {}
run_dir = "runs/demo"
previous_runs = []

# %%
from sqlft import recipe
from sqlft.evaluate import format_table
from sqlft.evaluate.figures import plot_accuracy_by_hardness

config, run = recipe.setup(preset, overrides, run_dir, previous_runs)
run.require("phase1")
phase = config.phase2
print(
    f"phase 2 of {config.name}: continues {run.adapter('phase1')} at lr {phase.learning_rate} "
    f"(phase 1: {config.phase1.learning_rate})"
)

# %% [markdown]
# ## Training data: questions with their schemas

# %%
tokenizer = recipe.load_tokenizer(config)
train_set, dev = recipe.prepare_phase(config, "phase2", run, tokenizer)
recipe.show_prepared(train_set)

# %% [markdown]
# ## Training, continuing the phase-1 adapter

# %%
model, tokenizer = recipe.run_phase(config, "phase2", run, overrides)

# %%
recipe.sql_samples(run, "phase2", last=2 * phase.sample_questions)

# %% [markdown]
# ## Phase 2 on the dev set

# %%
report = recipe.predict_and_score(config, model, tokenizer, dev, run, "phase2")
print(format_table(report["summary"]))
plot_accuracy_by_hardness(
    report, run.figures / "phase2_by_hardness.png", title="Phase 2: execution accuracy by hardness"
)

# %%
run.mark_done("phase2", exec_accuracy=report["summary"]["exec_accuracy"])
