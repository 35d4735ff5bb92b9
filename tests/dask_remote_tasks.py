"""Task functions for tests/test_dask_remote.py.

That test copies this file beside each of its configs under a module name of its own
(``remote_...``), so a dask worker started elsewhere can import it only if mprun
uploads it; this file itself is never imported by a worker.
"""

from __future__ import annotations

import os
import time
from typing import Any

import runner

FACTOR = 3  # test_dask_remote edits this line to check that a changed module is reloaded


def scaled(x: int) -> int:
    runner.get_logger().info("scaling", x=x)
    return FACTOR * x


def square(x: int) -> int:
    return x * x


def wait_for(x: int, gate: str, cap: float = 60.0) -> int:
    """Log "waiting", then wait until the file ``gate`` exists (``cap`` seconds at most:
    a task left running on a cluster ends by itself)."""
    runner.get_logger().info("waiting", x=x)
    deadline = time.monotonic() + cap
    while not os.path.exists(gate) and time.monotonic() < deadline:
        time.sleep(0.05)
    return x


def touch_all(x: int, value: Any, arr: Any, lock: Any, sem: Any, event: Any, q: Any) -> int:
    """Use every kind of primitive once, so that each exists in the scheduler."""
    with lock, sem:
        value.value += x
        arr[0] = arr[0] + x
    event.set()
    q.put([x])
    return x
