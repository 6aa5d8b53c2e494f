import json

import jupytext
import nbformat
import pytest

from sqlft.kaggle import KAGGLE_DIR, USER_PLACEHOLDER, make_kernels, validate_metadata
from sqlft.rundir import STEPS


@pytest.mark.parametrize("stem", [stem for _, stem in STEPS])
def test_shipped_metadata_is_valid(stem):
    path = KAGGLE_DIR / "metadata" / f"{stem}.json"
    meta = json.loads(path.read_text())
    validate_metadata(meta, str(path))
    assert meta["code_file"] == f"{stem}.ipynb"
    assert meta["dataset_sources"], "Spider must be attached as a dataset"
    assert meta["id"].startswith(USER_PLACEHOLDER + "/")


def test_each_kernel_takes_the_previous_kernel_as_a_source():
    metas = [json.loads((KAGGLE_DIR / "metadata" / f"{stem}.json").read_text()) for _, stem in STEPS]
    assert metas[0]["kernel_sources"] == []
    for previous, current in zip(metas, metas[1:], strict=False):
        assert current["kernel_sources"] == [previous["id"]]


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("machine_shape", "NvidiaTeslaP100", "T4 x2"),
        ("enable_internet", False, "internet"),
        ("id", "me/other-slug", "title lowercased"),
    ],
)
def test_invalid_metadata_names_the_field(field, value, message):
    meta = json.loads((KAGGLE_DIR / "metadata" / "00_baseline.json").read_text())
    meta[field] = value
    with pytest.raises(ValueError, match=message):
        validate_metadata(meta, "x.json")


def test_make_kernels_bakes_the_preset_into_pushable_copies(tmp_path):
    folders = make_kernels(
        "kaggle-t4x2-qwen2.5-coder-1.5b",
        "alice",
        tmp_path,
        "git+https://example.invalid/sqlft",
        constraints=None,
    )
    assert [f.name for f in folders] == [stem for _, stem in STEPS]
    for number, folder in enumerate(folders):
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        assert meta["id"].startswith("alice/") and USER_PLACEHOLDER not in json.dumps(meta)
        notebook = nbformat.read(folder / meta["code_file"], as_version=4)
        install = next(c for c in notebook.cells if "sqlft-install" in c.metadata.get("tags", []))
        assert install.source.endswith("%pip install -q git+https://example.invalid/sqlft")
        injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1
        assert (
            'preset = "/kaggle/working/sqlft-kernel/kaggle-t4x2-qwen2.5-coder-1.5b.yaml"'
            in injected[0].source
        )
        assert 'run_dir = "/kaggle/working/run"' in injected[0].source
        if number:
            assert f"/kaggle/input/{folders[number - 1].name}" not in injected[0].source  # slug, not stem
            assert "/kaggle/input/sqlft-" in injected[0].source
    assert jupytext.read(folders[0] / "00_baseline.ipynb").metadata["kernelspec"]["name"] == "python3"


def test_bird_kernels_attach_the_bird_dataset_instead_of_spider(tmp_path):
    folders = make_kernels(
        "kaggle-t4x2-qwen2.5-coder-1.5b-bird", "alice", tmp_path, "git+https://example.invalid/sqlft"
    )
    for folder in folders:
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        assert meta["dataset_sources"] == ["alice/bird-sql"]


def _cells(folder):
    meta = json.loads((folder / "kernel-metadata.json").read_text())
    notebook = nbformat.read(folder / meta["code_file"], as_version=4)
    return {tag: c for c in notebook.cells for tag in c.metadata.get("tags", [])}, meta


def test_kernels_carry_the_preset_file_overrides_and_constraints_byte_for_byte(tmp_path, monkeypatch):
    preset = tmp_path / "my.yaml"
    text = (KAGGLE_DIR.parent / "sqlft" / "presets" / "smoke.yaml").read_text()
    preset.write_bytes(
        (text.replace("name: smoke", "name: mine") + "# a 'quoted' \\ line, café\r\n").encode()
    )
    constraints = tmp_path / "constraints.txt"
    constraints.write_text("transformers==5.25.0\npeft==0.18.0  # tested\n")
    overrides = {"phase2.max_steps": 3, "eval.data.limit": 2}
    folders = make_kernels(
        str(preset), "alice", tmp_path / "out", "sqlft", overrides=overrides, constraints=constraints
    )
    cells, _ = _cells(folders[2])
    work = tmp_path / "kaggle-working"
    monkeypatch.setattr("sqlft.kaggle.KERNEL_FILES", str(work))
    exec(cells["sqlft-files"].source.replace("/kaggle/working/sqlft-kernel", str(work)), {})
    assert (work / "my.yaml").read_bytes() == preset.read_bytes()
    assert (work / "constraints.txt").read_bytes() == constraints.read_bytes()
    assert (
        "%pip install -q -c /kaggle/working/sqlft-kernel/constraints.txt sqlft"
        in cells["sqlft-install"].source
    )
    injected = cells["injected-parameters"].source
    assert 'preset = "/kaggle/working/sqlft-kernel/my.yaml"' in injected
    assert '"phase2.max_steps": 3' in injected and '"eval.data.limit": 2' in injected


def test_kernels_read_secrets_quietly_and_go_on_without_them(tmp_path, monkeypatch, capsys):
    import sys
    import types

    from sqlft.kaggle import load_secrets

    attached = {"HF_TOKEN": "hf_secret_value_123"}

    def get_secret(self, label):
        if label not in attached:
            raise RuntimeError(f"no secret {label}")
        return attached[label]

    module = types.ModuleType("kaggle_secrets")
    module.UserSecretsClient = type("UserSecretsClient", (), {"get_secret": get_secret})
    monkeypatch.setitem(sys.modules, "kaggle_secrets", module)
    for name in ("HF_TOKEN", "WANDB_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    assert load_secrets() == ["HF_TOKEN"]
    import os

    assert os.environ["HF_TOKEN"] == "hf_secret_value_123" and "WANDB_API_KEY" not in os.environ
    printed = capsys.readouterr()
    assert "HF_TOKEN" in printed.out and "hf_secret_value_123" not in printed.out + printed.err
    cells, _ = _cells(make_kernels("smoke", "alice", tmp_path, "sqlft", constraints=None)[0])
    assert "load_secrets()" in cells["sqlft-secrets"].source


def test_part_two_kernels_continue_from_the_cut_kernels_output(tmp_path):
    folders = make_kernels("smoke", "alice", tmp_path, "sqlft", constraints=None, resume_step="phase2")
    assert [f.name for f in folders] == [
        "02_phase2_spider-part-2",
        "03_phase3_rl-part-2",
        "04_evaluation-part-2",
    ]
    metas = [_cells(folder)[1] for folder in folders]
    assert [m["id"] for m in metas] == [
        "alice/sqlft-02-phase2-spider-part-2",
        "alice/sqlft-03-phase3-rl-part-2",
        "alice/sqlft-04-evaluation-part-2",
    ]
    assert metas[0]["kernel_sources"] == ["alice/sqlft-02-phase2-spider"]  # the cut kernel's output
    assert metas[1]["kernel_sources"] == [metas[0]["id"]]
    for meta in metas:
        validate_metadata(meta, "part 2")
    injected = _cells(folders[0])[0]["injected-parameters"].source
    assert '"/kaggle/input/sqlft-02-phase2-spider/run"' in injected


def test_the_kaggle_package_accepts_part_two_kernels_chained_to_the_cut_one(tmp_path):
    pytest.importorskip("kaggle")
    from sqlft.kaggle import kaggle_push_requests

    folders = make_kernels("smoke", "bob", tmp_path, "sqlft", constraints=None, resume_step="phase2")
    pushed = kaggle_push_requests(folders)
    assert [p.get("error") for p in pushed] == [None] * 3
    assert pushed[0]["request"]["kernel_data_sources"] == ["bob/sqlft-02-phase2-spider"]
    assert pushed[2]["request"]["slug"] == "bob/sqlft-04-evaluation-part-2"
