#!/usr/bin/env bash
# Wheels the CUDA gpu_check needs on a GPU machine that cannot reach PyPI, for Python 3.12 x86-64, into
# build/gpu_wheels (ignored), at the versions requirements.txt was tested with. What fits in 64 MiB (about
# 60 MiB in all): bitsandbytes (NF4, paged AdamW 8-bit; 41 MiB, its CUDA kernels), transformers (13 MiB),
# tokenizers, huggingface_hub, safetensors, peft, trl and accelerate. What does not: torch (the image's
# CUDA build is used), datasets with pyarrow, sqlglot, papermill, wandb: the GPU image must bring them.
# gpu_check.py installs these wheels itself (pip install --no-index --no-deps --target build/gpu_site)
# when bitsandbytes, transformers, peft, trl or accelerate is missing or older than sqlft needs.
set -euo pipefail
out="${1:-build/gpu_wheels}"
mkdir -p "$out"
pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --dest "$out" "bitsandbytes==0.50.2" "transformers==5.23.0" "tokenizers>=0.22,<0.24" \
    "huggingface_hub>=1,<3" "safetensors>=0.6" "peft==0.21.2" "trl==1.16.0" "accelerate==1.15.0"
du -sh "$out"
