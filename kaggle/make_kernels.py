"""Write pushable Kaggle kernels (one per notebook) that carry a preset file and its overrides.

    python kaggle/make_kernels.py --preset kaggle-t4x2-qwen2.5-coder-1.5b --user YOUR_NAME \
        --install "git+https://github.com/YOUR_NAME/sqlft" --out build/kaggle [-p KEY=VALUE ...]
    for d in build/kaggle/*/; do kaggle kernels push -p "$d"; done   # in order; wait for each to finish

A kernel cut off before its phase finished continues in part-2 kernels, which take its output as input:

    python kaggle/make_kernels.py ... --resume-step phase2 [--part 2]
"""

import argparse

from sqlft.config import parse_override
from sqlft.kaggle import make_kernels
from sqlft.rundir import STEPS

parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
parser.add_argument("--preset", required=True, help="a kaggle-t4x2-* preset name or your own YAML file")
parser.add_argument("--user", required=True, help="your Kaggle user name (kernel ids are USER/sqlft-...)")
parser.add_argument(
    "--install", required=True, help="what `%%pip install` gets sqlft from, e.g. git+https://..."
)
parser.add_argument("-p", dest="overrides", action="append", default=[], metavar="KEY=VALUE")
parser.add_argument("--out", default="build/kaggle")
parser.add_argument(
    "--resume-step",
    choices=[step for step, _ in STEPS],
    help="write the kernels that continue a series cut off in this step (from it on)",
)
parser.add_argument(
    "--part", type=int, default=2, help="with --resume-step: 2 after the first cut, 3 after a second"
)
args = parser.parse_args()
overrides = dict(parse_override(text) for text in args.overrides)
folders = make_kernels(
    args.preset,
    args.user,
    args.out,
    args.install,
    overrides=overrides,
    resume_step=args.resume_step,
    part=args.part,
)
for folder in folders:
    print(f"wrote {folder}")
