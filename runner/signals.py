"""SIGINT and SIGTERM in the runner: stop starting work, give running tasks a grace period.

The policy (README, "When things go wrong")::

    1st SIGINT/SIGTERM ── Stop.request(): no new task starts; running ones go on
          │               (workers get SIGINT: each ends its chunk after the current item)
          ├── every running task finished ──> the run ends "interrupted"
          ├── the grace period ends (SIGALRM) ──> Interrupted: running tasks are killed
          └── a 2nd SIGINT/SIGTERM ───────────> Interrupted: running tasks are killed

A handler must not take locks or do I/O that can block, because it runs
between two bytecodes of whatever the main thread was doing (in serial mode,
task code). So :class:`Stop` is a flag plus one byte written to a self-pipe,
which wakes an executor waiting in ``multiprocessing.connection.wait``.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from runner import work
from runner.errors import Interrupted

__all__ = ["Stop", "interrupts", "quiet_interrupts"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """A run's stop request: set at most once, by a signal handler or by code.

    Executors read :attr:`requested` before starting work, and may wait on the
    object itself (it has a ``fileno()``): it becomes readable when requested.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._pipe: tuple[int, int] | None = None  # made when first waited on


    @property
    def requested(self) -> bool:
        return self.signum is not None

    def request(self, signum: int) -> None:
        """Stop starting work, and end running chunks after their current item."""
        if self.signum is not None:
            return
        self.signum = signum
        work.stop_chunks()
        if self._pipe is not None:
            with contextlib.suppress(OSError):  # full or closed: it is readable either way
                os.write(self._pipe[1], b"!")

    def fileno(self) -> int:
        if self._pipe is None:
            read, write = os.pipe()
            os.set_blocking(write, False)
            self._pipe = (read, write)
            if self.signum is not None:
                os.write(write, b"!")
        return self._pipe[0]

    def close(self) -> None:
        pipe, self._pipe = self._pipe, None
        for fd in pipe or ():
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        self.close()


@contextmanager
def interrupts(stop: Stop, grace: float,
               on_stop: Callable[[int], None] | None = None) -> Iterator[None]:
    """Within this block, SIGINT/SIGTERM follow the module's policy.

    With ``grace`` 0 the first signal raises :class:`Interrupted` at once.
    ``on_stop(signum)`` runs in the handler of the first signal, so it must only
    do what is safe there (``os.write``, not ``print``).
    Outside the main thread (where Python delivers no signals) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.requested or grace <= 0:
            stop.request(signum)
            raise Interrupted(stop.signum or signum)
        stop.request(signum)
        signal.setitimer(signal.ITIMER_REAL, grace)
        if on_stop is not None:
            on_stop(signum)

    def on_grace_over(_signum: int, _frame: FrameType | None) -> None:
        if stop.signum is not None:  # a stale timer after a clean stop is ignored
            raise Interrupted(stop.signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    previous[signal.SIGALRM] = signal.signal(signal.SIGALRM, on_grace_over)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _note(_signum: int, _frame: FrameType | None) -> None:
    """While cleaning up after an interrupt, a further signal must not cut cleanup short."""


def quiet_interrupts() -> None:
    """After an interrupt: further signals, and the grace timer, are ignored until restored."""
    if threading.current_thread() is threading.main_thread():
        signal.setitimer(signal.ITIMER_REAL, 0)
        for sig in SIGNALS:
            signal.signal(sig, _note)
