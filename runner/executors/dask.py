"""``dask``: chunks as tasks on a Dask distributed cluster, with pool mode's failure rules.

Data flow::

    run() ── Chunk ── client.submit(daskworker.run, key per call and attempt) ──> a worker
      ├── "start" event (pid, address) ── setup.started(chunk, pid), the timeout clock
      └── the future's end ── bytes: the Outcome, one object per chunk ──> Outcome
    run() waits on one wake-up pipe the backend writes for both, and on the stop.

At most min(``workers``, the cluster's threads) tasks are out at once, so the
scheduler never queues a task behind another on one worker. Failures are
pool mode's (``runner.executors.pool``):

- a task's exception, SystemExit included, is the task's (``runner.daskworker``);
- a dead worker (``KilledWorker``) fails the task it ran, named by worker, pid
  and how it ended (its nanny's words); a chunk of several items runs again
  item by item; a task that had not begun there runs again elsewhere;
- a task past its ``timeout`` is cancelled and its worker restarted through
  its nanny (a running dask task cannot be stopped otherwise). A job with a
  timeout sends one item per task here: the clock starts at its "start" event;
- ``retries`` are the scheduler's, as in every mode (each attempt its own key).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import math
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from runner import daskshared, daskworker, log
from runner.errors import (
    ArgumentsError,
    ClusterLost,
    Interrupted,
    ResultError,
    TaskTimeout,
    WorkerCrashed,
)
from runner.executors.base import Executor, ExecutorSetup
from runner.executors.daskbackend import DaskBackend
from runner.executors.pool import describe_exit, one_by_one
from runner.work import Chunk, Outcome

__all__ = ["DaskExecutor"]


# A task with a timeout whose "start" event has not come fails this long after its
# timeout, counted from its sending.
START_SLACK = 30.0


@dataclass
class _Task:
    """A chunk out on the cluster."""

    chunk: Chunk
    key: str
    future: Any
    sent: float = 0.0  # monotonic, when it was submitted
    began: float | None = None  # monotonic, from its "start" event
    pid: int = 0
    address: str | None = None


class DaskExecutor(Executor):
    enforces_timeout = True
    pickles_tasks = True
    times_items_in_chunks = False
    owns_shared = True
    backend = DaskBackend

    def __init__(self, setup: ExecutorSetup) -> None:
        super().__init__(setup)
        backend = setup.backend
        assert isinstance(backend, DaskBackend), "dask mode runs with the run's DaskBackend"
        self._backend = backend
        self._client = backend.client
        self._running: dict[str, _Task] = {}
        self._requeued: set[tuple[int, int]] = set()  # (first, attempt) sent again once
        self._cancelled: set[str] = set()  # keys this executor cancelled (a timeout)
        # Workers restarted for a task's timeout: the other tasks they ran are not failed
        # by that restart, they are sent again.
        self._restarting: set[str] = set()
        self._log_lines: dict[str, int] = {}  # key -> log lines its worker sent
        self._keys = itertools.count()
        self._init = backend.task_init()
        self._shared = {name: obj for name, obj in setup.init.shared.items()
                        if isinstance(obj, daskshared._Handle)}
        self._log = log.logger()

    # -- the dispatch loop -------------------------------------------------

    def run(self, chunks: Iterable[Chunk]) -> Iterator[Outcome]:
        backend, stop = self._backend, self.setup.stop
        if backend.lost is not None:  # an earlier job lost the cluster: fail fast
            for lost in chunks:
                yield Outcome.failed(lost, ClusterLost(backend.lost))
            return
        backend.listen()
        limit = min(self.setup.workers, backend.threads())
        pending: deque[Chunk] = deque()
        source = iter(chunks)
        warned = False
        done: list[Outcome] = []  # answers in hand, handed on once new tasks are out
        while True:
            # New tasks first: the workers run them while the runner journals the last
            # answers (a chunk of a million results takes it a while). Not after a
            # failure: it may stop the run (on_error: stop), and then nothing more starts.
            if any(outcome.errors for outcome in done):
                yield from done
                done = []
            while not stop.requested and len(self._running) < limit:
                chunk = pending.popleft() if pending else next(source, None)
                if chunk is None:
                    break
                failed = self._submit(chunk)
                if failed is not None:
                    done.append(failed)
            yield from done
            done = []
            if not self._running:
                if pending and not stop.requested:
                    continue
                return
            due = min((self._deadline(task) for task in self._running.values()),
                      default=math.inf)
            wait([backend.wake_fileno(), stop.forced_fileno() if warned else stop.fileno()],
                 None if due == math.inf else max(0.0, due - time.monotonic()))
            backend.drain_wake()
            stop.check()  # forced: close(cancel=True) cancels what runs
            if stop.requested and not warned:
                warned = True
                self._log.warning("stopping: running dask tasks may finish",
                                  running=len(self._running))
            done.extend(self._messages(pending))
            now = time.monotonic()
            done.extend(self._expire(task) for task in list(self._running.values())
                        if self._deadline(task) <= now)

    def _submit(self, chunk: Chunk) -> Outcome | None:
        """Send ``chunk`` to the cluster; its failed outcome if it cannot be sent."""
        key = (f"mprun-{self._init.run_id}-{chunk.call.job}-{chunk.first}-a{chunk.attempt}"
               f"-{next(self._keys)}")
        shared = self._shared if chunk.call.refs else None
        if self._backend.lost is not None:
            return Outcome.failed(chunk, ClusterLost(self._backend.lost))
        try:
            future = self._client.submit(daskworker.run, self._init, chunk, shared, key,
                                         key=key, pure=False)
        except Exception as exc:
            return Outcome.failed(chunk, ArgumentsError(
                f"the task's arguments cannot be sent to a dask worker: "
                f"{type(exc).__name__}: {exc}"))
        self._running[key] = _Task(chunk, key, future, time.monotonic())
        future.add_done_callback(lambda _f, key=key: self._backend.notify(("done", key)))
        return None

    @staticmethod
    def _deadline(task: _Task) -> float:
        """When ``task`` times out: ``timeout`` after its start; if its "start" event never
        came (lost with a worker that dropped its messages), after its sending, with
        ``START_SLACK`` more for a wait in the scheduler's queue."""
        timeout = task.chunk.call.timeout
        if timeout is None:
            return math.inf
        return task.began + timeout if task.began is not None \
            else task.sent + timeout + START_SLACK

    def _messages(self, pending: deque[Chunk]) -> Iterator[Outcome]:
        messages = self._backend.messages
        while not messages.empty():
            kind, key, *rest = messages.get()
            task = self._running.get(key)
            if task is None:  # an earlier job's, or one cancelled since
                continue
            if kind == "start":
                yield from self._started(task, rest[0], rest[1], pending)
            else:
                del self._running[key]
                yield from self._finished(task, pending)

    def _started(self, task: _Task, pid: int, address: str,
                 pending: deque[Chunk]) -> Iterator[Outcome]:
        if task.began is not None:
            # Begun a second time: the worker that ran it died and the scheduler (a
            # cluster that allows failures) reran it. mprun's rule is that it fails.
            del self._running[task.key]
            with contextlib.suppress(Exception):
                self._client.cancel([task.future])
            yield from self._bury(task, task.pid, task.address, pending)
            return
        task.began, task.pid, task.address = time.monotonic(), pid, address
        self.setup.started(task.chunk, pid)

    def _finished(self, task: _Task, pending: deque[Chunk]) -> Iterator[Outcome]:
        future = task.future
        if future.status == "cancelled" and task.key in self._cancelled:
            self._cancelled.discard(task.key)  # its timeout: failed already
            return
        status = future.status
        try:
            if status == "finished":
                data = future.result()
            elif status != "cancelled":
                exc = future.exception()
        except (Exception, asyncio.CancelledError):  # the scheduler went while it answered
            status = "cancelled"
        if status == "finished":
            outcome = self._unpickle(task, data, pending)
            if outcome is not None:
                yield outcome
            return
        if status != "cancelled":
            yield from self._failed(task, exc, pending)
            return
        # Not by mprun: the scheduler went away (or someone cancelled it there). No
        # more tasks go to it: the rest of the run fails fast, with this reason.
        lost = self._backend.lose(f"the dask scheduler at {self._backend.address} "
                                  "dropped the task before it answered (it went away, "
                                  "or its tasks were cancelled there)")
        self._log.error("dask task lost", job=task.chunk.call.job, reason=lost,
                        tasks=[task.chunk.first, task.chunk.first + len(task.chunk.items) - 1])
        yield Outcome.failed(task.chunk, ClusterLost(lost), pid=task.pid, worker=task.address)

    def _failed(self, task: _Task, exc: BaseException | None,
                pending: deque[Chunk]) -> Iterator[Outcome]:
        """``task``'s future holds ``exc``: its worker died, or dask could not run it."""
        from distributed import KilledWorker

        if isinstance(exc, KilledWorker):
            last = exc.last_worker
            yield from self._bury(task, getattr(last, "pid", task.pid) or task.pid,
                                  getattr(last, "address", task.address), pending)
            return
        yield Outcome.failed(task.chunk, ArgumentsError(
            f"dask could not run the task: {type(exc).__name__}: {exc}"), pid=task.pid,
            worker=task.address)

    def _unpickle(self, task: _Task, data: bytes, pending: deque[Chunk]) -> Outcome | None:
        self._log_lines[task.key] = int.from_bytes(data[:4], "little")
        try:
            outcome: Outcome = ForkingPickler.loads(memoryview(data)[4:])
        except (Interrupted, KeyboardInterrupt):
            raise
        except BaseException as exc:
            from runner.worker import unsendable

            chunk = task.chunk
            if len(chunk.items) > 1:
                self._log.warning("a result could not be unpickled; rerunning its chunk item "
                                  "by item", job=chunk.call.job, worker_pid=task.pid)
                pending.extendleft(reversed(one_by_one(chunk)))
                return None
            return Outcome.failed(chunk, ResultError(
                f"the result could not be unpickled in the runner: {unsendable(exc)}"),
                pid=task.pid, worker=task.address)
        return outcome

    def _bury(self, task: _Task, pid: int, address: str | None,
              pending: deque[Chunk]) -> Iterator[Outcome]:
        """The worker running (or holding) ``task`` died."""
        chunk = task.chunk
        mark = (chunk.first, chunk.attempt)
        if self.setup.stop.requested:
            pending.appendleft(chunk)  # ended with the run: not run, not failed
            return
        if address is not None and address in self._restarting:
            self._log.warning("a task's worker was restarted for another task's timeout; "
                              "running it again", job=chunk.call.job, worker=address,
                              tasks=[chunk.first, chunk.first + len(chunk.items) - 1])
            pending.appendleft(chunk)
            return
        if task.began is None and mark not in self._requeued:
            # It had not begun: it waited on a worker that another task killed.
            self._requeued.add(mark)
            pending.appendleft(chunk)
            return
        known, code = self._backend.exit_code(pid, address)
        cause = describe_exit(code) if known else (
            "it ended and its nanny gave no exit status: exit code 0 (os._exit(0) or "
            "sys.exit() in task code?), or its machine or network went away")
        fields = {"job": chunk.call.job, "worker": address, "worker_pid": pid,
                  "exitcode": code, "cause": cause,
                  "tasks": [chunk.first, chunk.first + len(chunk.items) - 1]}
        if len(chunk.items) > 1:
            self._log.warning("dask worker died; rerunning its chunk item by item", **fields)
            pending.extendleft(reversed(one_by_one(chunk)))
            return
        self._log.error("dask worker died", **fields)
        yield Outcome.failed(chunk, WorkerCrashed(pid, code, cause, f" (dask worker {address})"),
                             pid=pid, worker=address)

    def _expire(self, task: _Task) -> Outcome:
        """``task`` ran past its timeout: cancel it, restart its worker, fail it."""
        del self._running[task.key]
        self._cancelled.add(task.key)
        with contextlib.suppress(Exception):
            self._client.cancel([task.future], force=True)
        if task.address is not None:
            self._restarting.add(task.address)
            self._backend.restart(task.address)
        timeout = task.chunk.call.timeout or 0.0
        self._log.error("task timed out", job=task.chunk.call.job, task=task.chunk.first,
                        timeout=timeout, worker=task.address, worker_pid=task.pid)
        return Outcome.failed(task.chunk, TaskTimeout(
            timeout, task.pid, "restarted through its nanny", f" (dask worker {task.address})"),
            seconds=time.monotonic() - (task.began or time.monotonic()), pid=task.pid,
            worker=task.address)

    # -- shutdown ----------------------------------------------------------

    def close(self, *, cancel: bool = False) -> None:
        """Cancel what still runs (a running task on a cluster mprun did not start runs
        on until it returns; its result is dropped); wait for the log lines of the tasks
        that finished."""
        running, self._running = list(self._running.values()), {}
        if running:
            with contextlib.suppress(Exception):
                self._client.cancel([task.future for task in running], force=True)
            if cancel:  # stopped, not finished: an embedded worker's task ends now
                self._backend.end_tasks([task.pid for task in running if task.began])
        missing = self._backend.wait_for_logs(self._log_lines)
        if missing:
            self._log.warning("some dask workers' log lines did not arrive", lines=missing)
        self._log_lines.clear()

