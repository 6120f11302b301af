"""Small file-system helpers: writes that are all-or-nothing, and an inter-process write lock."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

from assistant.faults import fault_point


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write `data` to `path` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        fault_point(f"replace.{path.name}")  # the new text is complete, not yet in place
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_write_text(path: Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: Path, data: Any) -> None:
    atomic_write_text(path, json.dumps(data, ensure_ascii=False, indent=1) + "\n")


def atomic_copy(src: Path, dst: Path) -> None:
    """Copy a file so that `dst` appears complete or not at all."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{dst.name}.", suffix=".tmp", dir=dst.parent)
    os.close(fd)
    try:
        shutil.copyfile(src, tmp)
        fault_point(f"replace.{dst.name}")
        os.replace(tmp, dst)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(dst.parent)


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class LockHeld(Exception):
    """Another process holds the lock; `holder` says who, as it wrote itself down."""

    def __init__(self, path: Path, holder: str) -> None:
        super().__init__(holder)
        self.path = path
        self.holder = holder


class FileLock:
    """An exclusive, non-blocking lock on a file, released when the holder exits or dies.

    The locking is `filelock`'s (flock on POSIX); while held, the file's text names the holder,
    written through filelock's `on_acquired` hook, so a refused process can say who it waits for.
    """

    def __init__(self, path: Path, description: str) -> None:
        import filelock  # here, not at the top: it adds ~12 ms to every command's start

        self.path = path
        self.description = description
        self._lock = filelock.FileLock(
            path, blocking=False, thread_local=False, on_acquired=self._write_holder
        )

    def _write_holder(self, fd: int) -> None:
        os.ftruncate(fd, 0)
        os.lseek(fd, 0, os.SEEK_SET)
        os.write(fd, f"pid {os.getpid()} ({self.description})".encode())

    def acquire(self) -> None:
        import filelock

        try:
            self._lock.acquire()
        except filelock.Timeout:
            try:
                holder = self.path.read_text("utf-8", "replace").strip()
            except OSError:
                holder = ""
            raise LockHeld(self.path, holder or "another process") from None

    def release(self) -> None:
        if not self._lock.is_locked:
            return
        try:
            with contextlib.suppress(OSError):  # still held: nobody reads a stale holder after us
                os.truncate(self.path, 0)
        finally:
            self._lock.release()

    def __enter__(self) -> FileLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()
