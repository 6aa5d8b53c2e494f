import pytest

from sqlft.config import load_preset, shipped_presets
from sqlft.plan import T4_GIB, ModelShape, Setup, read_config
from sqlft.session_budget import (
    TARGET_HOURS,
    TRAIN_UTILISATION,
    budget_minutes,
    budget_table,
    full_data_minutes,
    kernel_budgets,
)

KAGGLE = [name for name in shipped_presets() if name.startswith("kaggle")]


def shape_of(preset):
    config, origin = read_config(preset.model.name, hub=False)
    return ModelShape.from_config(config, origin)


@pytest.mark.parametrize("name", KAGGLE)
def test_every_kaggle_kernel_ends_within_eleven_hours_at_ten_percent_of_peak(name):
    preset, assumed = load_preset(name), TRAIN_UTILISATION
    assert assumed <= 0.10  # the pessimistic rate; gpu_check's estimate assumes 15%
    shape = shape_of(preset)
    phases = ["phase1", "phase2"] + (["phase3"] if preset.phase3.enabled else [])
    for phase in phases:
        cap = getattr(preset, phase).max_minutes
        assert 0 < cap <= budget_minutes(preset, phase, shape), f"{name} {phase}: max_minutes {cap}"
    rows = kernel_budgets(preset, shape)
    assert [row.step for row in rows] == ["baseline", *phases]
    for row in rows:
        assert row.total <= TARGET_HOURS * 60, f"{name} {row.step}: {row.total / 60:.1f} h"


def test_a_phase_over_its_session_is_capped_and_says_how_much_data_it_sees():
    preset = load_preset("kaggle-t4x2-mistral-nemo-12b")
    shape = shape_of(preset)
    # NeMo's phase 2 needs more than a session at 10% of peak: its budget stops it, and the table says so
    assert full_data_minutes(preset, "phase2", shape, gpus=2) > budget_minutes(preset, "phase2", shape)
    phase2 = next(row for row in kernel_budgets(preset, shape) if row.step == "phase2")
    assert phase2.train == preset.phase2.max_minutes and 0.5 < phase2.planned_share < 1
    line = next(line for line in budget_table(preset, shape).splitlines() if line.startswith("phase2"))
    assert f"{phase2.planned_share:.0%}" in line and "over" not in line
    uncapped = load_preset("kaggle-t4x2-mistral-nemo-12b", {"phase2.max_minutes": 0})
    assert "over 11 h" in budget_table(uncapped, shape)


def test_plan_prints_the_kernel_budget_table(capsys):
    from sqlft.cli import main

    assert main(["plan", "--preset", "kaggle-t4x2-qwen2.5-coder-7b"]) == 0
    out = capsys.readouterr().out
    assert "Kaggle kernels, hours per session" in out
    for step in ("baseline", "phase1", "phase2", "phase3"):
        assert any(line.startswith(step) for line in out.splitlines())


def test_a_t4_is_planned_with_the_memory_it_leaves_usable():
    assert T4_GIB == 14.5 and Setup().gpu_gib == 14.5


def test_plan_json_carries_the_kernel_minutes(capsys):
    import json

    from sqlft.cli import main

    assert main(["plan", "--preset", "kaggle-t4x2-phi2", "--json"]) == 0
    kernels = json.loads(capsys.readouterr().out)["kernels_minutes"]
    assert [k["step"] for k in kernels] == ["baseline", "phase1", "phase2", "phase3"]
    assert all(k["fits"] and k["total"] <= 11 * 60 for k in kernels)
