"""The BIRD-layout fixture as a release folder: copied to a temporary folder, its databases built.

Fixtures hold no SQLite file (tests/fixtures/README.md): each `<db>/<db>.sql` becomes `<db>/<db>.sqlite`.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

FIXTURE = Path(__file__).parent / "fixtures" / "bird"


def build_bird(dest: Path) -> Path:
    """A BIRD release folder at `dest` (dev.json, train.json, mini_dev_sqlite.json, *_databases/)."""
    shutil.copytree(FIXTURE, dest)
    for script in dest.glob("*_databases/*/*.sql"):
        conn = sqlite3.connect(script.with_suffix(".sqlite"))
        conn.executescript(script.read_text(encoding="utf-8"))
        conn.commit()
        conn.close()
        script.unlink()
    return dest
