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

from runner.shared import build
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
    config: Any = None  # the run's Config (a backend's settings: its ``dask:``)
    jobs: dict[str, Any] = field(default_factory=dict)  # the jobs the run selected


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
        """Start what the run's jobs will borrow (may return before it is ready). Called
        before the run's folder exists: a ConfigError here (a cluster that cannot be
        used) is exit 2 with nothing run and nothing written."""

    def build_shared(self, specs: dict[str, Any]) -> dict[str, Any]:
        """The shared primitives of ``specs`` (``runner.primitives`` records) for the
        jobs of a mode whose executor ``owns_shared``: the base builds multiprocessing's."""
        return build(specs, self.scope.context)

    def describe(self) -> dict[str, Any]:
        """What the run's summary says of this backend, at the top level (dask mode's
        ``"dask"`` entry); nothing by default."""
        return {}

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
    #: whether its workers are processes of the run's multiprocessing context (so the
    #: start method matters to it)
    uses_start_method: ClassVar[bool] = False
    #: whether task arguments and results travel pickled (to another process or machine)
    pickles_tasks: ClassVar[bool] = False
    #: what this mode opens once per run, shared by every job that uses it
    backend: ClassVar[type[Backend] | None] = None
    #: whether its backend builds the shared primitives its jobs use (they live where its
    #: tasks run: a dask scheduler), not the run's multiprocessing context
    owns_shared: ClassVar[bool] = False
    #: whether a job's timeout is enforced per item inside a chunk (False: a job with a
    #: timeout sends one item per task)
    times_items_in_chunks: ClassVar[bool] = True

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

    def build_shared(self, specs: dict[str, Any], users: dict[str, set[type[Executor]]]
                     ) -> dict[str, Any]:
        """The run's shared primitives: each one used by a mode that ``owns_shared`` built
        by that mode's backend, the others from the run's multiprocessing context.
        ``users`` maps a primitive's name to the executor classes of the jobs using it."""
        owners: dict[type[Backend], dict[str, Any]] = {}
        local = {}
        for name, spec in specs.items():
            owner = next((cls.backend for cls in users.get(name, ())
                          if cls.owns_shared and cls.backend is not None), None)
            if owner is None:
                local[name] = spec
            else:
                owners.setdefault(owner, {})[name] = spec
        built = build(local, self.scope.context)
        for owner, owned in owners.items():
            if owner not in self._open:
                self.open([cls for names in users.values() for cls in names
                           if cls.backend is owner])
            built.update(self._open[owner].build_shared(owned))
        return {name: built[name] for name in specs}

    def describe(self) -> dict[str, Any]:
        """What the open backends add to the run's summary."""
        described: dict[str, Any] = {}
        for backend in self._open.values():
            described.update(backend.describe())
        return described

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
