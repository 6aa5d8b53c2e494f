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
# then stop. It trains a QLoRA adapter on gretel-style synthetic text-to-SQL (on Kaggle:
# `gretelai/synthetic_text_to_sql`; in the demo: sqlft's own generated set), where every example
# carries its `CREATE TABLE` + `INSERT` context. The loader transpiled each context and gold query
# to SQLite and kept only examples whose gold query **runs**, so the model never learns from SQL
# that fails.
#
# Loss is computed on the completion only (the SQL and its end-of-sequence token): the prompt is
# masked, so the model learns to answer, and to stop, rather than to repeat questions.

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
phase = config.phase1
print(
    f"phase 1 of {config.name}: lr {phase.learning_rate}, batch {phase.batch_size} x {phase.grad_accum} "
    f"accumulation, LoRA {config.model.lora}, {config.model.quantization} weights"
)

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
# The loss curve updates live; at every evaluation a few dev questions are answered and shown with
# whether the generated SQL executes and matches (the table is also saved as `sql_samples.csv`).
# An interrupted run resumes from its last checkpoint when this notebook is run again.

# %%
model, tokenizer = recipe.run_phase(config, "phase1", run, overrides)

# %%
recipe.sql_samples(run, "phase1", last=2 * phase.sample_questions)

# %% [markdown]
# ## Phase 1 on the dev set
#
# The same dev questions as the baseline. Phase 1 has seen no Spider-style data yet: what it
# should have gained is well-formed, executable SQL that ends where it should.

# %%
report = recipe.predict_and_score(config, model, tokenizer, dev, run, "phase1")
print(format_table(report["summary"]))
plot_accuracy_by_hardness(
    report, run.figures / "phase1_by_hardness.png", title="Phase 1: execution accuracy by hardness"
)

# %%
run.mark_done("phase1", exec_accuracy=report["summary"]["exec_accuracy"])
