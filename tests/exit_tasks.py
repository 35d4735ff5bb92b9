"""Job code that leaves work for the interpreter's exit (tests/test_quickexit.py)."""

from __future__ import annotations

import atexit
import ctypes
import multiprocessing
import os
import sys
import threading

_MARK = os.environ.get("MPRUN_TEST_EXIT_MARK")


def _mark() -> None:
    assert _MARK is not None
    with open(_MARK, "a") as handle:
        handle.write("atexit ran\n")


# Registered as the runner imports this module to check the job's function; not in a
# spawned worker (it has a parent process) nor in the fork server (started with -c).
_IN_RUNNER = multiprocessing.parent_process() is None and sys.argv[0] != "-c"
if _MARK and _IN_RUNNER:
    atexit.register(_mark)

_TRACE = os.environ.get("MPRUN_TEST_IMPORT_TRACE")
if _TRACE and _IN_RUNNER:
    # Import-time code that leaves a Python file and C's stdout buffered, never flushed.
    _trace = open(_TRACE, "a", buffering=1 << 20)  # noqa: SIM115 -- left open on purpose
    _trace.write("imported in the runner\n")
    ctypes.CDLL(None).printf(b"printed by C at import\n")

_kept: list[object] = []


def square(x: int) -> int:
    return x * x


def leave_buffered(path: str) -> str:
    """Write to a file and never close or flush it: only finalization flushes it."""
    handle = open(path, "a", buffering=1 << 20)  # noqa: SIM115 -- left open on purpose
    handle.write("written by a task\n")
    _kept.append(handle)
    return path


def leave_thread(path: str) -> str:
    """Start a non-daemon thread (a task's thread in thread mode is a daemon's, and its
    threads would be daemons too) that writes once the task returned."""
    gate = threading.Event()

    def late() -> None:
        gate.wait(0.3)
        with open(path, "a") as handle:
            handle.write("written by a thread\n")

    threading.Thread(target=late, daemon=False).start()
    return path
