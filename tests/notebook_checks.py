"""What a reader of an executed notebook must not see: stderr walls, warnings, machine paths, cut SQL.

Used on the shipped notebooks and on the notebooks a smoke run writes.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat

MAX_STREAMS_PER_CELL = 12  # one line per evaluation round is a log; 170 bar redraws were a wall
WARNING = re.compile(r"\w*Warning\b|\bWARNING\b|Traceback")
MACHINE_PATH = re.compile(r"(?<![\w.~])/(?:root|home|tmp|usr|opt|var|work|mnt|proc)/")
ANSI = re.compile(r"\x1b\[[0-9;]*m")
CUT = re.compile(r"…|\w\.\.\.(?:\s|<|$)")  # an ellipsis: pandas' or a truncating formatter's


def wandb_lines_only(text: str) -> bool:
    """W&B's own lines (where the run is saved, offline notices): there only when a user turns it on."""
    lines = [ANSI.sub("", line) for line in text.splitlines() if line.strip()]
    return bool(lines) and all(line.startswith("wandb:") for line in lines)


def output_texts(output) -> list[str]:
    if output.output_type == "stream":
        return [] if wandb_lines_only(output.text) else [output.text]
    data = output.get("data", {})
    return [data[k] for k in ("text/plain", "text/html", "text/markdown") if k in data]


def render_problems(path: Path, machine_paths: bool = True) -> list[str]:
    """Every problem found in one executed notebook, as `cell N: what`; empty when it reads clean.

    `machine_paths=False` leaves paths alone (a test's run lives in a temporary folder)."""
    from nbconvert import HTMLExporter

    notebook = nbformat.read(path, as_version=4)
    HTMLExporter().from_notebook_node(notebook)  # renders as a reader's browser would get it
    checks = [(WARNING, "warning"), (CUT, "cut text")] + (
        [(MACHINE_PATH, "machine path")] if machine_paths else []
    )
    problems = []
    injected = [c for c in notebook.cells if "injected-parameters" in c.metadata.get("tags", [])]
    if len(injected) != 1:
        problems.append(f"{len(injected)} injected-parameters cells (papermill's values must stay visible)")
    for number, cell in enumerate(notebook.cells):
        if cell.cell_type != "code":
            continue
        if machine_paths and MACHINE_PATH.search(cell.source):
            problems.append(f"cell {number}: machine path in its source")
        streams = [o for o in cell.outputs if o.output_type == "stream"]
        if len(streams) > MAX_STREAMS_PER_CELL:
            problems.append(f"cell {number}: {len(streams)} stream outputs (a wall)")
        for output in cell.outputs:
            # an empty stderr output still shows as an empty pink box; an empty stdout one shows
            # nothing (the kernel sometimes flushes one between display updates)
            if output.output_type == "stream" and output.name == "stderr" and not output.text.strip():
                problems.append(f"cell {number}: an empty stderr output")
            if output.output_type == "stream" and "\r" in output.text:
                problems.append(f"cell {number}: a line redrawn in place (a progress bar's redraws)")
            if output.output_type == "stream" and output.name == "stderr" and output_texts(output):
                problems.append(f"cell {number}: stderr output: {output.text[:120]!r}")
            for text in output_texts(output):
                for pattern, what in checks:
                    found = pattern.search(text)
                    if found:
                        around = text[max(found.start() - 60, 0) : found.end() + 60].replace("\n", " ")
                        problems.append(f"cell {number}: {what}: ...{around}...")
    return problems
