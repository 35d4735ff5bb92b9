"""What travels between the runner and its workers, and the loop that runs it.

Data flow::

    scheduler ── Chunk(call, first, items) ──> executor ──> run_chunk() in a
              worker process, a thread, or the runner itself (serial)
    scheduler <── Outcome(first, values, errors, seconds, pid) ──┘

A chunk is a run of consecutive tasks of one job. Functions travel by name
(``Call.function``) and are imported once per process; shared primitives
travel as ``Ref`` placeholders. ``run_chunk`` is the hot path for a million
tiny map items: one Python-level call per item, no per-item allocation other
than the result and no bytecode of its own per item (``list.extend(map(...))``),
and a ``try`` that costs nothing until a task raises.

Stdlib only: every worker imports this module.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
import time
import traceback
from collections import deque
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from runner import imports
from runner.errors import Interrupted
from runner.shared import resolve
from runner.slots import Slot

__all__ = [
    "Call",
    "Chunk",
    "Outcome",
    "TaskError",
    "clear_stop",
    "current_task",
    "run_chunk",
    "stop_chunks",
]


@dataclass(frozen=True, slots=True)
class Call:
    """How each item of a job becomes a call; the same for every chunk of the job."""

    job: str
    function: str
    kind: str = "map"  # "map": items are first arguments; "tasks": items are (args, kwargs)
    args: tuple[Any, ...] = ()
    kwargs: dict[str, Any] = field(default_factory=dict)
    unpack: bool = False
    refs: bool = False  # whether args, kwargs or items hold Refs to resolve
    timeout: float | None = None  # seconds a task may run (enforced by process executors)

    def __reduce__(self) -> tuple[Any, ...]:
        # Pickled once per chunk; a plain tuple skips dataclasses' per-field getstate.
        return (Call, (self.job, self.function, self.kind, self.args, self.kwargs,
                       self.unpack, self.refs, self.timeout))


@dataclass(slots=True)
class Chunk:
    """Tasks ``first .. first + len(items) - 1`` of one job."""

    call: Call
    first: int
    items: Sequence[Any]  # a list, or a range for {range: ...} maps
    attempt: int = 1

    def __reduce__(self) -> tuple[Any, ...]:
        return (Chunk, (self.call, self.first, self.items, self.attempt))


@dataclass(slots=True)
class TaskError:
    """A failed task: what was raised, or how its process died.

    ``kinds`` names the exception's class and its bases (``module.qualname``,
    ``object`` left out), taken where it was raised, so that the runner can match
    a job's ``retry_on`` without the exception (or its class) travelling back.
    """

    task: int
    type: str
    message: str
    traceback: str = ""
    attempts: int = 1
    kinds: tuple[str, ...] = ()

    def __reduce__(self) -> tuple[Any, ...]:
        # A plain tuple; ``kinds`` is one shared tuple per class (see _kinds), so an
        # outcome of many failures of one class pickles its names once.
        return (TaskError, (self.task, self.type, self.message, self.traceback,
                            self.attempts, self.kinds))

    @classmethod
    def of(cls, task: int, exc: BaseException, *, attempts: int = 1,
           traceback: str = "") -> TaskError:
        """The record of ``exc``: a task's own exception, or one of ``runner.errors``'
        ``TaskFailed`` classes for a failure the runner found."""
        return cls(task, type(exc).__qualname__, str(exc), traceback, attempts,
                   _kinds(type(exc)))

    def is_a(self, names: Collection[str]) -> bool:
        """Whether the failure is of a class named in ``names``, or of a subclass of one.

        A plain name (``OSError``) matches a class of that ``__name__``; a dotted one
        (``requests.exceptions.HTTPError``) the end of a class's ``module.qualname``,
        whole parts only. A record without ``kinds`` is matched by its ``type``.
        """
        for kind in self.kinds or (self.type,):
            for name in names:
                if kind == name or kind.endswith("." + name):
                    return True
        return False

    def as_dict(self) -> dict[str, Any]:
        return {"task": self.task, "type": self.type, "message": self.message,
                "attempts": self.attempts}


def _kinds(cls: type[BaseException]) -> tuple[str, ...]:
    """``cls`` and its bases as ``module.qualname`` (a builtin's module is ``builtins``).

    One tuple per class, built on the class's first failure and then shared.
    """
    try:
        kinds = _KINDS.get(cls)
    except TypeError:  # a metaclass that makes its classes unhashable: not kept
        kinds = None
    if kinds is None:
        kinds = tuple(f"{base.__module__}.{base.__qualname__}" for base in cls.__mro__
                      if base is not object)
        if len(_KINDS) < _KINDS_KEPT:
            with contextlib.suppress(TypeError):
                _KINDS[cls] = kinds
    return kinds


# At most this many classes' names are kept per process: a task that makes a new
# exception class per call must not grow a worker without end.
_KINDS_KEPT = 256
_KINDS: dict[type[BaseException], tuple[str, ...]] = {}


@dataclass(slots=True)
class Outcome:
    """The answer to one chunk: a value for each item (``None`` where it failed)."""

    first: int
    values: list[Any]
    errors: list[TaskError]
    seconds: float
    pid: int
    worker: str | None = None  # where the process runs, if not here (a dask worker's address)

    def __reduce__(self) -> tuple[Any, ...]:
        if self.worker is None:
            return (Outcome, (self.first, self.values, self.errors, self.seconds, self.pid))
        return (Outcome, (self.first, self.values, self.errors, self.seconds, self.pid,
                          self.worker))

    def head(self, count: int) -> Outcome:
        """The outcome of its first ``count`` items only (all it has, if fewer)."""
        count = max(0, min(count, len(self.values)))
        end = self.first + count
        return Outcome(self.first, self.values[:count],
                       [error for error in self.errors if error.task < end], self.seconds,
                       self.pid, self.worker)

    @classmethod
    def failed(cls, chunk: Chunk, exc: BaseException, *, seconds: float = 0.0,
               pid: int | None = None, worker: str | None = None) -> Outcome:
        """Every task of ``chunk`` failed with ``exc`` (a worker that died, a timeout...)."""
        count = len(chunk.items)
        errors = [TaskError.of(chunk.first + i, exc, attempts=chunk.attempt)
                  for i in range(count)]
        return cls(chunk.first, [None] * count, errors, seconds,
                   os.getpid() if pid is None else pid, worker)


class _TaskContext(threading.local):
    job: str | None = None
    first: int = 0
    done: list[Any] | None = None


_context = _TaskContext()
# The item iterator of the chunk each thread is running, so that stop_chunks()
# can end them from a signal handler without a per-item check in the hot loop.
_running: dict[int, Iterator[Any]] = {}
# Set by stop_chunks(): a chunk that starts afterwards ends at once (see clear_stop).
_stopping = False


def stop_chunks() -> None:
    """End every running chunk after its current item; safe in a signal handler.

    Each chunk's remaining items are consumed from its iterator, so its loop
    ends at the next item and returns a short :class:`Outcome`: only the items
    that ran have values. A chunk that starts before :func:`clear_stop` runs
    no item, which covers a chunk that was between two steps when the signal
    came. A runner clears it per run; a worker after each chunk.
    """
    global _stopping
    _stopping = True
    for items in list(_running.values()):
        _exhaust(items)


def clear_stop() -> None:
    global _stopping
    _stopping = False


def _exhaust(items: Iterator[Any]) -> None:
    try:  # list and range iterators jump to their end at once, however long
        items.__setstate__(sys.maxsize)  # type: ignore[attr-defined]
    except (AttributeError, TypeError, ValueError, OverflowError):
        deque(items, maxlen=0)


def current_task() -> tuple[str | None, int | None]:
    """The job and task index running in this thread, for ``runner.get_logger()``."""
    done = _context.done
    if done is None:
        return _context.job, None
    return _context.job, _context.first + len(done)


def _caller(call: Call, shared: dict[str, Any]) -> Callable[[Any], Any]:
    """One callable per chunk that turns an item into a call, specialised per case."""
    fn = imports.resolve(call.function)
    args, kwargs = call.args, call.kwargs
    if call.refs:
        args, kwargs = resolve(args, shared), resolve(kwargs, shared)

    def prepare(item: Any) -> Any:
        return resolve(item, shared) if call.refs else item

    if call.kind == "tasks":
        def run_task(item: Any) -> Any:
            task_args, task_kwargs = prepare(item)
            return fn(*task_args, **task_kwargs)
        return run_task
    if call.unpack:
        def run_unpacked(item: Any) -> Any:
            item = prepare(item)
            if isinstance(item, dict):
                return fn(*args, **{**kwargs, **item})
            if isinstance(item, list | tuple):
                return fn(*item, *args, **kwargs)
            return fn(item, *args, **kwargs)
        return run_unpacked
    if args or kwargs or call.refs:
        def run_item(item: Any) -> Any:
            return fn(prepare(item), *args, **kwargs)
        return run_item
    return fn  # the common case: fn(item), nothing to add


def run_chunk(chunk: Chunk, shared: dict[str, Any],
              on_error: Callable[[Call, int, BaseException], None] | None = None,
              slot: Slot | None = None) -> Outcome:
    """Run the items of ``chunk`` in order; a raising item fails alone.

    The outcome has a value for every item, unless :func:`stop_chunks` ended
    the chunk early: then only for those before the stop. A ``slot`` (given for
    a job with a timeout) names each item as it begins (``Slot.timing``).
    """
    started = time.perf_counter()
    values: list[Any] = []
    errors: list[TaskError] = []
    call = chunk.call
    context = _context
    context.job, context.first, context.done = call.job, chunk.first, values
    try:
        try:
            run_one = _caller(call, shared)
        except Interrupted:  # the run's forced stop, not the tasks' fault
            raise
        except BaseException as exc:
            for index in range(len(chunk.items)):
                errors.append(_task_error(chunk, chunk.first + index, exc))
                values.append(None)
            return Outcome(chunk.first, values, errors, time.perf_counter() - started, os.getpid())
        if slot is not None:
            run_one = slot.timing(run_one, chunk.first, values)
        items = iter(chunk.items)
        _running[threading.get_ident()] = items
        if _stopping:
            _exhaust(items)
        while True:
            try:
                # The loop runs in C: list.extend appends each value as it comes, and
                # keeps those before an item that raises; the item iterator then goes
                # on from the next one.
                values.extend(map(run_one, items))
                break
            except Interrupted:
                raise
            except BaseException as exc:
                task = chunk.first + len(values)
                errors.append(_task_error(chunk, task, exc))
                if on_error is not None:
                    on_error(call, task, exc)
                values.append(None)
    finally:
        context.job, context.done = None, None
        _running.pop(threading.get_ident(), None)
    return Outcome(chunk.first, values, errors, time.perf_counter() - started, os.getpid())


def _task_error(chunk: Chunk, task: int, exc: BaseException) -> TaskError:
    return TaskError.of(task, exc, attempts=chunk.attempt,
                        traceback="".join(traceback.format_exception(exc)))
