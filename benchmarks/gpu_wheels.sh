#!/usr/bin/env bash
# The wheels `gpu_check.py --cuda` needs on the GPU machine (Python 3.12 x86-64, torch 2.11 and
# transformers 5.17 preinstalled, no network): exactly what the check imports and that image lacks,
# gpu_check_env.WHEELS at its versions (a test keeps the lists equal), plus its FALLBACKS (a newer
# huggingface-hub, unpacked only if the image's is too old for datasets), into build/gpu_wheels
# (ignored by git; carry it with the repository). bitsandbytes is 41 MiB of CUDA kernels; all together
# about 47 MiB, under the 56 MiB the repository's 64 MiB leave. The check unpacks them itself,
# offline, into build/gpu_site. Left out: transformers (13 MiB; the image's 5.17 is used), papermill
# and the notebook stack (the smoke check calls the notebooks' recipe steps), W&B, the embedded model.
# rouge-score and nltk (2 MiB with theirs): every evaluation report computes ROUGE.
set -euo pipefail
out="${1:-build/gpu_wheels}"
mkdir -p "$out"
pip download --no-deps --only-binary=:all: --python-version 3.12 \
    --platform manylinux_2_28_x86_64 --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 --dest "$out" \
    "bitsandbytes==0.50.2" "trl==1.16.0" "datasets==5.2.0" "dill==0.4.1" "multiprocess==0.70.19" \
    "xxhash==4.1.0" "sqlglot==30.30.0" "nltk==3.10.4" "absl-py==2.5.1" "joblib==1.6.0" \
    "defusedxml==0.7.1" "cloudpickle==3.1.3" "six==1.17.0" \
    "huggingface-hub==1.33.0"
# rouge-score publishes no wheel: build its pure-Python one from the sdist here
pip wheel --no-deps --wheel-dir "$out" "rouge-score==0.1.2"
du -ch "$out"/*.whl | tail -1
