"""The embedded demo data set: built by code, offline, byte-identical on every build.

`build_demo(dest)` writes Spider's release layout (train_spider.json, train_others.json, dev.json,
tables.json, database/<db>/<db>.sqlite, *_gold.sql) plus phase1.jsonl in gretel's shape, so the
ordinary spider and gretel loaders read it. `demo_dir()` is a cached build; `load_demo` is the
`demo` source of `sqlft.data.load_examples`.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from sqlft.data import demo_dbs, demo_questions
from sqlft.data.demo_dbs import SEED, demo_databases, tables_json_entry, write_sqlite
from sqlft.data.demo_questions import TEMPLATES, phase1_rows, spider_splits
from sqlft.data.records import DataError, Example, LoadReport

FORMAT = 1
MANIFEST = "manifest.json"
SPLITS = ("phase1", "train", "dev")


def _version() -> str:
    """Format number plus a hash of the generator's source: a cache never outlives a code change."""
    digest = hashlib.sha256()
    for module in (demo_dbs, demo_questions):
        digest.update(Path(module.__file__).read_bytes())
    digest.update(Path(__file__).read_bytes())
    return f"{FORMAT}-{digest.hexdigest()[:12]}"


VERSION = _version()


def _json_bytes(data: Any) -> bytes:
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode()


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write(folder: Path) -> dict[str, Any]:
    """Write every file of the demo into `folder`; return the manifest."""
    databases = demo_databases()
    splits = spider_splits(databases, SEED)
    phase1 = phase1_rows(SEED)
    files: dict[str, bytes] = {
        "train_spider.json": _json_bytes(splits["train"]),
        "train_others.json": _json_bytes([]),
        "dev.json": _json_bytes(splits["dev"]),
        "tables.json": _json_bytes([tables_json_entry(db) for db in databases]),
        "train_gold.sql": "".join(f"{r['query']}\t{r['db_id']}\n" for r in splits["train"]).encode(),
        "dev_gold.sql": "".join(f"{r['query']}\t{r['db_id']}\n" for r in splits["dev"]).encode(),
        "phase1.jsonl": "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in phase1).encode(),
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    for db in databases:
        db_folder = folder / "database" / db.db_id
        db_folder.mkdir(parents=True)
        write_sqlite(db, db_folder / f"{db.db_id}.sqlite")
    written = sorted(p for p in folder.rglob("*") if p.is_file())
    manifest = {
        "name": "sqlft-demo",
        "version": VERSION,
        "counts": {"phase1": len(phase1), "train": len(splits["train"]), "dev": len(splits["dev"])},
        "templates": len(TEMPLATES),
        "files": {p.relative_to(folder).as_posix(): _sha256(p) for p in written},
    }
    (folder / MANIFEST).write_bytes(_json_bytes(manifest))
    return manifest


def read_manifest(dest: Path) -> dict[str, Any] | None:
    """The manifest of a demo folder, or None where there is none (or it is unreadable)."""
    try:
        return json.loads((Path(dest) / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def is_built(dest: str | Path) -> bool:
    """True when `dest` holds this version's demo with every file intact."""
    dest = Path(dest)
    manifest = read_manifest(dest)
    if not manifest or manifest.get("version") != VERSION:
        return False
    try:
        return all(_sha256(dest / name) == digest for name, digest in manifest["files"].items())
    except OSError:
        return False


def build_demo(dest: str | Path) -> Path:
    """Write the demo data set into `dest` (Spider's release layout) unless it is already there.

    The build goes to a temporary sibling folder and is renamed into place, so a reader never
    sees half a folder and two processes building at once both end with a complete one.
    """
    dest = Path(dest).expanduser()
    if is_built(dest):
        return dest
    if dest.exists() and any(dest.iterdir()) and read_manifest(dest) is None:
        raise DataError(f"{dest}: exists and is not a demo data folder; pass a new or empty folder")
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{dest.name}-", dir=dest.parent))
    tmp.chmod(0o755)  # mkdtemp makes it private; the demo is plain shared data
    try:
        _write(tmp)
        if is_built(dest):  # a concurrent build finished first
            return dest
        if dest.exists():  # empty, or an older or damaged demo build
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    except OSError:
        if not is_built(dest):  # a concurrent build that won the rename is as good as ours
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def cache_root() -> Path:
    """$SQLFT_CACHE, else $XDG_CACHE_HOME/sqlft, else ~/.cache/sqlft."""
    if os.environ.get("SQLFT_CACHE"):
        return Path(os.environ["SQLFT_CACHE"]).expanduser()
    if os.environ.get("XDG_CACHE_HOME"):
        return Path(os.environ["XDG_CACHE_HOME"]).expanduser() / "sqlft"
    return Path.home() / ".cache" / "sqlft"


def demo_dir() -> Path:
    """The default demo folder, `<cache>/demo/<version>`, built on first use."""
    return build_demo(cache_root() / "demo" / VERSION)


def load_demo(
    path: str | Path | None = None,
    split: str | None = "dev",
    *,
    strict: bool = False,
    limit: int | None = None,
    **options: Any,
) -> tuple[list[Example], LoadReport]:
    """Load a demo split: `phase1` through the gretel loader, `train`/`dev` through the spider one.

    `path` is a demo folder (built there if missing); None means `demo_dir()`.
    """
    split = split or "dev"
    if split not in SPLITS:
        raise DataError(f"demo: unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    folder = build_demo(path) if path is not None else demo_dir()
    if split == "phase1":
        from sqlft.data.gretel import load_gretel

        return load_gretel(folder / "phase1.jsonl", split, strict=strict, limit=limit, **options)
    from sqlft.data.spider import load_spider

    return load_spider(folder, split, strict=strict, limit=limit, **options)
