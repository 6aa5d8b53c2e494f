"""The GPU machine gpu_check is written for: what its image holds, the wheels carried to it, the T4 it
emulates, and a guard that records every file a check reads outside the repository.

The image (Python 3.12, torch 2.11, transformers 5.17, no network) lacks trl, bitsandbytes, datasets
and sqlglot; benchmarks/gpu_wheels.sh fetches them into build/gpu_wheels, which travels with the
repository, and `install_wheels` unpacks them offline into build/gpu_site. The CPU dry run builds
`image_site`: a folder of links to only the image's and the wheels' packages (and what they require),
so that importing the CUDA mode under `python -S` fails here exactly where it would fail there.
"""

from __future__ import annotations

import importlib.metadata as md
import json
import os
import re
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
STANDIN_PREFIX = "GPU_CHECK_STANDIN_PREFIX"
if os.environ.get(STANDIN_PREFIX):
    # A dry run's `python -S` inside a virtual environment leaves sys.prefix at the base Python, so the
    # venv's packages look foreign: dill (datasets' hashing) then pickles their modules by value and fails
    # (pyarrow's MonthDayNano). On the image, as with site.py in a venv, the packages lie under sys.prefix.
    sys.prefix = sys.exec_prefix = os.environ[STANDIN_PREFIX]
if str(REPO) not in sys.path:  # sqlft from this repository: it is not installed on the GPU machine
    sys.path.insert(0, str(REPO))
from sqlft.plan import T4_GIB  # noqa: E402

BUILD = REPO / "build"
WHEELS_DIR = BUILD / "gpu_wheels"  # gpu_wheels.sh writes here; ignored by git, carried to the machine
SITE = BUILD / "gpu_site"  # where the carried wheels are installed, first on the children's path
GIB = 2**30
# The GPU image's packages (issue 24); what they require comes with them.
IMAGE = (
    "accelerate", "peft", "transformers", "torch", "numpy", "pandas", "pyarrow", "matplotlib", "pyyaml",
    "tqdm", "safetensors", "tokenizers", "huggingface-hub", "sentencepiece", "jinja2", "psutil", "pytest",
)  # fmt: skip
# What the CUDA mode imports and the image lacks: gpu_wheels.sh fetches exactly these, at these versions.
WHEELS = {
    "bitsandbytes": "0.50.2",  # NF4, paged AdamW 8-bit: 41 MiB of CUDA kernels
    "trl": "1.16.0",
    "datasets": "5.2.0",  # TRL's trainers take a datasets.Dataset
    "dill": "0.4.1",  # datasets' own requirements that the image lacks
    "multiprocess": "0.70.19",
    "xxhash": "4.1.0",
    "sqlglot": "30.30.0",  # sqlft.schema parses DDL with it (the pure-Python build: no sqlglotc)
    "rouge-score": "0.1.2",  # every evaluation report has ROUGE (sdist only: gpu_wheels.sh builds it)
    "nltk": "3.10.4",  # rouge_score's scorer imports it, and nltk these three
    "absl-py": "2.5.1",
    "joblib": "1.6.0",
    "defusedxml": "0.7.1",
    "cloudpickle": "3.1.3",  # joblib's
    "six": "1.17.0",  # rouge-score's (older python-dateutil brings it; 4.0 no longer does)
}
# Image packages a wheel above may need newer than the image's: fetched too, unpacked only then
# (transformers 5.17 needs huggingface-hub<2, datasets 5.2 >=1.31; 1.33 with both imported here)
FALLBACKS = {"huggingface-hub": "1.33.0"}
# Python modules CUDA mode imports, by the distribution that provides them (the image and the wheels).
CUDA_IMPORTS = (
    "torch", "torch.distributed.run", "transformers", "peft", "accelerate", "trl", "trl.trainer.sft_trainer",
    "bitsandbytes", "bitsandbytes.optim", "datasets", "sqlglot", "safetensors.torch",
    "sqlft.model", "sqlft.lora", "sqlft.train", "sqlft.rl", "sqlft.recipe", "sqlft.generate", "sqlft.plan",
    "sqlft.testing", "sqlft.evaluate", "sqlft.callbacks", "sqlft.modelcard", "sqlft.data.prepare",
    "sqlft.constrained", "sqlft.evaluate.report", "sqlft.evaluate.rouge", "rouge_score.tokenize",
    "rouge_score.rouge_scorer", "trl.trainer.grpo_trainer", "sqlft.data.demo", "sqlft.data.spider",
    "gpu_check", "gpu_check_cuda", "gpu_check_steps", "gpu_check_precision", "gpu_check_ddp",
    "bench_generate",
)  # fmt: skip
# the memory cap is `sqlft plan`'s T4, so the check and the plan agree on what a T4 holds
T4 = {"memory_gib": T4_GIB, "compute_dtype": "fp16", "bf16": False, "flash_sdp": False, "attention": "sdpa"}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def requirement_closure(names) -> set[str]:
    """`names` and everything they require (no extras), as installed on this machine."""
    from packaging.requirements import Requirement

    seen, todo = set(), [canonical(n) for n in names]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen.add(name)
        try:
            requires = md.requires(name) or []
        except md.PackageNotFoundError:
            continue
        for line in requires:
            req = Requirement(line)
            if req.marker is None or req.marker.evaluate({"extra": ""}):
                todo.append(canonical(req.name))
    return seen


def origins() -> dict[str, str]:
    """Each distribution the GPU machine has -> "image" (its packages and what they require) or "wheel"
    (exactly WHEELS: what a wheel requires beyond the image must be a wheel too)."""
    image = requirement_closure(IMAGE)
    wheels = {canonical(n) for n in WHEELS} - image
    return {**{n: "image" for n in image}, **{n: "wheel" for n in wheels}}


def image_site(dest: Path) -> Path:
    """Links to the top-level modules (and metadata) of only the image's and the wheels' distributions."""
    if dest.is_dir():
        return dest
    dest.mkdir(parents=True)
    for name in origins():
        try:
            dist = md.distribution(name)
        except md.PackageNotFoundError:
            continue  # required by a package but not installed here: the image brings it or nothing needs it
        tops = {f.parts[0] for f in dist.files or [] if f.parts and f.parts[0] not in ("..", "__pycache__")}
        for top in tops:
            source = Path(dist.locate_file(top))
            if source.exists() and not (dest / top).exists() and not top.endswith(".pth"):
                (dest / top).symlink_to(source)
    return dest


def import_audit(dry_run: bool, work: Path) -> dict:
    """Import every module of CUDA_IMPORTS in a fresh process (dry run: under `python -S` with only the
    image's and the wheels' packages on the path); which distribution each imported module came from."""
    done = subprocess.run(
        [*python(dry_run), __file__, "--imports"],
        capture_output=True,
        text=True,
        env=child_env(work, dry_run),
        timeout=300,
    )
    if done.returncode:
        return {"problems": [f"importing the CUDA mode failed: {done.stderr.strip()[-1500:]}"]}
    report = json.loads(done.stdout.strip().splitlines()[-1])
    imported = report["modules"]
    allowed = origins()
    by_origin: dict[str, list[str]] = {"image": [], "wheel": [], "not in the image's list or the wheels": []}
    for dist in sorted(set(imported.values())):
        by_origin[allowed.get(dist, "not in the image's list or the wheels")].append(dist)
    missing = by_origin["not in the image's list or the wheels"]
    # in a dry run nothing outside the lists can import; on the GPU machine the image simply had it
    problems = (
        [f"imported but neither in the image nor in the wheels: {missing}"] if missing and dry_run else []
    )
    versions = report["versions"]
    return {"distributions": by_origin, "versions": versions, "modules": len(imported), "problems": problems}


def _imported_distributions() -> dict[str, str]:
    """Import CUDA_IMPORTS; each third-party top-level module now loaded -> its distribution."""
    import importlib

    for name in CUDA_IMPORTS:
        importlib.import_module(name)
    owners = md.packages_distributions()
    local = {"sqlft", "benchmarks", *(p.stem for p in (REPO / "benchmarks").glob("*.py"))}
    found = {}
    for module in sorted({m.split(".")[0] for m in sys.modules}):
        if module in sys.stdlib_module_names or module in local or module.startswith("_"):
            continue
        if module in owners:
            found[module] = canonical(owners[module][0])
    return found


def python(dry_run: bool) -> list[str]:
    """The interpreter of a check process: in a dry run without site-packages (`image_site` stands in)."""
    return [sys.executable, "-S"] if dry_run else [sys.executable]


def child_env(work: Path, dry_run: bool) -> dict[str, str]:
    """The environment of every check process: the repository and the carried wheels first on the path
    (in a dry run, the image's packages only), every cache and temporary file inside the run's work
    folder, no W&B, no hub."""
    env = dict(os.environ)
    path = [str(SITE), str(REPO), str(REPO / "benchmarks"), env.get("PYTHONPATH", "")]
    if dry_run:
        path = [str(REPO), str(REPO / "benchmarks"), str(image_site(work / "image_site"))]
        env[STANDIN_PREFIX] = sys.prefix
    cache = work / "cache"
    (work / "tmp").mkdir(parents=True, exist_ok=True)
    env.update(
        PYTHONPATH=os.pathsep.join(p for p in path if p),
        TMPDIR=str(work / "tmp"),
        SQLFT_CACHE=str(cache / "sqlft"),
        HF_HOME=str(cache / "hf"),
        XDG_CACHE_HOME=str(cache),
        MPLCONFIGDIR=str(cache / "matplotlib"),
        TRITON_CACHE_DIR=str(cache / "triton"),
        HF_HUB_OFFLINE="1",
        TRANSFORMERS_OFFLINE="1",
        WANDB_MODE="disabled",
        TOKENIZERS_PARALLELISM="false",
        PYTHONUNBUFFERED="1",
    )
    return env


def _installed(name: str) -> str | None:
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def unmet_requirements(wheel: Path) -> list:
    """(Requirement, installed version) for each requirement of `wheel` that this Python's installed
    version does not meet (e.g. datasets 5.2 needs huggingface-hub>=1.31); absent packages are skipped."""
    from packaging.requirements import Requirement

    with zipfile.ZipFile(wheel) as archive:
        meta = next((n for n in archive.namelist() if n.endswith(".dist-info/METADATA")), None)
        lines = archive.read(meta).decode().splitlines() if meta else []
    unmet = []
    for line in lines:
        if not line.startswith("Requires-Dist:"):
            continue
        req = Requirement(line.removeprefix("Requires-Dist:").strip())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        have = _installed(req.name)
        if have is not None and not req.specifier.contains(have, prereleases=True):
            unmet.append((req, have))
    return unmet


def install_wheels(dry_run: bool) -> dict:
    """Unpack the carried wheels of the distributions this Python lacks into build/gpu_site, offline
    (a wheel is a zip of its installed files: no pip, no index, no dependency resolution); then, while
    an unpacked wheel needs a newer version of an installed package that is carried (a FALLBACKS
    wheel, or an old copy of a WHEELS package in the image), that one too."""
    lacking = [name for name in WHEELS if _installed(name) is None]
    wheels = {canonical(p.name.split("-")[0]): p for p in WHEELS_DIR.glob("*.whl")}
    result = {"lacking": lacking, "carried": sorted(wheels), "problems": []}
    absent = [n for n in lacking if canonical(n) not in wheels]
    if absent:
        result["problems"].append(
            f"{absent} missing here and not in {WHEELS_DIR}. "
            "Fix: bash benchmarks/gpu_wheels.sh where there is internet, and carry build/gpu_wheels"
        )
    chosen = [wheels[canonical(n)] for n in lacking if canonical(n) in wheels]
    unmet: list = []
    for wheel in chosen:  # grows while it runs: an added wheel's own requirements are checked too
        for req, have in unmet_requirements(wheel):
            newer = wheels.get(canonical(req.name))
            if newer is not None and newer not in chosen:
                chosen.append(newer)
            elif newer is None:
                unmet.append(f"{wheel.name} needs {req}, the image has {have}")
    result["unmet_requirements"] = unmet
    key = "would_unpack" if dry_run else "unpacked"
    result[key] = [f"{w.name} -> {SITE.relative_to(REPO)}" for w in chosen]
    if not dry_run:
        for wheel in chosen:
            with zipfile.ZipFile(wheel) as archive:
                archive.extractall(SITE)
    return result


def emulate_t4(device: int = 0) -> dict:
    """Make this process's GPU behave like a Kaggle T4 where it matters to sqlft: a memory cap of T4_GIB,
    no bf16 (fp16 compute), no flash-attention SDPA kernel (a T4 runs sdpa's memory-efficient one)."""
    import torch

    props = torch.cuda.get_device_properties(device)
    fraction = min(1.0, T4["memory_gib"] * GIB / props.total_memory)
    torch.cuda.set_per_process_memory_fraction(fraction, device)
    torch.backends.cuda.enable_flash_sdp(False)
    torch.cuda.is_bf16_supported = lambda *args, **kwargs: False  # what a Turing GPU answers
    return {
        "device": props.name,
        "capability": f"{props.major}.{props.minor}",
        "total_gib": round(props.total_memory / GIB, 1),
        "gpus": torch.cuda.device_count(),
        "memory_fraction": round(fraction, 4),
        "emulated": dict(T4),
    }


def probe_triton() -> str:
    """Whether a Triton kernel compiles and runs here: TRL's fused LM head (SFT and GRPO losses) runs on
    Triton on CUDA, and Triton needs a C compiler at its first compile; without triton TRL uses torch."""
    import torch

    try:
        import triton
        import triton.language as tl
    except ImportError:
        return "absent: TRL computes its LM head in torch"
    try:

        @triton.jit
        def double(x_ptr, n, BLOCK: tl.constexpr):
            offsets = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
            mask = offsets < n
            tl.store(x_ptr + offsets, tl.load(x_ptr + offsets, mask=mask) * 2, mask=mask)

        x = torch.ones(16, device="cuda")
        double[(1,)](x, 16, BLOCK=16)
        return f"ok (triton {triton.__version__})" if bool((x == 2).all()) else f"wrong result {x.tolist()}"
    except Exception as error:  # noqa: BLE001 (any failure here is the finding)
        return f"fails: {type(error).__name__}: {error}"[:800]


def guard_reads(work: Path) -> list[str]:
    """Record (in the returned list) every file opened outside the repository, the Python installation,
    system folders and the run's work folder: a self-contained check reads nothing else."""
    roots = [REPO, work, Path("/proc"), Path("/sys"), Path("/dev"), Path("/etc")]
    roots += [Path("/usr"), Path("/lib"), Path("/lib64"), Path(sys.prefix), Path(sys.base_prefix)]
    path = [Path(p) for p in sys.path if p and Path(p).is_dir()]
    roots += [Path(p) for p in sysconfig.get_paths().values()] + path
    # where image_site's links lead (a dry run's packages, e.g. a virtual environment's site-packages)
    roots += [link.resolve().parent for entry in path for link in entry.iterdir() if link.is_symlink()]
    roots = list({r.resolve() for r in roots})
    outside: list[str] = []

    def hook(event: str, args: tuple) -> None:
        if event != "open" or not isinstance(args[0], (str, bytes, os.PathLike)):
            return
        try:  # an exception here would fail the open itself
            path = Path(os.fsdecode(args[0])).resolve()
            if not any(path.is_relative_to(root) for root in roots) and str(path) not in outside:
                outside.append(str(path))
        except Exception:  # noqa: BLE001 (a path it cannot resolve is not worth a failed check)
            pass

    sys.addaudithook(hook)
    return outside


if __name__ == "__main__" and sys.argv[1:] == ["--imports"]:
    sys.path[:0] = [str(REPO), str(REPO / "benchmarks")]
    modules = _imported_distributions()
    versions = {name: md.version(name) for name in sorted(set(modules.values()) & {*IMAGE, *WHEELS})}
    import torch

    versions["torch.version.cuda"] = torch.version.cuda
    print(json.dumps({"modules": modules, "versions": versions}))
