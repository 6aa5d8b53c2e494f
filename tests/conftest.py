"""Offline, single-threaded test rig: nothing reaches the network, every test has its own HF_HOME."""

import os
import sqlite3

# Set before any test module imports torch or the HF libraries.
os.environ.update(
    HF_HUB_OFFLINE="1",
    HF_DATASETS_OFFLINE="1",
    TRANSFORMERS_OFFLINE="1",
    WANDB_MODE="disabled",
    OMP_NUM_THREADS="1",
    MKL_NUM_THREADS="1",
    TOKENIZERS_PARALLELISM="false",
)

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

SPIDER_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "spider"


@pytest.fixture(autouse=True)
def _isolated_hf_home(tmp_path_factory, monkeypatch):
    home = tmp_path_factory.getbasetemp() / "hf_home"
    monkeypatch.setenv("HF_HOME", str(home))
    monkeypatch.setenv("HF_DATASETS_CACHE", str(home / "datasets"))


@pytest.fixture(scope="session")
def spider_dir() -> Path:
    if not (SPIDER_DIR / "dev.json").exists():
        pytest.skip(f"Spider dev not found at {SPIDER_DIR}")
    return SPIDER_DIR


@pytest.fixture
def toy_db_dir(tmp_path):
    """A --db-dir holding one database, toy, with table t(a, b) of three rows."""
    root = tmp_path / "db"
    (root / "toy").mkdir(parents=True)
    conn = sqlite3.connect(root / "toy" / "toy.sqlite")
    conn.execute("CREATE TABLE t (a INTEGER, b TEXT)")
    conn.executemany("INSERT INTO t VALUES (?, ?)", [(1, "x"), (2, "y"), (3, "z")])
    conn.commit()
    conn.close()
    return root
