"""Pushable Kaggle copies of the notebook series, with a preset baked into the parameters.

Each step is its own Kaggle kernel (GPU T4 x2, internet on, Spider attached). A kernel adopts the
run directory of the kernel before it (`kernel_sources`), so phase 2 finds the phase-1 adapter
and the evaluation finds every step's predictions, and a 12-hour session limit hits one phase only.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from sqlft.config import load_preset
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


def make_kernels(
    preset: str, user: str, out: str | Path, install: str, notebooks: str | Path | None = None
) -> list[Path]:
    """Write one pushable folder per step under `out`; returns the folders, in order."""
    import jupytext
    import nbformat
    import papermill

    from sqlft.pipeline import KERNELSPEC, notebooks_dir

    config = load_preset(preset)  # fail here, not on Kaggle
    source_dir = Path(notebooks) if notebooks else notebooks_dir()
    folders = []
    previous_slug = None
    for _, stem in STEPS:
        meta_path = KAGGLE_DIR / "metadata" / f"{stem}.json"
        meta = json.loads(meta_path.read_text().replace(USER_PLACEHOLDER, user))
        if config.kaggle_dataset:  # e.g. BIRD's presets: their data, not Spider's
            meta["dataset_sources"] = [config.kaggle_dataset.replace(USER_PLACEHOLDER, user)]
        validate_metadata(meta, str(meta_path))
        notebook = jupytext.read(source_dir / f"{stem}.py")
        notebook.metadata["kernelspec"] = KERNELSPEC
        previous = [f"/kaggle/input/{previous_slug}/run"] if previous_slug else []
        folder = Path(out) / stem
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / meta["code_file"]
        parameters = {"preset": config.name, "run_dir": RUN_DIR, "previous_runs": previous}
        papermill.execute_notebook(
            notebook,
            str(path),
            parameters=parameters,
            prepare_only=True,
            kernel_name="python3",
            progress_bar=False,
        )
        notebook = nbformat.read(path, as_version=4)
        notebook.cells.insert(0, nbformat.v4.new_code_cell(f"%pip install -q {install}"))
        nbformat.write(notebook, path)
        (folder / "kernel-metadata.json").write_text(json.dumps(meta, indent=2) + "\n")
        folders.append(folder)
        previous_slug = meta["id"].split("/", 1)[1]
    return folders
