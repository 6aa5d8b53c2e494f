#!/usr/bin/env bash
# Wheels the CUDA gpu_check needs beyond Kaggle's image, for Python 3.12 x86-64, into build/gpu_wheels
# (ignored). Only bitsandbytes (NF4, paged_adamw_8bit; ~43 MB) is fetched: torch, transformers, peft and
# trl come with sqlft's install and Kaggle's image. Install offline on the GPU machine with:
#   pip install --no-index --target build/gpu_site build/gpu_wheels/*.whl
set -euo pipefail
out="${1:-build/gpu_wheels}"
mkdir -p "$out"
pip download --no-deps --only-binary=:all: --python-version 3.12 --platform manylinux_2_24_x86_64 \
    --dest "$out" "bitsandbytes>=0.45"
du -sh "$out"
