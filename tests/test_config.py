import json

import pytest

from sqlft.config import PresetError, load_preset, parse_override, shipped_presets


@pytest.mark.parametrize("name", shipped_presets())
def test_every_shipped_preset_loads(name):
    preset = load_preset(name)
    assert preset.name == name
    assert preset.phase2.learning_rate < preset.phase1.learning_rate or name == "smoke"
    assert preset.eval.data.split == ("mini_dev" if preset.eval.data.source == "bird" else "dev")


def test_expected_presets_are_shipped():
    assert {
        "demo",
        "smoke",
        "kaggle-t4x2-phi2",
        "kaggle-t4x2-qwen2.5-coder-1.5b",
        "kaggle-t4x2-qwen2.5-coder-7b",
        "kaggle-t4x2-mistral-nemo-12b",
        "kaggle-t4x2-qwen2.5-coder-1.5b-bird",
        "kaggle-t4x2-qwen2.5-coder-7b-bird",
    } <= set(shipped_presets())


def test_bird_presets_train_on_bird_and_score_with_birds_semantics():
    from sqlft.prompts import load_template

    for size in ("1.5b", "7b"):
        p = load_preset(f"kaggle-t4x2-qwen2.5-coder-{size}-bird")
        assert p.phase2.data.source == p.eval.data.source == "bird" and p.phase2.data.split == "train"
        assert p.eval.semantics == "bird" and p.eval.timeout == 30.0
        assert load_template(p.prompt.template).has_evidence
        assert p.kaggle_dataset and p.eval.data.path.startswith(
            f"/kaggle/input/{p.kaggle_dataset.split('/')[1]}/"
        )
        assert p.phase1.max_minutes > 0 and p.phase2.max_minutes > 0


def test_kaggle_recipes_follow_the_seed_hyperparameters():
    for name in shipped_presets():
        if not name.startswith("kaggle-"):
            continue
        p = load_preset(name)
        gpus = 2 if p.model.placement == "ddp" else 1
        assert p.phase1.batch_size * p.phase1.grad_accum * gpus == 16, name
        assert (p.phase1.learning_rate, p.phase2.learning_rate) == (1e-4, 1e-5)
        assert (p.model.lora, p.model.lora_r, p.model.lora_alpha) == ("all-linear", 16, 32)
        bird = p.eval.data.source == "bird"  # BIRD's wide schemas need longer prompts
        assert p.phase1.optimizer == "paged_adamw_8bit" and p.prompt.max_length == (2048 if bird else 1024)
        assert p.phase1.gradient_checkpointing and p.phase1.save_total_limit == 2
        assert p.model.compute_dtype == "fp16"  # T4 has no bf16
    assert load_preset("kaggle-t4x2-mistral-nemo-12b").model.placement == "split"


def test_overrides_use_dotted_keys_and_yaml_values():
    preset = load_preset(
        "demo", dict([parse_override("phase1.learning_rate=2e-4"), parse_override("model.quantization=nf4")])
    )
    assert preset.phase1.learning_rate == pytest.approx(2e-4)
    assert preset.model.quantization == "nf4"
    assert preset.phase2.learning_rate == load_preset("demo").phase2.learning_rate


def test_unknown_key_is_an_error_naming_the_key(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("model:\n  name: x\n  quantisation: nf4\n")
    with pytest.raises(PresetError, match=r"mine\.yaml.*`model\.quantisation`"):
        load_preset(path)
    with pytest.raises(PresetError, match="`phase1.learning_rat`"):
        load_preset("demo", {"phase1.learning_rat": 1e-4})


@pytest.mark.parametrize(
    "key, value, message",
    [
        ("model.quantization", "nf8", "use one of int8, nf4, none"),
        ("phase1.learning_rate", -1, "a finite number above 0"),
        ("phase1.learning_rate", float("nan"), "a finite number above 0"),
        ("eval.timeout", float("inf"), "a finite number above 0"),
        ("phase1.batch_size", 0, "at least 1"),
        ("phase1.warmup_ratio", 1.5, "at most 1"),
        ("phase1.save_steps", 0, "at least 1"),
        ("eval.data.limit", -3, "at least 1"),
        ("model.lora_dropout", 1.5, "at most 1"),
        ("model", "foo", r"is a section.*Fix: set one of its keys, e.g. `model.name=foo`"),
        ("phase1.batch_size", "four", "must be int"),
        ("phase2.data.source", "kaggle", "use one of"),
        ("prompt.schema", "json", "use one of compact, ddl, mschema"),
        ("prompt.value_retrieval", -1, "at least 0"),
        ("prompt.value_retrieval", 1.5, "must be int"),
        ("eval.samples", 0, "at least 1"),
        ("eval.vote", "majority", "use one of executable, execution"),
        ("phase1.gradient_checkpointing", "yes", "must be bool"),
        ("phase3.num_generations", 1, "at least 2"),
        ("phase3.temperature", 0, "a finite number above 0"),
        ("phase3.runs_reward", 2, "at most 1"),
        ("phase3.enabled", "no", "must be bool"),
    ],
)
def test_impossible_values_are_errors_naming_the_key(key, value, message):
    with pytest.raises(PresetError, match=rf"`{key}`.*{message}"):
        load_preset("demo", {key: value})


def test_phase3_in_every_preset_samples_whole_groups():
    for name in shipped_presets():
        p = load_preset(name).phase3
        rows = p.generation_batch_size or p.batch_size * p.grad_accum
        assert rows % p.num_generations == 0, name
        if name.startswith("kaggle-"):  # fits a T4: fp16 model, 4-8 completions, ~256 tokens each
            assert p.enabled and 4 <= p.num_generations <= 8 and p.max_completion_length == 256
    assert not load_preset("demo").phase3.enabled and load_preset("demo").phase3.reason
    with pytest.raises(
        PresetError, match="phase3 batch_size x grad_accum is 6 completions.*num_generations=4"
    ):
        load_preset("smoke", {"phase3.batch_size": 3, "phase3.grad_accum": 2, "phase3.num_generations": 4})


def test_bad_yaml_and_missing_preset_name_the_file(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: [unclosed\n")
    with pytest.raises(PresetError, match="bad.yaml: not valid YAML"):
        load_preset(bad)
    with pytest.raises(PresetError, match="unknown preset 'nope'.*demo"):
        load_preset("nope")


def test_override_needs_key_and_value():
    with pytest.raises(PresetError, match="key=value"):
        parse_override("phase1.learning_rate")


def test_eval_num_samples_is_the_old_name_of_eval_samples(tmp_path):
    assert load_preset("smoke").eval.samples == 2 and load_preset("smoke").eval.vote == "execution"
    assert load_preset("smoke", {"eval.num_samples": 5}).eval.samples == 5
    old = tmp_path / "old.yaml"
    old.write_text("eval:\n  num_samples: 3\n")
    assert load_preset(old).eval.samples == 3
    old.write_text("eval:\n  num_samples: 3\n  samples: 4\n")
    with pytest.raises(PresetError, match="`eval.num_samples` and `eval.samples` are one setting"):
        load_preset(old)


def test_settings_recorded_before_keys_were_added_or_renamed_are_not_a_change(tmp_path):
    import copy

    from sqlft.config import as_current
    from sqlft.pipeline import PipelineError, _check_settings
    from sqlft.rundir import RunDir, step_settings

    today = load_preset("smoke").to_dict()
    old = copy.deepcopy({name: today[name] for name in ("model", "prompt", "eval")})
    del old["prompt"]["value_retrieval"], old["eval"]["vote"]  # keys this version added
    old["eval"]["num_samples"] = old["eval"].pop("samples")  # and one it renamed
    assert as_current(old) == {name: today[name] for name in ("model", "prompt", "eval")}
    run = RunDir(tmp_path)
    (run.step_dir("baseline") / "settings.json").write_text(
        json.dumps(step_settings({**today, **old}, "baseline"))
    )
    run.mark_done("baseline")
    _check_settings(run, today, skip=[])  # nothing changed but the names: the finished step stands
    changed = {**today, "prompt": {**today["prompt"], "value_retrieval": 5}}
    with pytest.raises(PipelineError, match=r"prompt.value_retrieval: 0 -> 5"):
        _check_settings(run, changed, skip=[])
    assert as_current({"prompt": {"no_such_key": 1}}) == {"prompt": {"no_such_key": 1}}  # shown as it was
