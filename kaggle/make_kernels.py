"""Write pushable Kaggle kernels (one per notebook) with a preset baked in.

    python kaggle/make_kernels.py --preset kaggle-t4x2-qwen2.5-coder-1.5b --user YOUR_NAME \
        --install "git+https://github.com/YOUR_NAME/sqlft" --out build/kaggle
    for d in build/kaggle/*/; do kaggle kernels push -p "$d"; done   # in order; wait for each to finish
"""

import argparse

from sqlft.kaggle import make_kernels

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--preset", required=True, help="a kaggle-t4x2-* preset (or any preset name)")
parser.add_argument("--user", required=True, help="your Kaggle user name (kernel ids are USER/sqlft-...)")
parser.add_argument(
    "--install", required=True, help="what `%%pip install` gets sqlft from, e.g. git+https://..."
)
parser.add_argument("--out", default="build/kaggle")
args = parser.parse_args()
for folder in make_kernels(args.preset, args.user, args.out, args.install):
    print(f"wrote {folder}")
