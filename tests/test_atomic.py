"""sqlft.atomic: writes that a failure leaves whole or untouched, the run lock, the disk-space check."""

import json
import os
import socket

import pytest

from sqlft.atomic import (
    DiskFullError,
    LockedError,
    RunLock,
    atomic_dir,
    ensure_free_space,
    write_json_atomic,
    write_text_atomic,
)


def test_a_failed_folder_write_leaves_the_old_folder_and_no_temporary(tmp_path):
    target = tmp_path / "adapter"
    with atomic_dir(target) as temp:
        (temp / "weights").write_text("old")
    with pytest.raises(RuntimeError), atomic_dir(target) as temp:
        (temp / "weights").write_text("half")
        raise RuntimeError("killed")
    assert (target / "weights").read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["adapter"]


def test_text_and_json_replace_whole(tmp_path):
    write_text_atomic(tmp_path / "a.txt", "one\r\ntwo\n")
    assert (tmp_path / "a.txt").read_bytes() == b"one\r\ntwo\n"  # newlines as given
    write_json_atomic(tmp_path / "a.json", {"x": 1})
    assert json.loads((tmp_path / "a.json").read_text()) == {"x": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "a.txt"]


def test_the_lock_refuses_a_live_holder_and_takes_over_a_dead_one(tmp_path):
    messages = []
    with RunLock(tmp_path):
        with pytest.raises(LockedError, match=rf"pid {os.getpid()} on {socket.gethostname()}"):
            RunLock(tmp_path).acquire()
    assert not (tmp_path / ".lock").exists()
    dead = {"pid": 2**22 + 7, "host": socket.gethostname(), "started": "yesterday"}
    (tmp_path / ".lock").write_text(json.dumps(dead))
    RunLock(tmp_path, log=messages.append).acquire().release()
    assert "taking over a stale lock of pid 4194311" in messages[0]
    # the pid is alive but is another process now (another start time)
    reused = {"pid": os.getpid(), "host": socket.gethostname(), "process_start": "1"}
    (tmp_path / ".lock").write_text(json.dumps(reused))
    RunLock(tmp_path, log=messages.append).acquire().release()
    assert len(messages) == 2


def test_too_little_space_names_the_folder_and_what_is_free(tmp_path):
    with pytest.raises(DiskFullError, match=rf"checkpoint-4 needs about .* MB but {tmp_path} has .* MB free"):
        ensure_free_space(tmp_path, 10**18, "checkpoint-4")
    ensure_free_space(tmp_path, 1, "a byte")
