"""Ending the ``mprun`` process without the interpreter's teardown, when nothing needs it.

After a run, Python's finalization frees every object one by one (a million
results, every module) and collects cycles: about 0.1 s after a run of a
million tiny tasks, and a tenth of a small run's whole time, spent after the
report is written and the lock released. By then mprun's own files are closed
and its workers gone. What a normal exit would still do for others is done
first: the ``atexit`` handlers (``multiprocessing``'s flushes its queues' feeder
threads and joins children; ``logging``'s flushes its handlers;
``weakref.finalize`` callbacks), then every Python file object still open is
flushed (a job module's import runs in the runner too, and may leave one
buffered), then C's stdio buffers (a native library's), then stdout and
stderr. Then ``os._exit``. What is not done: ``__del__`` of objects still alive,
which Python does not promise at exit either.

It is not taken (the caller returns as usual) unless :func:`allow` was called
for the run: the CLI calls it only when no job's code ran in the runner's own
process (a serial or thread mode job, a reducer of its own), since such code may
hold anything a normal exit would finish. Nor while a thread that is not a
daemon is alive, nor when stdout or stderr cannot be flushed (a normal exit then
reports it). The library API (``runner.run``) never ends the process.
"""

from __future__ import annotations

import atexit
import contextlib
import gc
import io
import os
import sys
import threading

__all__ = ["allow", "finish"]

_allowed = False


def allow(allowed: bool) -> None:
    """Whether :func:`finish` may end the process (see the module docstring)."""
    global _allowed
    _allowed = allowed


def finish(code: int) -> int:
    """End the process with ``code`` now, if allowed and safe; else return ``code``."""
    if not _allowed or any(not thread.daemon for thread in threading.enumerate()
                           if thread is not threading.main_thread()):
        return code
    atexit._run_exitfuncs()
    _flush_open_files()
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: Python's exit says so
        return code
    os._exit(code)


def _flush_open_files() -> None:
    """Flush what finalization would: every open Python file object (text wrappers
    before the buffers under them), then C's stdio buffers."""
    found = [obj for obj in gc.get_objects()
             if isinstance(obj, io.TextIOWrapper | io.BufferedWriter | io.BufferedRandom)]
    found.sort(key=lambda obj: not isinstance(obj, io.TextIOWrapper))
    for handle in found:
        with contextlib.suppress(Exception):  # closed, detached, or its disk full: as at exit
            if not handle.closed:
                handle.flush()
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None).fflush(None)
