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
# # 00 · Zero-shot baseline
#
# Before fine-tuning anything we measure what the base model does on its own: the dev questions,
# each with its database schema in the prompt, answered greedily, and scored by **execution
# accuracy** (does the predicted query return the same rows as the gold one, by the rules of
# Spider's test-suite evaluator), exact match, valid-SQL rate and ROUGE. Every later phase is
# judged against these numbers.
#
# Parameters come from a preset (`sqlft/presets/*.yaml`); the cell below is the one papermill
# overrides (the values that ran are in the injected cell after it when papermill ran this).
# `overrides` takes dotted keys, e.g. `{"eval.data.limit": 50}`; the table under the next cell
# lists every key this step reads, with the value it ran with.

# %% tags=["parameters"]
preset = "demo"  # a shipped preset name or a path to a YAML file
overrides = {}  # dotted keys, e.g. {"model.name": "Qwen/Qwen2.5-Coder-1.5B-Instruct"}
run_dir = "runs/demo"  # everything this series writes goes here
previous_runs = []  # run directories of earlier sessions (Kaggle kernel outputs) to continue from

# %%
from sqlft import findings, recipe
from sqlft.evaluate import format_table
from sqlft.evaluate.figures import plot_failures
from sqlft.notebook import failure_examples, settings_table

config, run = recipe.setup(preset, overrides, run_dir, previous_runs)
print(f"preset {config.name}: {config.description}")
settings_table(config, "baseline")

# %% [markdown]
# ## The dev set and its prompts
#
# Each record becomes a prompt: the template fills in the schema and the question, then the
# tokenizer's chat template wraps it. Records that would not fit `prompt.max_length` are dropped and
# counted, never truncated.

# %%
tokenizer = recipe.load_tokenizer(config)
dev = recipe.prepare(config, config.eval.data, tokenizer, out=run.step_dir("baseline") / "dev.jsonl")
recipe.show_prepared(dev, "dev")

# %% [markdown]
# ## The base model
#
# Quantisation, compute dtype and placement are chosen from the preset and the hardware; the
# loader says what it chose and why.

# %%
model, tokenizer = recipe.load_model(config)
print(model.sqlft_load_info.summary())

# %% [markdown]
# ## Zero-shot predictions and their scores
#
# Counts and accuracies per Spider hardness level (easy, medium, hard, extra), or per BIRD
# difficulty (simple, moderate, challenging) on BIRD data, then the overall rates; the first line
# names the execution semantics that scored them. A base model that has never seen this prompt
# format often fails before any question is judged: it explains instead of answering, or writes
# SQL that does not run.

# %%
report = recipe.predict_and_score(config, model, tokenizer, dev, run, "baseline")
print(format_table(report["summary"]))

# %% [markdown]
# ## Where it fails
#
# Every answer that did not match, by kind: a query that does not parse, one that names a table or
# column that does not exist, one that runs but returns other rows. Below the chart, one example
# of each kind with the SQL the model wrote in full.

# %%
plot_failures(report, run.figures / "baseline_failures.png", title="Baseline: failures by kind")

# %%
failure_examples(report)

# %%
run.mark_done("baseline", exec_accuracy=report["summary"]["exec_accuracy"])
findings.what_this_shows(config, run, {"baseline": report}, "baseline")
