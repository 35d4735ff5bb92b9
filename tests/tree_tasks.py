"""Tasks that start processes of their own, for tests/test_process_groups.py.

Each writes a file per process it starts (``child-PID``) and one when its ``finally``
runs (``finally-PID``, its worker's pid), so that a test can find every process by pid
and tell whether the task unwound."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import time
from pathlib import Path


def _mark(marks: str, name: str) -> None:
    (Path(marks) / name).write_text("")


def _sleep_forever() -> None:
    time.sleep(300)


def start_then_hang(how: str, marks: str, cleanup: float = 0.0) -> None:
    """Start a process (``popen``: ``sleep 300``; ``deaf``: a shell that ignores
    SIGTERM; ``mp``: a multiprocessing.Process; ``session``: ``sleep 300`` in a new
    session), then sleep until stopped; the ``finally`` takes ``cleanup`` seconds,
    then leaves a mark."""
    pid = _start(how)
    _mark(marks, f"child-{pid}")
    try:
        _mark(marks, f"running-{os.getpid()}")
        _sleep_forever()
    finally:
        time.sleep(cleanup)
        _mark(marks, f"finally-{os.getpid()}")


def start_and_return(how: str, marks: str) -> int:
    """Start a process and return at once, leaving it running."""
    pid = _start(how)
    _mark(marks, f"child-{pid}")
    return pid


def _start(how: str) -> int:
    if how == "mp":
        process = multiprocessing.get_context("fork").Process(target=_sleep_forever)
        process.start()
        return int(process.pid or 0)
    if how == "deaf":
        command = ["sh", "-c", "trap '' TERM; while :; do sleep 1; done"]
        return subprocess.Popen(command).pid
    if how == "session":  # the way out of the run, with its own output
        return subprocess.Popen(["sleep", "300"], start_new_session=True,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL).pid
    return subprocess.Popen(["sleep", "300"]).pid


def crash_leaving_deaf_child(item: int, marks: str) -> int:
    """Item 0 starts a process that ignores SIGTERM, then its worker dies; the others
    sleep ``item`` seconds, so that the job is still running meanwhile."""
    if item == 0:
        _mark(marks, f"child-{_start('deaf')}")
        os._exit(3)
    _mark(marks, f"running-{os.getpid()}")
    time.sleep(item)
    return item

