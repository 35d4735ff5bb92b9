"""Ending the ``mprun`` process without the interpreter's teardown, when nothing needs it.

After a run, Python's finalization frees every object one by one (a million
results, every module) and collects cycles: about 0.1 s after a run of a
million tiny tasks, and a tenth of a small run's whole time, spent after the
report is written and the lock released. By then mprun's own files are closed
and its workers gone. What a normal exit would still do for others is done
first: the ``atexit`` handlers (``multiprocessing``'s flushes its queues' feeder
threads and joins children; ``logging``'s flushes its handlers), then stdout
and stderr are flushed. Then ``os._exit``.

It is not taken (the caller returns as usual) unless :func:`allow` was called
for the run: the CLI calls it only when no job code ran in the runner's own
process (a serial or thread mode job, a reducer of its own), since such code may
leave a buffered file that only finalization would flush, or a thread that a
normal exit would wait for. Nor while a thread that is not a daemon is alive,
nor when stdout or stderr cannot be flushed (a normal exit then reports it).
The library API (``runner.run``) never ends the process.
"""

from __future__ import annotations

import atexit
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
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except (OSError, ValueError):  # a closed or broken stream: Python's exit says so
        return code
    os._exit(code)
