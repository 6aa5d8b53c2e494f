"""Pushable Kaggle copies of the notebook series, and what a kernel needs to run there.

Each step is its own Kaggle kernel (GPU T4 x2, internet on, Spider attached). A kernel adopts the
run directory of the kernel before it (`kernel_sources`), so phase 2 finds the phase-1 adapter
and the evaluation finds every step's predictions, and a 12-hour session limit hits one phase only.
Each kernel carries the preset file and overrides it was made with, the pip constraints of the same
commit, and a cell that reads its Kaggle secrets. A kernel cut off inside a phase is continued by
part-2 kernels (`resume_step`), the first of which takes its output as input (README: On Kaggle).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from sqlft.config import load_preset, preset_path
from sqlft.rundir import STEPS

KAGGLE_DIR = Path(__file__).resolve().parent.parent / "kaggle"
USER_PLACEHOLDER = "YOUR_KAGGLE_USERNAME"
RUN_DIR = "/kaggle/working/run"
REQUIRED_METADATA = {
    "id": str,
    "title": str,
    "code_file": str,
    "language": str,
    "kernel_type": str,
    "is_private": bool,
    "enable_gpu": bool,
    "enable_internet": bool,
    "machine_shape": str,
    "dataset_sources": list,
    "kernel_sources": list,
}


def validate_metadata(meta: dict, origin: str) -> None:
    """Raise ValueError naming the file and field for metadata Kaggle would refuse or misread."""
    for key, kind in REQUIRED_METADATA.items():
        if not isinstance(meta.get(key), kind):
            raise ValueError(f"{origin}: `{key}` must be a {kind.__name__}, got {meta.get(key)!r}")
    owner, _, slug = meta["id"].partition("/")
    if not owner or slug != meta["title"].lower().replace(" ", "-"):
        raise ValueError(
            f"{origin}: `id` must be USER/<title lowercased, spaces as dashes>, got {meta['id']!r}"
        )
    if meta["machine_shape"] != "NvidiaTeslaT4" or not meta["enable_gpu"] or not meta["enable_internet"]:
        raise ValueError(
            f"{origin}: the recipe needs GPU T4 x2 (machine_shape NvidiaTeslaT4) and internet on"
        )
    if (meta["language"], meta["kernel_type"]) != ("python", "notebook"):
        raise ValueError(f"{origin}: language must be python and kernel_type notebook")


# Runs in `python -I` (no working directory on sys.path): the repository's kaggle/ folder would
# otherwise shadow the kaggle package. Kaggle's own `kernels_push` validates each folder and builds
# its request; the client that would send it only records it, so nothing leaves the machine.
_PUSH_RECORDER = """
import contextlib, io, json, sys, types
from kaggle.api.kaggle_api_extended import KaggleApi

FIELDS = ("slug", "new_title", "language", "kernel_type", "is_private", "enable_gpu", "enable_internet",
          "machine_shape", "dataset_data_sources", "kernel_data_sources", "model_data_sources")
results = []
for folder in sys.argv[1:]:
    sent = []
    client = types.SimpleNamespace(kernels=types.SimpleNamespace(kernels_api_client=types.SimpleNamespace(
        save_kernel=sent.append)))
    api = KaggleApi()
    api.build_kaggle_client = lambda: contextlib.nullcontext(client)
    said = io.StringIO()
    try:
        with contextlib.redirect_stdout(said):
            api.kernels_push(folder)
        request = {k: getattr(sent[0], k) for k in FIELDS}
        results.append({"folder": folder, "request": request, "said": said.getvalue().strip()})
    except Exception as error:
        results.append({"folder": folder, "error": f"{type(error).__name__}: {error}"})
print(json.dumps(results, default=list))
"""


def kaggle_push_requests(folders: list[Path]) -> list[dict]:
    """For each kernel folder, what the `kaggle` package's own push would send, or its error.

    Needs the `kaggle` package (dev extra); it imports offline and needs no credentials for this.
    """
    done = subprocess.run(
        [sys.executable, "-I", "-c", _PUSH_RECORDER, *map(str, folders)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    if done.returncode != 0:
        raise RuntimeError(
            f"the kaggle package could not check {folders}: {done.stderr.strip()[-500:]}. "
            "Fix: pip install 'kaggle>=2' (bash install.sh --dev)"
        )
    return json.loads(done.stdout.strip().splitlines()[-1])


SECRETS = ("HF_TOKEN", "WANDB_API_KEY")  # gated models; W&B online
KERNEL_FILES = "/kaggle/working/sqlft-kernel"  # the preset file and constraints a kernel was made with
CONSTRAINTS = KAGGLE_DIR.parent / "constraints.txt"  # the tested versions (torch excluded), issue 22


def load_secrets(names: tuple[str, ...] = SECRETS) -> list[str]:
    """Put the Kaggle secrets attached to this kernel into the environment, so the hub and W&B find
    them; returns (and prints) their names only. A secret that is not attached is skipped quietly."""
    try:
        from kaggle_secrets import UserSecretsClient
    except ImportError:
        found = [name for name in names if os.environ.get(name)]
        print(f"not on Kaggle (no kaggle_secrets); from the environment: {', '.join(found) or 'none'}")
        return found
    client, found = UserSecretsClient(), []
    for name in names:
        if not os.environ.get(name):
            try:
                value = client.get_secret(name)
            except Exception:  # Kaggle raises for a secret not attached to the kernel: go on without it
                value = None
            if value:
                os.environ[name] = value
        if os.environ.get(name):
            found.append(name)
    print(f"Kaggle secrets in use: {', '.join(found) or 'none'} (Add-ons -> Secrets: {', '.join(names)})")
    return found


def _text_literal(text: str, indent: str) -> str:
    """`text` as one Python string literal per line, in parentheses: readable in the kernel, exact."""
    lines = text.splitlines(keepends=True) or [""]
    return "(\n" + "".join(f"{indent}    {line!r}\n" for line in lines) + f"{indent})"


def _files_cell(preset_file: Path, constraints: Path | None) -> str:
    """The kernel's first cell: write the preset file (and constraints) it was made with, byte for byte."""
    files = [(preset_file.name, preset_file.read_bytes().decode("utf-8"))]  # bytes: keep \r\n as it is
    if constraints is not None:
        files.append(("constraints.txt", constraints.read_bytes().decode("utf-8")))
    code = [
        "# The preset file this kernel was made with (make_kernels --preset), written byte for byte, and the",
        "# pip constraints of the same sqlft commit: the run does not depend on what the install ships.",
        "from pathlib import Path",
        "",
        f"KERNEL_FILES = Path({KERNEL_FILES!r})",
        "KERNEL_FILES.mkdir(parents=True, exist_ok=True)",
    ]
    for name, text in files:
        code += ["", f"with open(KERNEL_FILES / {name!r}, 'w', encoding='utf-8', newline='') as f:"]
        code += [f"    f.write({_text_literal(text, '    ')})"]
    return "\n".join(code)


def _install_cell(install: str, constraints: Path | None) -> str:
    if constraints is None:
        return (
            "# no constraints.txt beside make_kernels when this kernel was made: versions are pip's choice\n"
            f"%pip install -q {install}"
        )
    return (
        "# sqlft and its dependencies at the tested versions (constraints.txt of the commit that made this\n"
        "# kernel); torch is not constrained, so Kaggle's CUDA build stays\n"
        f"%pip install -q -c {KERNEL_FILES}/constraints.txt {install}"
    )


SECRETS_CELL = """# HF_TOKEN (gated models) and WANDB_API_KEY (W&B online) from Add-ons -> Secrets, where
# attached; only their names are printed, their values go into this process's environment alone
from sqlft.kaggle import load_secrets

load_secrets()"""


def kernel_slug(stem: str, part: int = 1) -> str:
    """The kernel slug of a step's notebook; `part` > 1: the kernel that continues a cut-off series."""
    slug = "sqlft-" + stem.replace("_", "-")
    return slug if part == 1 else f"{slug}-part-{part}"


def make_kernels(
    preset: str,
    user: str,
    out: str | Path,
    install: str,
    notebooks: str | Path | None = None,
    *,
    overrides: dict[str, Any] | None = None,
    constraints: Path | None = CONSTRAINTS,
    resume_step: str | None = None,
    part: int = 2,
) -> list[Path]:
    """Write one pushable folder per step under `out`; returns the folders, in order.

    Each kernel carries the preset file and `overrides` as given, the pip constraints and a secrets
    cell. `resume_step` writes the kernels that continue a series cut off in that step instead: part
    `part`, from that step on, the first taking the cut kernel's output (part `part - 1`) as its input.
    """
    import jupytext
    import nbformat
    import papermill

    from sqlft.pipeline import KERNELSPEC, notebooks_dir

    overrides = dict(overrides or {})
    config = load_preset(preset, overrides)  # fail here, not on Kaggle
    preset_file = preset_path(preset)
    if constraints is not None and not Path(constraints).is_file():
        print(f"warning: {constraints} not found; the kernels install sqlft without version constraints")
        constraints = None
    source_dir = Path(notebooks) if notebooks else notebooks_dir()
    steps = [name for name, _ in STEPS]
    if resume_step is not None and (resume_step not in steps or part < 2):
        raise ValueError(f"resume_step {resume_step!r}, part {part}: use a step of {steps} and a part >= 2")
    first = steps.index(resume_step) if resume_step else 0
    this_part = part if resume_step else 1
    folders = []
    previous_id = f"{user}/{kernel_slug(STEPS[first][1], this_part - 1)}" if resume_step else None
    for _, stem in STEPS[first:]:
        meta_path = KAGGLE_DIR / "metadata" / f"{stem}.json"
        meta = json.loads(meta_path.read_text().replace(USER_PLACEHOLDER, user))
        if config.kaggle_dataset:  # e.g. BIRD's presets: their data, not Spider's
            meta["dataset_sources"] = [config.kaggle_dataset.replace(USER_PLACEHOLDER, user)]
        validate_metadata(meta, str(meta_path))
        if this_part > 1:
            meta["title"] += f" part {this_part}"
            meta["id"] = f"{user}/{kernel_slug(stem, this_part)}"
        meta["kernel_sources"] = [previous_id] if previous_id else []
        validate_metadata(meta, str(meta_path))
        notebook = jupytext.read(source_dir / f"{stem}.py")
        notebook.metadata["kernelspec"] = KERNELSPEC
        previous = [f"/kaggle/input/{previous_id.split('/', 1)[1]}/run"] if previous_id else []
        folder = Path(out) / (stem if this_part == 1 else f"{stem}-part-{this_part}")
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / meta["code_file"]
        parameters = {
            "preset": f"{KERNEL_FILES}/{preset_file.name}",
            "overrides": overrides,
            "run_dir": RUN_DIR,
            "previous_runs": previous,
        }
        papermill.execute_notebook(
            notebook,
            str(path),
            parameters=parameters,
            prepare_only=True,
            kernel_name="python3",
            progress_bar=False,
        )
        notebook = nbformat.read(path, as_version=4)
        added = [
            (_files_cell(preset_file, constraints), "sqlft-files"),
            (_install_cell(install, constraints), "sqlft-install"),
            (SECRETS_CELL, "sqlft-secrets"),
        ]
        for number, (source, tag) in enumerate(added):
            notebook.cells.insert(number, nbformat.v4.new_code_cell(source, metadata={"tags": [tag]}))
        nbformat.write(notebook, path)
        (folder / "kernel-metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
        folders.append(folder)
        previous_id = meta["id"]
    return folders
