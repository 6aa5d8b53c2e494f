"""The notebook series: paired, in sync, parameterised the same way, and free of library logic."""

import ast
from pathlib import Path

import jupytext
import nbformat
import pytest

from sqlft.rundir import STEPS

NOTEBOOKS = Path(__file__).resolve().parents[1] / "notebooks"
PARAMETERS = {"preset", "overrides", "run_dir", "previous_runs"}


def sources(notebook):
    """(cell type, source) of each cell, leaving out the cell papermill injects."""
    return [
        (c.cell_type, c.source.strip())
        for c in notebook.cells
        if "injected-parameters" not in c.metadata.get("tags", [])
    ]


@pytest.mark.parametrize("stem", [stem for _, stem in STEPS])
def test_py_and_ipynb_are_paired_and_in_sync(stem):
    py, ipynb = NOTEBOOKS / f"{stem}.py", NOTEBOOKS / f"{stem}.ipynb"
    assert py.is_file() and ipynb.is_file(), f"{stem}: both the .py source and the .ipynb must exist"
    assert sources(jupytext.read(py)) == sources(nbformat.read(ipynb, as_version=4)), (
        f"{ipynb.name} is out of sync with {py.name}: run `jupytext --sync notebooks/{py.name}`"
    )


@pytest.mark.parametrize("stem", [stem for _, stem in STEPS])
def test_each_notebook_reads_as_a_report(stem):
    notebook = jupytext.read(NOTEBOOKS / f"{stem}.py")
    assert notebook.cells[0].cell_type == "markdown" and notebook.cells[0].source.startswith("# ")
    tagged = [c for c in notebook.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, "exactly one cell tagged `parameters`"
    names = {t.id for node in ast.parse(tagged[0].source).body for t in getattr(node, "targets", [])}
    assert names == PARAMETERS
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    tree = ast.parse(code)
    assert not [n for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef, ast.Lambda))], (
        "library logic belongs in sqlft, not in notebook cells"
    )
    assert sum(c.cell_type == "markdown" for c in notebook.cells) >= 3
    assert notebook.metadata["kernelspec"]["name"] == "python3"
