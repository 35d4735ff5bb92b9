"""Timeouts per task inside a chunk: the runner's side of :mod:`runner.slots`.

Data flow for a busy worker whose job has a timeout::

    worker's slot (task, since) ── running_task() ── since + timeout ──> the pool's wait()
    past it: slot.expire(), SIGTERM to the worker's group
      └─ worker: the task unwinds; its last word, an Outcome of the tasks done before it
    settle(chunk, task, last word):
      those tasks' results │ TaskTimeout for the task named │ the rest of the chunk, again

A chunk keeps its size whatever the timeout: the slot, written as each task
begins, says which task runs and since when, so the timeout is the task's own.
What the worker finished before the task that timed out comes back in its last
word; a worker that says nothing (it ignored SIGTERM and was SIGKILLed) took
those results with it, so those tasks run again, like the tasks after the one
that timed out, as a chunk of the same attempt. The runner's word on which task
timed out is final: that task fails, even if it finished as the signal came
(its worker's answer then crossed the signal), and nothing the worker says of it
or of later tasks is taken, so one timeout is one ``TaskTimeout``, as it was
when chunks of a job with a timeout held one task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from multiprocessing.reduction import ForkingPickler

from runner.errors import Interrupted
from runner.slots import Slot
from runner.work import Chunk, Outcome

__all__ = ["Settled", "deadline", "last_word", "running_task", "settle"]


def running_task(chunk: Chunk, slot: Slot, handed: float) -> tuple[int, float]:
    """Which task of ``chunk`` (the oldest a worker holds) runs, and since when: the
    slot's, if it names one of the chunk's tasks; else the first, from ``handed``."""
    running = slot.running()
    if running is not None and chunk.first <= running[0] < chunk.first + len(chunk.items):
        return running
    return chunk.first, handed


def deadline(chunk: Chunk, slot: Slot, handed: float) -> float:
    """When the running task of ``chunk`` times out (infinity: its job has no timeout)."""
    timeout = chunk.call.timeout
    return math.inf if timeout is None else running_task(chunk, slot, handed)[1] + timeout


def last_word(data: bytes | None, chunk: Chunk) -> Outcome | None:
    """The outcome a timed-out worker sent of the tasks of ``chunk`` it finished, if it
    is one (None: nothing came, or nothing to trust: another chunk's, or unreadable)."""
    if data is None:
        return None
    try:
        outcome = ForkingPickler.loads(data)
    except (Interrupted, KeyboardInterrupt):
        raise
    except BaseException:  # a result that cannot be unpickled here: those tasks run again
        return None
    if not isinstance(outcome, Outcome) or outcome.first != chunk.first \
            or len(outcome.values) > len(chunk.items):
        return None
    return outcome


@dataclass
class Settled:
    """What becomes of a chunk whose task timed out."""

    outcomes: list[Outcome]  # the tasks done before it (if told), and the one that timed out
    again: list[Chunk]  # to run again, in order
    lost: range  # tasks before it whose results died with the worker (they run again)


def settle(chunk: Chunk, task: int, reported: Outcome | None, failure: BaseException, *,
           seconds: float, pid: int) -> Settled:
    """Settle ``chunk`` after its ``task`` timed out, given what its worker ``reported``
    of the tasks it finished: those before ``task`` keep their results, ``task`` fails
    with ``failure``, every other task runs again."""
    offset = task - chunk.first
    told = None if reported is None else reported.head(offset)
    done = 0 if told is None else len(told.values)
    outcomes = [told] if told is not None and done else []
    (timed_out,) = _part(chunk, offset, offset + 1)
    outcomes.append(Outcome.failed(timed_out, failure, seconds=seconds, pid=pid))
    again = _part(chunk, done, offset) + _part(chunk, offset + 1, len(chunk.items))
    return Settled(outcomes, again, range(chunk.first + done, task))


def _part(chunk: Chunk, start: int, stop: int) -> list[Chunk]:
    """The tasks at ``start .. stop - 1`` of ``chunk``, as one chunk of the same attempt
    (none if the range is empty)."""
    if start >= stop:
        return []
    return [Chunk(chunk.call, chunk.first + start, chunk.items[start:stop], chunk.attempt)]
