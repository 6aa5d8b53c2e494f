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
# # 03 · Phase 3: reinforcement learning with an execution reward
#
# Phases 1 and 2 imitate gold SQL token by token. Phase 3 instead lets the model write its own
# queries, **runs them**, and rewards the ones that return the right rows. It continues the
# phase-2 adapter with TRL's **GRPO** (Group Relative Policy Optimization): for each question it
# samples a group of completions, scores each one, and raises the probability of the completions
# that scored above their group's mean and lowers the others. There is no value model, and with
# `beta` 0 no reference model either, so it fits the same GPU memory as phase 2 plus the
# generation cache.
#
# The reward is the sum of two functions, each logged by name:
#
# - **execution**: 1.0 when the query's result matches the gold query's result (Spider's
#   execution-match rules, BIRD's on BIRD data, the same executor as `sqlft eval`), 0.1 when it
#   runs but returns something else, 0 when it fails or is empty (as Arctic-Text2SQL-R1). Queries
#   are untrusted: they run read-only with `sqlft eval`'s time, row and size limits, so a
#   `DROP TABLE` is denied and a runaway query times out without stopping training.
# - **format** (small weight): half for a completion that is one SQL statement and nothing else,
#   half for ending with the end-of-turn token rather than being cut off.
#
# TRL generates the completions itself, with the policy's own `model.generate` (sampling at the
# preset's temperature), not with sqlft's `generate_sql`; vLLM stays off because it cannot follow
# the adapter of a 4-bit base. Presets that leave phase 3 off say why below, and the step is marked
# done as skipped so that the evaluation compares only the steps that ran.

# %% tags=["parameters"]
preset = "demo"
overrides = {}
run_dir = "runs/demo"
previous_runs = []

# %%
from IPython.display import display

from sqlft import findings, recipe
from sqlft.evaluate import format_table
from sqlft.evaluate.figures import plot_steps
from sqlft.notebook import load_reports, reward_settings, samples_table, settings_table

config, run = recipe.setup(preset, overrides, run_dir, previous_runs)
run.require("phase2")
enabled = recipe.phase3_enabled(config, run)  # off: marks the step done as skipped, with the reason

# %% [markdown]
# ## GRPO and reward settings

# %%
reward_settings(config)

# %%
settings_table(config, "phase3")

# %% [markdown]
# ## Training data: the questions, with their schemas and gold queries
#
# The prompts are built exactly as in phase 2; the gold query and database of each record go to
# the reward functions, never into the prompt.

# %%
if enabled:
    tokenizer = recipe.load_tokenizer(config)
    train_set, dev = recipe.prepare_phase(config, "phase3", run, tokenizer)
    recipe.show_prepared(train_set)

# %% [markdown]
# ## Training, continuing the phase-2 adapter

# %%
if enabled:
    model, tokenizer = recipe.run_phase(config, "phase3", run, overrides)

# %% [markdown]
# ## Rewards per function
#
# The mean reward of each function per optimizer step, and their weighted total. A flat
# execution curve at 0 means no sampled query ever ran: the group has nothing to prefer.

# %%
if enabled:
    display(recipe.plot_rewards(run))

# %%
if enabled:
    display(samples_table(run, "phase3"))

# %% [markdown]
# ## Phase 3 on the dev set

# %%
if enabled:
    report = recipe.predict_and_score(config, model, tokenizer, dev, run, "phase3")
    print(format_table(report["summary"]))
    run.mark_done("phase3", exec_accuracy=report["summary"]["exec_accuracy"])
    reports = load_reports(run)  # every finished step so far
    display(plot_steps(reports, run.figures / "phase3_steps.png", title="Every step so far"))

# %% [markdown]
# When the preset leaves phase 3 off, the cells above show nothing beyond the reason printed at the
# top, and the evaluation compares the steps that ran.

# %%
if enabled:
    display(findings.what_this_shows(config, run, reports, "phase3"))
