"""The index's write lock: one holder at a time, and a refused writer learns who holds it.
(A holder in another process, and the lock dying with it, is in test_store.py.)"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import pytest

from assistant.fsutil import FileLock, LockHeld


def test_a_second_lock_is_refused_with_the_holder_named(tmp_path: Path) -> None:
    path = tmp_path / "index" / ".lock"  # the folder is created on the first acquire
    with FileLock(path, "assistant index --rebuild"):
        assert path.read_text() == f"pid {os.getpid()} (assistant index --rebuild)"
        with pytest.raises(LockHeld) as err:
            FileLock(path, "assistant index").acquire()
        assert err.value.holder == f"pid {os.getpid()} (assistant index --rebuild)"
        assert err.value.path == path


def test_release_clears_the_holder_and_frees_the_lock(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    first = FileLock(path, "first")
    first.acquire()
    first.release()
    first.release()  # a second release does nothing
    assert path.read_text() == ""
    with FileLock(path, "second"):
        assert path.read_text() == f"pid {os.getpid()} (second)"


def test_a_stale_holder_left_by_a_dead_writer_is_replaced(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    path.write_text("pid 1 (assistant index) and some longer leftover text")
    with FileLock(path, "assistant index"):
        assert path.read_text() == f"pid {os.getpid()} (assistant index)"


def test_the_lock_can_be_released_by_another_thread(tmp_path: Path) -> None:
    lock = FileLock(tmp_path / ".lock", "assistant index")
    lock.acquire()
    releaser = threading.Thread(target=lock.release)
    releaser.start()
    releaser.join()
    with FileLock(tmp_path / ".lock", "next"):
        pass


def test_a_refusal_without_a_recorded_holder_says_another_process(tmp_path: Path) -> None:
    path = tmp_path / ".lock"
    holder = FileLock(path, "x")
    holder.acquire()
    try:
        path.write_text("")  # as between another process's lock and its record
        with pytest.raises(LockHeld) as err:
            FileLock(path, "y").acquire()
        assert err.value.holder == "another process"
    finally:
        holder.release()
