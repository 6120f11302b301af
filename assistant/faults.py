"""Named crash points, for testing that an interrupted write leaves a usable index.

Writers call `fault_point("name")` at each step whose interruption matters. Nothing happens
unless the environment says `ASSISTANT_FAULT=name` (or `name:raise`, the same, which raises
`FaultInjected`) or `ASSISTANT_FAULT=name:kill`, which ends the process at once with status 137,
as SIGKILL would: no `finally`, no `atexit`, no flushing. `name@N` fires on the Nth time the
point is reached instead of the first (a file that is written twice in one command).
"""

from __future__ import annotations

import os
from collections import Counter

ENV = "ASSISTANT_FAULT"
KILL_STATUS = 137

ACTIONS = ("raise", "kill")
_reached: Counter[str] = Counter()


class FaultInjected(RuntimeError):
    """Raised at a crash point named by ASSISTANT_FAULT (without `:kill`)."""


def fault_point(name: str) -> None:
    """Crash here when ASSISTANT_FAULT names this point; otherwise do nothing."""
    wanted = os.environ.get(ENV)
    if not wanted:
        return
    point, _, action = wanted.rpartition(":")
    if action not in ACTIONS:
        point, action = wanted, "raise"
    point, _, nth = point.partition("@")
    if point != name:
        return
    _reached[name] += 1
    if _reached[name] != (int(nth) if nth.isdigit() else 1):
        return
    if action == "kill":
        os._exit(KILL_STATUS)
    raise FaultInjected(f"fault injected at {name}")
