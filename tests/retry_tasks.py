"""Task functions for tests/test_retry_on.py: tasks that fail in a chosen way and count
their calls in files, so that a test sees how often each task ran in any mode."""

from __future__ import annotations

import builtins
import os
import signal
import sys
import time
from typing import Any


class ServiceError(Exception):
    """A task's own base class, for ``retry_on: [ServiceError]``."""


def _count(calls: str, x: Any) -> int:
    """Leave a file in the folder ``calls`` for this call of task ``x``; return how many
    calls of ``x`` there were before this one."""
    before = sum(1 for name in os.listdir(calls) if name.split("-")[0] == str(x))
    with open(os.path.join(calls, f"{x}-{os.getpid()}-{time.monotonic_ns()}"), "w"):
        pass
    return before


def calls_of(calls: str) -> dict[str, int]:
    """How many times each task was called, by its ``x`` (as text)."""
    counts: dict[str, int] = {}
    for name in os.listdir(calls):
        x = name.split("-")[0]
        counts[x] = counts.get(x, 0) + 1
    return counts


def _die(how: str) -> None:
    sys.stdout.flush()
    if how == "exit":
        os._exit(3)
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(10)  # pragma: no cover - the signal arrives first


def fail_as(x: Any, how: str, calls: str, times: int = 1000) -> Any:
    """Fail the first ``times`` calls of task ``x``, then return ``x``.

    ``how`` is a builtin exception's name (``ConnectionError``, ``ValueError``),
    ``local`` (a class made in this call, a subclass of :class:`ServiceError` that the
    runner's process never sees), ``exit`` (``os._exit(3)``), ``kill`` (SIGKILL),
    ``sleep`` (30 s, for a timeout) or ``ok`` (never fails).
    """
    if _count(calls, x) >= times or how == "ok":
        return x
    if how in ("exit", "kill"):
        _die(how)
    if how == "sleep":
        time.sleep(30)
        return x
    if how == "local":
        local = type("Throttled", (ServiceError,), {"__module__": "tests.retry_tasks.made"})
        raise local(f"task {x} throttled")
    raise getattr(builtins, how)(f"task {x} failed")


def slow(x: Any, seconds: float = 30) -> Any:
    """Sleep ``seconds``, then return ``x``: a task still running when the run stops."""
    time.sleep(seconds)
    return x
