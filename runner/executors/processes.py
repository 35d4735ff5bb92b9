"""The process modes' run-wide part: the fork server, and the run's idle pool workers.

Data flow::

    run ── ProcessBackend.open() ── the fork server (forkserver), warmed early
     ├─ job 1 ── PoolExecutor: starts Workers ── close(): the idle, healthy ones parked here
     ├─ job 2 ── PoolExecutor: takes parked Workers first, starts only the rest
     └─ run's end ── ProcessBackend.close(): parked Workers told to exit, their groups ended

Why park workers: starting one (a fork from the fork server, or a fresh
interpreter under spawn), its set-up (logging, the jobs' imports) and its exit
cost more than a small job's tasks. A run of several pool jobs pays them once,
as one ``multiprocessing.Pool`` reused across ``map`` calls does; every worker
of a run gets the same start-up (``RunScope.init``: the run's shared
primitives, paths, logging), so any pool job can use any of them.

A worker is parked only when it holds no chunk, is alive and got through its
start-up. Process mode (a process per task) never parks or takes one, and each
mode of a ``compare`` job starts its own, so that its timing includes them.
What a task started and left running ends with its worker: at the run's end
when the worker was parked.
"""

from __future__ import annotations

import contextlib
import multiprocessing.queues
import threading
from collections import deque
from collections.abc import Sequence
from multiprocessing.connection import Connection
from typing import Any, ClassVar

from runner import log
from runner.context import warm_forkserver
from runner.executors import ending
from runner.executors.base import Backend
from runner.slots import Slot
from runner.work import Chunk

__all__ = ["EXIT_GRACE_SECONDS", "ProcessBackend", "Worker", "dismiss"]

# How long workers told to exit have to do so before they are terminated.
EXIT_GRACE_SECONDS = 10.0


class Worker:
    """One worker process, its pipe, its slot and the chunks it holds, oldest first."""

    def __init__(self, process: Any, conn: Connection, started: Any, slot: Slot) -> None:
        self.process = process
        self.conn = conn
        self.started = started  # a shared byte the worker sets once it is ready for chunks
        self.slot = slot  # the item of a timed chunk it runs, and since when
        self.held: deque[Chunk] = deque()
        self.sent = 0
        self.began = 0.0  # monotonic time its oldest held chunk began running

    @property
    def pid(self) -> int:
        return int(self.process.pid)

    @property
    def ready(self) -> bool:
        """Whether it got through start-up: a death before that is no task's fault."""
        return bool(self.started.value)

    @property
    def idle(self) -> bool:
        """Whether another job could take it: no chunk held, alive, past start-up."""
        return not self.held and self.process.exitcode is None and self.ready


class ProcessBackend(Backend):
    """Worker processes' run-wide part: under forkserver, the fork server, warmed with
    the jobs' modules as soon as the config is checked and awaited before the first
    worker starts; the run's stop byte (``halt``); and the idle workers jobs leave.

    The fork server itself is multiprocessing's, one per runner process: a later run
    in the same process reuses it, so closing the backend does not stop it.
    """

    # The thread starting the fork server (one per process, as the fork server is).
    _warming: ClassVar[threading.Thread | None] = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._parked: list[Worker] = []
        self._halt: Any = None

    @classmethod
    def prepare(cls, context: Any, functions: Sequence[str]) -> None:
        modules = sorted({function.partition(":")[0] for function in functions})
        ProcessBackend._warming = warm_forkserver(context, modules)

    def open(self) -> None:
        if ProcessBackend._warming is None:  # not prepared: start it now
            self.prepare(self.scope.context, self.scope.init.functions)

    def ready(self) -> None:
        """Wait until workers can be started."""
        warming, ProcessBackend._warming = ProcessBackend._warming, None
        if warming is not None:
            warming.join()

    @property
    def halt(self) -> Any:
        """A shared byte the pool sets on a stop: its workers then run no chunk they are
        sent. One per run, so that a parked worker sees the stop of the job it joins."""
        if self._halt is None:
            self._halt = self.scope.context.RawValue("b", 0)
        return self._halt

    def park(self, workers: list[Worker]) -> None:
        """Keep idle ``workers`` for the run's next pool job."""
        self._parked.extend(workers)

    def take(self) -> Worker | None:
        """A parked worker still alive, if any (one that died meanwhile is reaped)."""
        while self._parked:
            w = self._parked.pop(0)
            if w.idle:
                return w
            dismiss([w], [])
        return None

    def close(self) -> None:
        self.ready()
        parked, self._parked = self._parked, []
        dismiss(parked, [], queues(self.scope.init.shared))


def queues(shared: dict[str, Any]) -> list[Any]:
    """The run's shared queues: a worker that put on one exits only once it is read."""
    return [obj for obj in shared.values() if isinstance(obj, multiprocessing.queues.Queue)]


def dismiss(workers: list[Worker], others: list[Any],
            shared_queues: Sequence[Any] = ()) -> None:
    """Tell ``workers`` to exit and wait for them (and the processes ``others``) up to
    the exit grace, then stop what is left, and what their tasks left running."""
    processes = [w.process for w in workers] + others
    for w in workers:
        with contextlib.suppress(OSError):
            w.conn.send(None)
    ending.join_all(processes, EXIT_GRACE_SECONDS, list(shared_queues))
    for p in processes:
        if p.is_alive():
            log.logger().warning("worker did not exit; stopping it", worker_pid=p.pid)
    ending.stop_all(processes)
    for w in workers:
        with contextlib.suppress(OSError):
            w.conn.close()
