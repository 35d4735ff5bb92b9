"""SIGINT, SIGTERM and SIGHUP in the runner: stop starting work, give running tasks a
grace period, then stop them.

The policy (README, "When things go wrong")::

    1st signal ── Stop.request(): no new task starts; running ones go on
          │       (workers are told: each ends its chunk after the current item)
          ├── every running task finished ──> Stop.settle(): the run ends "interrupted"
          ├── the grace period ends ─────────> Stop.force(): running tasks are stopped
          └── a 2nd signal ──────────────────> Stop.force(): running tasks are stopped

A handler runs between two bytecodes of whatever the main thread was doing,
and a second signal runs the handler again *inside* the first one. So a
handler only assigns plain attributes and writes one byte to a self-pipe: no
lock (``threading.Event.set`` takes one, and a handler re-entered inside it
blocks on it for good), no ``print``, no logging. Everything else happens in
the main loop: an executor waits on :meth:`Stop.fileno` (requested) or
:meth:`Stop.forced_fileno` (forced) beside its workers' pipes, and calls
:meth:`Stop.check`, which raises :class:`Interrupted` once the stop is forced.

The one exception is code of the job's own that runs in the main thread
(serial tasks, a job's ``reduce``), which no loop can watch: inside
:meth:`Stop.in_process` the handler itself raises :class:`Interrupted`, as
Python's own SIGINT handler raises ``KeyboardInterrupt``. At most one
:class:`Interrupted` is raised per run, so that cleanup which stops and reaps
workers is never cut short; once the run has settled, signals are noted only.

The grace period is a thread started with the run, which waits on a pipe (not
a lock) for the first signal, then for the settling or the end of the grace;
``SIGALRM`` stays free for task code and for test harnesses.
"""

from __future__ import annotations

import contextlib
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType

from runner.errors import Interrupted

__all__ = ["SIGNALS", "Stop", "interrupts", "outside", "outside_runs", "run_begins"]

SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)


# A grace period longer than this is waited out without a timeout.
_FOREVER = 1e7


def _pipe() -> tuple[int, int]:
    read, write = os.pipe()
    os.set_blocking(write, False)
    return read, write


def _poke(fd: int) -> None:
    with contextlib.suppress(OSError):  # full (readable already) or closed (run over)
        os.write(fd, b"!")


class Stop:
    """A run's stop: requested at most once, forced at most once, by a signal handler,
    by the grace timer or by code. Every method a handler calls only assigns and pokes.

    Executors read :attr:`requested` before starting work, and may wait on the
    object itself (it has a ``fileno()``): it becomes readable when requested;
    :meth:`forced_fileno` becomes readable when forced.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self.forced = False  # a second signal came, or the grace period ended
        self.settled = False  # nothing runs any more: later signals are noted only
        self.raised = False  # Interrupted was raised (once per run)
        self.in_process = 0  # depth of job code running in the main thread
        self._requested = _pipe()
        self._forced = _pipe()
        self._timer = _pipe()  # wakes the grace thread: requested, or settled

    @property
    def requested(self) -> bool:
        return self.signum is not None

    def request(self, signum: int) -> None:
        """Stop starting work, and end running chunks after their current item."""
        if self.signum is not None:
            return
        self.signum = signum
        from runner import work  # imported by the run already: a lookup, no import

        work.stop_chunks()
        _poke(self._requested[1])
        _poke(self._timer[1])

    def force(self) -> None:
        """Stop running work now (a second signal, or the end of the grace period)."""
        if self.forced or self.settled:
            return
        self.forced = True
        _poke(self._forced[1])

    def settle(self) -> None:
        """Nothing runs any more: the grace period is over; later signals are noted only."""
        self.settled = True
        _poke(self._timer[1])

    def check(self) -> None:
        """Raise :class:`Interrupted` if the stop is forced and none was raised yet."""
        if self.forced and not self.raised and not self.settled:
            self.raised = True
            raise Interrupted(self.signum or signal.SIGINT)

    @contextmanager
    def job_code(self) -> Iterator[None]:
        """Job code runs in the main thread within this block: a forced stop raises
        :class:`Interrupted` inside it (in the handler, as nothing else can)."""
        self.in_process += 1
        try:
            self.check()
            yield
        finally:
            self.in_process -= 1

    def fileno(self) -> int:
        return self._requested[0]

    def forced_fileno(self) -> int:
        return self._forced[0]

    def close(self) -> None:
        pipes = [getattr(self, name, (-1, -1)) for name in ("_requested", "_forced", "_timer")]
        self._requested = self._forced = self._timer = (-1, -1)
        for fd in (fd for pipe in pipes for fd in pipe if fd >= 0):
            with contextlib.suppress(OSError):
                os.close(fd)

    def __del__(self) -> None:
        self.close()


def _grace_timer(stop: Stop, grace: float, wake: int) -> None:
    """Once the first signal came, wait out ``grace`` seconds unless the run settles
    first, then force the stop; a SIGINT to the main thread makes its handler raise
    there if job code runs in it.

    Started with the run, before any signal: starting a thread inside a handler could
    deadlock on threading's own locks if the signal came while the main thread held them.
    """
    main = threading.main_thread().ident
    select.select([wake], [], [])
    deadline = None if grace > _FOREVER else time.monotonic() + grace  # select() refuses years
    while not stop.settled:
        os.read(wake, 64)  # what woke it: request's byte, and settle's if it came since
        if stop.settled:  # settle() sets the flag before its byte: none is missed
            return
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
        if not select.select([wake], [], [], timeout)[0]:
            stop.force()
            if main is not None:
                signal.pthread_kill(main, signal.SIGINT)
            return


@contextmanager
def interrupts(stop: Stop, grace: float,
               on_stop: Callable[[int], None] | None = None) -> Iterator[None]:
    """Within this block, SIGINT/SIGTERM/SIGHUP follow the module's policy.

    With ``grace`` 0 the first signal forces the stop at once. ``on_stop(signum)``
    runs in the handler of the first signal, so it must only do what is safe there
    (``os.write``, not ``print``). ``stop.settle()`` (the scheduler calls it once
    nothing runs any more) ends the grace period early: from then on signals are
    noted only. Outside the main thread (where Python delivers no signals) this
    does nothing.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        first = not stop.requested
        stop.request(signum)
        if stop.settled:  # the run is over: the command still learns of it
            if outside.installed:
                outside.note(signum)
            return
        if not first or grace <= 0:
            stop.force()
        elif on_stop is not None:
            on_stop(signum)
        if stop.in_process:
            stop.check()

    _clear_chunk_stop()
    timer = None
    if grace > 0:
        timer = threading.Thread(target=_grace_timer, args=(stop, grace, stop._timer[0]),
                                 daemon=True, name="mprun-grace")
        timer.start()
    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    early = _take_early_signal()
    if early is not None:
        on_signal(early, None)
    try:
        yield
    finally:
        stop.settle()
        if timer is not None:
            timer.join()  # a SIGINT it sent is handled (and noted only) before handlers go
        outside.phase = "finished"
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _clear_chunk_stop()


def _clear_chunk_stop() -> None:
    from runner import work  # a run's: the commands that run nothing never import it

    work.clear_stop()


class _Outside:
    """The command's signals outside a run's :func:`interrupts` block.

    ``phase``: "idle" (nothing of a run exists yet: a signal ends the command),
    "run" (a run has begun, its signal policy is about to take over: a signal is
    noted and taken as the run's first), "finished" (a run is over, its report being
    written or printed: noted only).
    """

    def __init__(self) -> None:
        self.signum: int | None = None  # the first signal that came outside a run's block
        self.phase = "idle"
        self.raised = False
        self.installed = False  # outside_runs() is in place (a command, not a library call)

    def note(self, signum: int) -> None:
        if self.signum is None:
            self.signum = signum


outside = _Outside()


def run_begins() -> None:
    """A run has begun (its folder is about to exist): from here a signal is noted and
    becomes the run's first, so that the run still ends with its summary."""
    outside.phase = "run"


def _take_early_signal() -> int | None:
    """A signal noted since :func:`run_begins`, which the run's policy takes over."""
    signum = outside.signum if outside.phase == "run" else None
    outside.signum = None
    return signum


@contextmanager
def outside_runs(*, keep: bool = False) -> Iterator[_Outside]:
    """For a command (the CLI): outside any run, the first SIGINT/SIGTERM/SIGHUP raises
    :class:`Interrupted` (nothing runs yet: the command just ends). Within a run it
    becomes the run's first signal (:func:`run_begins`), and once a run is over (its
    report being written and printed) signals are only noted, so that they never turn
    a finished run's exit into a death by signal. The caller reads ``.signum`` to know
    that one came, starts nothing more, and sets ``.phase = "idle"`` before the next run.

    With ``keep`` (a command that ends its process next) the signals are ignored
    afterwards: a burst still arriving as the process exits must not kill it.
    """

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        outside.note(signum)
        if outside.phase == "idle" and not outside.raised:
            outside.raised = True
            raise Interrupted(signum)

    if threading.current_thread() is not threading.main_thread():
        yield outside
        return
    previous = {sig: signal.signal(sig, on_signal) for sig in SIGNALS}
    outside.installed = True
    try:
        yield outside
    finally:
        outside.phase = "finished"
        for sig, handler in previous.items():
            # Python's finalization puts SIG_DFL back in place of any handler of ours,
            # but leaves SIG_IGN: the exit code is settled by now.
            signal.signal(sig, signal.SIG_IGN if keep else handler)
        if not keep:
            outside.__init__()  # type: ignore[misc]
