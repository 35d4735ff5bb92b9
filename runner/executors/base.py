"""The executor interface every mode implements, and the run-wide backends they borrow.

An executor takes the chunks of one job, runs at most ``workers`` of them at
once, says when each one starts (``ExecutorSetup.started``) and yields each
chunk's :class:`~runner.work.Outcome` as it finishes (in any order). It never
raises for a task's failure: failures are in the outcome. Everything else
(ordering, journaling, reduce, compare, retries) is the scheduler's, written
once for every mode.

A mode is one class: what the rest of the runner needs to know about a mode
(does it run in the runner's process, how many workers can it use, can it
enforce a timeout, must arguments be pickled, what must be opened for the
run) is a class attribute here, never an ``if mode == ...`` elsewhere::

    config checked ── Backends.prepare(executor classes): may start early (the fork server)
    run ── Backends.open(executor classes) ── one Backend per kind, for the whole run
     └─ job ── executor_cls(setup with that backend) ── run(chunks) ── close()

A :class:`Backend` is what a mode needs for the whole run (the fork server,
a cluster client): opened once before the first job, borrowed by every job
and compare mode, and closed at the run's end, also when it is interrupted.
"""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, ClassVar

from runner.signals import Stop
from runner.work import Chunk, Outcome
from runner.worker import WorkerInit

__all__ = ["Backend", "Backends", "Executor", "ExecutorSetup", "RunScope"]


@dataclass
class RunScope:
    """What one run gives every backend and executor."""

    context: Any  # a multiprocessing context (fork, forkserver or spawn)
    init: WorkerInit  # shared primitives, paths and logging for each worker
    # Set on the first SIGINT/SIGTERM: start nothing more, let running chunks end.
    stop: Stop = field(default_factory=Stop)


class Backend:
    """What a mode needs for the whole run; one instance per run, opened before its
    first job and closed after its last.

    The base opens nothing: modes that run in the runner's process need no backend.
    """

    def __init__(self, scope: RunScope) -> None:
        self.scope = scope

    @classmethod
    def prepare(cls, context: Any, functions: Sequence[str]) -> None:
        """Start, in the background, what can start before the run is sure to happen (the
        config valid, the run lock taken): only what is harmless if it does not, such as
        a process-wide fork server. ``functions`` are the jobs' "module:qualname"s."""

    def open(self) -> None:
        """Start what the run's jobs will borrow (may return before it is ready)."""

    def close(self) -> None:
        """Release what :meth:`open` started; called once, also after an interrupt."""


def _ignore_start(_chunk: Chunk, _pid: int) -> None:
    pass


@dataclass
class ExecutorSetup:
    """What every executor is built from: its share of the run, for one job."""

    workers: int
    scope: RunScope
    backend: Backend | None = None  # the run's instance of the executor's backend class
    # Called in the runner's main thread when a chunk begins to run, with the pid running it.
    started: Callable[[Chunk, int], None] = _ignore_start
    # Start its own workers, not take the run's idle ones (a compare job's mode: timed).
    fresh: bool = False

    @property
    def context(self) -> Any:
        return self.scope.context

    @property
    def init(self) -> WorkerInit:
        return self.scope.init

    @property
    def stop(self) -> Stop:
        return self.scope.stop


class Executor(ABC):
    """Runs chunks of one job; see the module docstring."""

    #: tasks run in the runner's own process (its main thread or its threads): nothing is
    #: pickled, shared primitives are used in place, and a running task cannot be stopped
    in_runner_process: ClassVar[bool] = False
    #: at most this many tasks at once, whatever a job's ``workers`` says (None: no limit)
    max_workers: ClassVar[int | None] = None
    #: whether it stops a task that runs past its job's ``timeout``
    enforces_timeout: ClassVar[bool] = False
    #: whether map items go out in chunks (False: one task per chunk, even with a chunksize)
    chunks_map_items: ClassVar[bool] = True
    #: whether task arguments and results travel pickled (to another process or machine)
    pickles_tasks: ClassVar[bool] = False
    #: what this mode opens once per run, shared by every job that uses it
    backend: ClassVar[type[Backend] | None] = None

    def __init__(self, setup: ExecutorSetup) -> None:
        self.setup = setup

    @classmethod
    def workers_for(cls, requested: int) -> int:
        """How many tasks this mode runs at once when a job asks for ``requested``."""
        return requested if cls.max_workers is None else min(requested, cls.max_workers)

    @abstractmethod
    def run(self, chunks: Iterable[Chunk]) -> Iterator[Outcome]:
        """Run ``chunks``; call ``setup.started`` as each begins; yield each outcome as it
        finishes.

        Once ``setup.stop`` is requested, start no chunk; yield the outcomes of
        running ones (short ones, if they were ended after their current item)
        and return.
        """

    def close(self, *, cancel: bool = False) -> None:  # noqa: B027 -- optional hook
        """Release workers. With ``cancel``, stop running work instead of waiting for it."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(cancel=exc is not None)


class Backends:
    """The backends of one run, one per backend class its modes name."""

    def __init__(self, scope: RunScope) -> None:
        self.scope = scope
        self._open: dict[type[Backend], Backend] = {}

    @staticmethod
    def prepare(executor_classes: Iterable[type[Executor]], context: Any,
                functions: Sequence[str]) -> None:
        """Let the backends of ``executor_classes`` start early (:meth:`Backend.prepare`)."""
        for backend in {cls.backend for cls in executor_classes if cls.backend is not None}:
            backend.prepare(context, functions)

    def open(self, executor_classes: Iterable[type[Executor]]) -> None:
        """Open, once each, the backends ``executor_classes`` need."""
        for cls in executor_classes:
            if cls.backend is not None and cls.backend not in self._open:
                backend = cls.backend(self.scope)
                self._open[cls.backend] = backend
                backend.open()

    def setup(self, cls: type[Executor], workers: int,
              started: Callable[[Chunk, int], None] = _ignore_start, *,
              fresh: bool = False) -> ExecutorSetup:
        """An executor's setup, lending it the run's instance of its backend."""
        if cls.backend is not None and cls.backend not in self._open:
            self.open([cls])
        backend = self._open.get(cls.backend) if cls.backend is not None else None
        return ExecutorSetup(cls.workers_for(workers), self.scope, backend, started, fresh)

    def close(self) -> None:
        """Close every open backend, the last opened first; each is closed even if another
        fails to."""
        with contextlib.ExitStack() as stack:
            for backend in self._open.values():
                stack.callback(backend.close)
            self._open.clear()

    def __enter__(self) -> Backends:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()
