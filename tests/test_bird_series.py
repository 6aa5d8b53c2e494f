"""The notebook series end to end on the BIRD-layout fixture: smoke's tiny model, evidence in the
prompts, BIRD's semantics and difficulty in every report."""

import json

import nbformat
import pytest
from bird_fixture import build_bird
from notebook_checks import render_problems

from sqlft.pipeline import run_pipeline


def bird_overrides(root) -> dict:
    """The smoke preset with BIRD's fixture for training (train split) and evaluation (dev split)."""
    overrides = {"phase3.enabled": False, "phase3.reason": "the BIRD series test covers phases 1 and 2"}
    for section, split in (("phase1", "train"), ("phase2", "train"), ("eval", "dev")):
        overrides.update({f"{section}.data.source": "bird", f"{section}.data.path": str(root)})
        overrides[f"{section}.data.split"] = split
    return overrides


@pytest.mark.slow
def test_the_series_runs_on_bird_with_evidence_in_its_prompts(tmp_path):
    root = build_bird(tmp_path / "bird")
    out = tmp_path / "run"
    run_pipeline("smoke", bird_overrides(root), out=out, log=lambda _: None)
    metrics = json.loads((out / "metrics.json").read_text())
    for step in ("baseline", "phase1", "phase2"):
        summary = metrics[step]
        assert summary["semantics"] == "bird", step
        assert set(summary["by_difficulty"]) == {"simple", "moderate", "challenging"}, step
        predictions = [json.loads(line) for line in (out / step / "predictions.jsonl").open()]
        for record in predictions:
            evidence = record["extra"]["evidence"]
            assert (f"-- Evidence: {evidence}\n" in record["prompt"]) == bool(evidence), record["prompt"]
    train = [json.loads(line) for line in (out / "phase2" / "train.jsonl").open()]
    assert {r["source"] for r in train} == {"bird"} and any("-- Evidence: " in r["prompt"] for r in train)
    evaluation = nbformat.read(out / "04_evaluation.ipynb", as_version=4)
    shown = json.dumps([cell.get("outputs", []) for cell in evaluation.cells])
    assert "by BIRD's difficulty" in shown and "challenging" in shown
    for stem in ("00_baseline", "01_phase1_syntax", "02_phase2_spider", "04_evaluation"):
        assert render_problems(out / f"{stem}.ipynb", machine_paths=False) == [], stem
