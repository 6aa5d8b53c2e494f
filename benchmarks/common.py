"""What every benchmark result records: the machine, the versions, the command and the date."""

from __future__ import annotations

import json
import os
import platform
import shlex
import sys
from datetime import datetime, timezone
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PACKAGES = ("torch", "transformers", "peft", "trl", "bitsandbytes", "sqlglot")


def command() -> str:
    """The command line as run from the repository root, with the thread pin if there was one."""
    script = Path(sys.argv[0]).resolve()
    if script.is_relative_to(RESULTS.parents[1]):
        script = script.relative_to(RESULTS.parents[1])
    threads = os.environ.get("OMP_NUM_THREADS")
    return " ".join(
        [
            *([f"OMP_NUM_THREADS={threads}"] if threads else []),
            "python",
            shlex.join([str(script), *sys.argv[1:]]),
        ]
    )


def environment() -> dict:
    """Machine, package versions, command line and date, for a result file."""
    versions = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = version(name)
        except PackageNotFoundError:
            pass
    return {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command(),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
        },
        "versions": versions,
    }


def write_result(name: str, result: dict) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({**environment(), **result}, indent=1) + "\n")
    return path
