"""Who computes an answer now, who waits for a turn, and who hears that the assistant is busy.

Gradio's queue lets more requests in than may wait (see `ui.app.launch`), so that this class
decides, at once and cheaply, and the chat can say "busy" in place instead of failing. The
queue alone cannot do this: a queued event waits with no time bound, `max_size` counts the
waiting events of every route together and refuses with a client error before the callback
runs, and `POST /gradio_api/run/<route>` skips the queue altogether.
"""

from __future__ import annotations

import asyncio
import os
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

BUSY = "The assistant is busy answering other questions right now. Please ask again in a moment."
# Test hook: while the file this names exists, admitted work waits before it starts (and the
# file's `.held` sibling says so), so that tests can fill every slot without racing the clock.
HOLD_ENV = "ASSISTANT_WEB_HOLD"


def _hold_if_asked() -> None:
    path = os.environ.get(HOLD_ENV)
    if not path or not os.path.exists(path):
        return
    with open(f"{path}.held", "a", encoding="utf-8") as marker:
        marker.write(f"{threading.get_ident()}\n")
    while os.path.exists(path):
        time.sleep(0.02)


class Admission:
    """At most `workers` answers are computed at once; up to `waiting` more questions wait up
    to `wait_s` seconds for a turn; beyond that the asker is told the assistant is busy,
    instead of a request failing or hanging."""

    def __init__(self, workers: int, waiting: int, wait_s: float) -> None:
        self._slots = threading.BoundedSemaphore(workers)
        self._lock = threading.Lock()
        self._waiting = 0
        self.waiting_limit = waiting
        self.wait_s = wait_s

    def _queue(self) -> bool:
        """Take a waiting place; False when every one is taken."""
        with self._lock:
            if self._waiting >= self.waiting_limit:
                return False
            self._waiting += 1
            return True

    def _leave_queue(self) -> None:
        with self._lock:
            self._waiting -= 1

    @asynccontextmanager
    async def waited_slot(self) -> AsyncIterator[bool]:
        """`slot` for an async route: it waits for a turn on the event loop, holding no
        thread, so that questions waiting in numbers cannot take the threads the web app's
        pages and the answers themselves are served from (the caller computes its answer in
        a thread once admitted)."""
        acquired = self._slots.acquire(blocking=False)
        if not acquired:
            if not self._queue():
                yield False
                return
            try:
                # Polled, from 20 ms up to 200 ms between tries: a semaphore shared with the
                # web app's threads has no awaitable acquire. Not first come, first served.
                deadline = time.monotonic() + self.wait_s
                pause = 0.02
                while not (acquired := self._slots.acquire(blocking=False)):
                    if time.monotonic() >= deadline:
                        break
                    await asyncio.sleep(pause)
                    pause = min(pause * 1.5, 0.2)
            finally:
                self._leave_queue()
            if not acquired:
                yield False
                return
        try:
            await asyncio.to_thread(_hold_if_asked)
            # The caller's answer runs in a thread (run_in_threadpool), which a cancelled
            # request does not stop: the slot is held until it ends, as it should be.
            yield True
        finally:
            self._slots.release()

    @contextmanager
    def slot(self) -> Iterator[bool]:
        """Yields True when the caller may compute an answer, False when it should say busy."""
        acquired = self._slots.acquire(blocking=False)
        if not acquired:
            if not self._queue():
                yield False
                return
            try:
                acquired = self._slots.acquire(timeout=self.wait_s)
            finally:
                self._leave_queue()
            if not acquired:
                yield False
                return
        try:
            _hold_if_asked()
            yield True
        finally:
            self._slots.release()
