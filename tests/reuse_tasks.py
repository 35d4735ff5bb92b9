"""Tasks for tests/test_worker_reuse.py: which worker ran them, and one that dies later."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any


def pid_after(_: Any, seconds: float = 0.05) -> int:
    """This worker's pid, after a pause (so that both workers of a pool take tasks)."""
    time.sleep(seconds)
    return os.getpid()


def pid_then_die(path: str) -> int:
    """Write this worker's pid to ``path`` and return it; the worker exits a moment
    later, once its answer has gone, while it waits for the run's next job."""
    Path(path).write_text(str(os.getpid()))
    threading.Timer(0.2, os._exit, (3,)).start()
    return os.getpid()


def wait_until_gone(path: str, timeout: float = 30.0) -> bool:
    """Wait (in the runner: a serial job) until the process whose pid ``path`` holds has
    exited: gone, or a zombie its parent has yet to reap."""
    pid = int(Path(path).read_text())
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.01)
    return False
