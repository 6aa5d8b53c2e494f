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
        "kaggle-t4x2-qwen2.5-coder-1.5b", "alice", tmp_path, "git+https://example.invalid/sqlft"
    )
    assert [f.name for f in folders] == [stem for _, stem in STEPS]
    for number, folder in enumerate(folders):
        meta = json.loads((folder / "kernel-metadata.json").read_text())
        assert meta["id"].startswith("alice/") and USER_PLACEHOLDER not in json.dumps(meta)
        notebook = nbformat.read(folder / meta["code_file"], as_version=4)
        assert notebook.cells[0].source == "%pip install -q git+https://example.invalid/sqlft"
        injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
        assert len(injected) == 1
        assert 'preset = "kaggle-t4x2-qwen2.5-coder-1.5b"' in injected[0].source
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
