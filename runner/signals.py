"""SIGINT and SIGTERM in the runner: stop starting work, give running tasks a grace period.

The policy (README, "When things go wrong")::

    1st SIGINT/SIGTERM ── Stop.request(): no new task starts; running ones go on
          │               (workers are told: each ends its chunk after the current item)
          ├── every running task finished ──> Stop.settle(): the run ends "interrupted"
          ├── the grace period ends ─────────> Interrupted: running tasks are killed
          └── a 2nd SIGINT/SIGTERM ──────────> Interrupted: running tasks are killed

At most one :class:`Interrupted` is raised per run: once raised (or once the
running tasks have settled), further signals are only noted, so cleanup that
kills and reaps workers is never cut short.

A handler must not take locks or do I/O that can block, because it runs
between two bytecodes of whatever the main thread was doing (in serial mode,
task code). So :class:`Stop` is a flag plus one byte written to a self-pipe,
which wakes an executor waiting in ``multiprocessing.connection.wait``. The
grace period is a timer thread that sends the main thread SIGINT, which the
handler takes as the second signal; ``SIGALRM`` stays free for task code and
for test harnesses (pytest-timeout).
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

__all__ = ["Stop", "interrupts"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


class Stop:
    """A run's stop request: set at most once, by a signal handler or by code.

    Executors read :attr:`requested` before starting work, and may wait on the
    object itself (it has a ``fileno()``): it becomes readable when requested.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._pipe: tuple[int, int] | None = None  # made when first waited on
        self._armed = threading.Event()  # set by the first signal: the grace period runs
        self._settled = threading.Event()  # set once nothing runs: no more raising

    @property
    def settled(self) -> bool:
        """Whether nothing runs any more, so that a signal is only noted."""
        return self._settled.is_set()

    def settle(self) -> None:
        """Nothing runs any more: the grace period is over; later signals are noted only."""
        self._settled.set()
        self._armed.set()  # lets the grace thread end

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


def _grace_timer(stop: Stop, grace: float) -> None:
    """Once the first signal came, wait out ``grace`` seconds, then send the main thread
    SIGINT, which its handler takes as the second signal.

    Started with the run, before any signal: starting a thread inside a handler could
    deadlock on threading's own locks if the signal came while the main thread held them.
    """
    main = threading.main_thread().ident
    stop._armed.wait()
    if not stop._settled.wait(min(grace, threading.TIMEOUT_MAX)) and main is not None:
        signal.pthread_kill(main, signal.SIGINT)


@contextmanager
def interrupts(stop: Stop, grace: float,
               on_stop: Callable[[int], None] | None = None) -> Iterator[None]:
    """Within this block, SIGINT/SIGTERM follow the module's policy.

    With ``grace`` 0 the first signal raises :class:`Interrupted` at once.
    ``on_stop(signum)`` runs in the handler of the first signal, so it must only
    do what is safe there (``os.write``, not ``print``). ``stop.settle()`` (the
    scheduler calls it once nothing runs any more) ends the grace period early:
    from then on signals are noted only. Outside the main thread (where Python
    delivers no signals) this does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        if stop.settled:
            stop.request(signum)
            return
        if stop.requested or grace <= 0:
            stop.request(signum)
            stop.settle()
            raise Interrupted(stop.signum or signum)
        stop.request(signum)
        stop._armed.set()
        if on_stop is not None:
            on_stop(signum)

    work.clear_stop()
    timer = None
    if grace > 0:
        timer = threading.Thread(target=_grace_timer, args=(stop, grace), daemon=True,
                                 name="mprun-grace")
        timer.start()
    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    try:
        yield
    finally:
        stop.settle()
        if timer is not None:
            timer.join()  # a SIGINT it sent is handled (and ignored) before handlers go
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        work.clear_stop()
