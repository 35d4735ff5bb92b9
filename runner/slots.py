"""One shared slot per worker process: which task it is running, and since when.

Data flow, three doubles of shared memory per worker, no message per task::

    runner: hand_over(first, now), clear() ─┐                    ┌─> runner: running()
    worker: each task as it begins (timing) ─┼─> [since, task, ─┤   (timeouts; a live display)
    runner: expire(), before SIGTERM ────────┘     expired]     └─> worker: expired()

The worker writes the slot as each task of a chunk begins, but only for chunks
whose job has a ``timeout`` (``runner.work.run_chunk``): the hot loop of a job
without one writes nothing. The runner enforces the timeout of the task the
slot names (``runner.executors.timeouts``) and writes the slot itself at two
moments the worker cannot: when it hands a chunk over (the first task is named,
counted from then, so that a worker stuck before its first task still times
out) and when it has the worker's answer and nothing more is queued for it
(:meth:`Slot.clear`: no task runs). Every one of these writes is ordered with
the others by the pipe between them: the worker reads a chunk after the runner
wrote the hand-over, and answers after its last write.

Times are ``time.monotonic()``: CLOCK_MONOTONIC on Linux, one clock for every
process of the machine, so a worker's start time is comparable with the runner's
now.

Torn reads. The two fields a reader needs, ``since`` and ``task``, are separate
8-byte words; each is stored and loaded whole (aligned), but a reader may see one
from before a write and the other from after it. The writer stores ``since``
first and ``task`` second, and the reader loads ``task`` first and ``since``
second (x86-64 keeps stores in order and loads in order, and each store here is
its own C call of the interpreter, which no compiler reorders across). So the
``since`` a reader gets is never older than the start of the task it names: it
is that task's own, or a later task's if one began between the two loads. A
deadline computed from it is never early, at worst late by one task, which the
next look corrects; no sequence counter, and no third store per task, is needed
for that. The one torn state left is a worker frozen between its two stores (a
``SIGSTOP``) for a whole timeout: the task named then is the one before the one
that was about to begin, and it is the one failed as ``TaskTimeout`` (more than
its timeout had passed since it began), while the next runs again; no result is
counted twice (``runner.executors.timeouts.settle``).

``expired`` is written by the runner just before it sends the worker SIGTERM for
a timeout, and read by the worker once SIGTERM has unwound the task: the signal
orders it. It tells the worker that the runner waits for the results of the
tasks it finished before the one that timed out; a worker stopped for any other
reason says nothing, as before.

Stdlib only: every worker imports this module.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sized
from typing import Any

__all__ = ["IDLE", "Slot"]

# ``task`` when no task of a timed chunk runs (floats hold task numbers exactly
# up to 2**53).
IDLE = -1.0
_SINCE, _TASK, _EXPIRED = 0, 1, 2


class Slot:
    """A worker's slot: a ``RawArray('d', 3)`` made by the runner, passed to the worker
    process at its start (as ``Process`` arguments are), wrapped again on each side."""

    __slots__ = ("_view", "array")

    def __init__(self, array: Any) -> None:
        self.array = array
        # Stores and loads through a memoryview cost a third less than ctypes' own.
        self._view = memoryview(array).cast("B").cast("d")

    @classmethod
    def create(cls, context: Any) -> Slot:
        """A new, idle slot in shared memory of the multiprocessing ``context``."""
        return cls(context.RawArray("d", [0.0, IDLE, 0.0]))

    # -- the worker's side -------------------------------------------------

    def timing(self, run_one: Callable[[Any], Any], first: int,
               done: Sized) -> Callable[[Any], Any]:
        """``run_one`` for a chunk whose tasks start at ``first``, naming each in the
        slot as it begins: task ``first + len(done)`` from now. ``since`` is stored
        before ``task`` (see the module docstring)."""
        view, now = self._view, time.monotonic

        def run_timed(item: Any) -> Any:
            view[_SINCE] = now()
            view[_TASK] = first + len(done)
            return run_one(item)

        return run_timed

    def expired(self) -> bool:
        """Whether the runner stopped this worker for the timeout of the task named."""
        return bool(self._view[_EXPIRED])

    # -- the runner's side (and any reader: a live display) ----------------

    def hand_over(self, first: int, now: float) -> None:
        """A chunk was sent: its first task counts as running from ``now`` until the
        worker names a task itself."""
        view = self._view
        view[_SINCE] = now
        view[_TASK] = first

    def clear(self) -> None:
        """No task runs (the runner has the answer, and nothing more is queued)."""
        self._view[_TASK] = IDLE

    def expire(self) -> None:
        """Tell the worker, before it is sent SIGTERM, that its task timed out."""
        self._view[_EXPIRED] = 1.0

    def running(self) -> tuple[int, float] | None:
        """``(task, since)`` of the task running, ``since`` in ``time.monotonic()``
        seconds; None when none runs. ``task`` is loaded before ``since``."""
        view = self._view
        task = view[_TASK]
        since = view[_SINCE]
        if task < 0:
            return None
        return int(task), since
