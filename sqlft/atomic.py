"""Writes that a kill, a full disk or a second process cannot leave half done.

A file or folder is written under a temporary sibling name and renamed into place (a rename within
one folder is atomic on POSIX), so a reader sees the old version or the new one, never a part.
`RunLock` keeps a second `sqlft run` out of a run folder; `ensure_free_space` stops before a save
that would fill the disk.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

TEMP_MARK = ".tmp-"  # temporary siblings are named `.<name>.tmp-<pid>`; leftovers are safe to delete


class DiskFullError(OSError):
    """Not enough free space for a save; the message names the folder, the space and the fix."""


class LockedError(RuntimeError):
    """Another live process holds the run folder's lock; the message names it."""


def _temp_sibling(path: Path) -> Path:
    return path.with_name(f".{path.name}{TEMP_MARK}{os.getpid()}")


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_text_atomic(path: str | Path, text: str, errors: str = "strict") -> Path:
    """Write `text` (UTF-8, newlines as given) to `path` through a temporary sibling, fsynced, then
    renamed into place; `errors` is the encoder's, e.g. "backslashreplace" for lone surrogates."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_sibling(path)
    try:
        with open(temp, "w", encoding="utf-8", errors=errors, newline="") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)
    return path


def write_json_atomic(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """`data` as JSON (non-JSON values as str), written atomically."""
    return write_text_atomic(path, json.dumps(data, indent=indent, default=str) + "\n")


def _fsync_tree(folder: Path) -> None:
    for file in sorted(p for p in folder.rglob("*") if p.is_file()):
        with open(file, "rb") as handle:
            os.fsync(handle.fileno())
    _fsync_dir(folder)


@contextmanager
def atomic_dir(path: str | Path) -> Iterator[Path]:
    """Yield an empty temporary sibling folder to fill; on success it replaces `path` as a whole.

    On an exception the temporary folder is removed and `path` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = _temp_sibling(path)
    shutil.rmtree(temp, ignore_errors=True)
    temp.mkdir()
    try:
        yield temp
        _fsync_tree(temp)
        replace_dir(temp, path)
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def replace_dir(source: str | Path, target: str | Path) -> None:
    """Rename the finished folder `source` to `target`, moving an older `target` out of the way first."""
    source, target = Path(source), Path(target)
    old = target.with_name(f".{target.name}.old{TEMP_MARK}{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(source, target)
    _fsync_dir(target.parent)
    shutil.rmtree(old, ignore_errors=True)


def copy_tree_atomic(source: str | Path, target: str | Path, ignore: str | None = None) -> Path:
    """Copy the folder `source` (less files named `ignore`) to `target`, which appears only once whole."""
    with atomic_dir(target) as temp:
        patterns = shutil.ignore_patterns(ignore) if ignore else None
        shutil.copytree(source, temp, dirs_exist_ok=True, ignore=patterns)
    return Path(target)


def remove_temporaries(folder: str | Path) -> list[Path]:
    """Delete what interrupted atomic writes left directly in `folder`; returns what was removed."""
    removed = []
    for leftover in Path(folder).glob(f".*{TEMP_MARK}*"):
        if leftover.is_dir():
            shutil.rmtree(leftover, ignore_errors=True)
        else:
            leftover.unlink(missing_ok=True)
        removed.append(leftover)
    return removed


def tree_size(path: str | Path) -> int:
    """Bytes in the files under `path` (0 if it does not exist)."""
    path = Path(path)
    if path.is_file():
        return path.stat().st_size
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else 0


def ensure_free_space(folder: str | Path, needed: int, what: str) -> None:
    """Raise DiskFullError when `folder`'s file system has less than `needed` bytes (plus 5%) free."""
    folder = Path(folder)
    free = shutil.disk_usage(folder if folder.exists() else folder.parent).free
    if free < needed * 1.05:
        raise DiskFullError(
            f"disk full: {what} needs about {needed / 1e6:.1f} MB but {folder} has {free / 1e6:.1f} MB "
            f"free. Fix: free space there (or pass another --out) and rerun the same command"
        )


def _process_start(pid: int) -> str | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if no such process (or a zombie)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()
    return None if fields[0] == "Z" else fields[19]


class RunLock:
    """An exclusive lock on a run folder: `<folder>/.lock` holds the holder's pid, host and start time.

    A lock whose process is gone, or whose pid now belongs to another process (a different start
    time), is stale: it is taken over with a message.
    """

    def __init__(self, folder: str | Path, log: Any = print):
        self.path = Path(folder) / ".lock"
        self.log = log
        self.held = False

    def acquire(self) -> RunLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        mine = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "process_start": _process_start(os.getpid()),
        }
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                self._take_over_if_stale()
                continue
            with os.fdopen(fd, "w") as handle:
                json.dump(mine, handle)
            self.held = True
            return self
        raise LockedError(f"{self.path}: could not take the lock; another process keeps taking it")

    def _take_over_if_stale(self) -> None:
        try:
            text, age = self.path.read_text(), time.time() - self.path.stat().st_mtime
        except OSError:
            return  # released this instant: try again
        try:
            holder = json.loads(text or "{}")
        except ValueError:
            holder = {}  # cut short by a kill while it was being taken
        if not holder and age < 5:
            time.sleep(0.5)  # another run may be writing it this instant
            return
        pid = holder.get("pid")
        alive = isinstance(pid, int) and _process_start(pid) is not None
        same_process = alive and holder.get("process_start") in (None, _process_start(pid))
        if holder.get("host", socket.gethostname()) != socket.gethostname() or same_process:
            raise LockedError(
                f"{self.path.parent}: another sqlft run holds this folder (pid {pid} on "
                f"{holder.get('host')}, since {holder.get('started')}). Fix: wait for it to finish, stop "
                f"it, or pass another --out (delete {self.path} only if that run is surely gone)"
            )
        self.log(f"{self.path}: taking over a stale lock of pid {pid} (since {holder.get('started')})")
        self.path.unlink(missing_ok=True)

    def release(self) -> None:
        if self.held:
            self.path.unlink(missing_ok=True)
            self.held = False

    def __enter__(self) -> RunLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()
