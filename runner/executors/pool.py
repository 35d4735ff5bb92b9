"""``pool``: a pool of worker processes, each fed through its own pipe.

Data flow::

                      ┌── pipe ──> worker 1: run_chunk() ──┐
    run() ── Chunk ───┼── pipe ──> worker 2: run_chunk() ──┼── Outcome ──> run()
                      └── ...                              ┘
    run() waits on every pipe and every worker's sentinel at once.

Unlike ``multiprocessing.Pool`` (which hangs when a worker dies, bpo-22393)
and ``concurrent.futures`` (which breaks the whole pool), the runner knows
which chunks each worker holds: a dead worker fails the task it was running
only, with its exit code or signal named, and the job goes on with a new
worker. The chunks it had not begun go to other workers; the chunk it was
running, if it held several items, is run again item by item, because which
item killed the worker is unknown (so the other items of that chunk run twice).

A job's ``timeout`` is per item, also inside a chunk: each worker has a shared
slot (``runner.slots``) that names the item it runs and since when, and the
runner waits for the earliest item's deadline (``runner.executors.timeouts``).

Shared primitives reach workers as ``Process`` arguments at start-up, which
multiprocessing allows (inheritance), never with the tasks.

The run-wide part is ``runner.executors.processes.ProcessBackend``: under
forkserver it starts the fork server as soon as the config is checked, with the
jobs' modules preloaded, while the runner is still setting up; and it keeps the
workers a job leaves idle for the run's next pool job.

Why not ``multiprocessing.Pool`` or loky: neither says which task a dead
worker was running, nor lets the rest of the job go on (see above), nor
forwards a graceful stop to the running chunk; those are mprun's crash and
signal semantics, so the pool is written here and tested against the crash
table of ``tests/test_executors.py``.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import time
from collections import deque
from collections.abc import Iterable, Iterator
from multiprocessing.connection import wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from runner import groups, log, worker
from runner.errors import (
    ArgumentsError,
    Interrupted,
    ResultError,
    TaskTimeout,
    WorkerCrashed,
    WorkerStartFailed,
)
from runner.executors import ending, timeouts
from runner.executors.base import Executor, ExecutorSetup
from runner.executors.processes import ProcessBackend, Worker, dismiss, queues
from runner.slots import Slot
from runner.work import Chunk, Outcome

__all__ = ["PoolExecutor", "ProcessBackend", "describe_exit", "one_by_one"]

# A second chunk is sent to a busy worker only when it fits in the pipe's
# buffer (64 KiB on Linux) beside the first, so that sending never blocks the
# runner; it saves a round trip per chunk when chunks are small and many.
PREFETCH_MAX_BYTES = 16 * 1024
# ...and only while chunks take less than this on average (then the round trip
# is what costs; for longer chunks a queued chunk could wait behind a slow one
# while another worker sits idle), and never for tasks given shared primitives.
PREFETCH_BELOW_SECONDS = 0.005
# After SIGTERM, how long a worker and its process group have before SIGKILL.
KILL_GRACE_SECONDS = ending.KILL_GRACE_SECONDS

_LIKELY_CAUSE = {
    signal.SIGKILL: "killed by SIGKILL: out of memory? (the kernel's OOM killer sends it)",
    signal.SIGSEGV: "SIGSEGV: a crash in native code",
    signal.SIGBUS: "SIGBUS: a crash in native code",
    signal.SIGABRT: "SIGABRT: native code called abort()",
    signal.SIGTERM: "SIGTERM: terminated from outside",
    signal.SIGFPE: "SIGFPE: an arithmetic fault in native code",
}


def describe_exit(exitcode: int | None) -> str:
    """Why a worker process ended, in words a user can act on."""
    if exitcode is None:
        return "the worker's pipe closed while it was still running"
    if exitcode < 0:
        try:
            sig = signal.Signals(-exitcode)
        except ValueError:
            return f"killed by signal {-exitcode}"
        return _LIKELY_CAUSE.get(sig, f"killed by {sig.name}")
    return f"the worker exited with code {exitcode} (os._exit() or sys.exit() in task code?)"


class PoolExecutor(Executor):
    enforces_timeout = True
    pickles_tasks = True
    uses_start_method = True
    backend = ProcessBackend
    #: chunks a worker runs before it exits (None: until the job ends)
    chunks_per_worker: int | None = None

    def __init__(self, setup: ExecutorSetup) -> None:
        super().__init__(setup)
        self._workers: list[Worker] = []
        self._retired: list[Any] = []  # processes done with their chunks, not yet joined
        self._chunk_seconds: float | None = None  # moving average of the chunks' run time
        self._halt: Any = None  # the stop byte, when the run has no ProcessBackend
        self._worker_limit = setup.workers  # lowered if the system refuses more processes
        self._groups = groups.Groups()  # groups of ended workers that may have members left
        self._log = log.logger()

    # -- the dispatch loop -------------------------------------------------

    def run(self, chunks: Iterable[Chunk]) -> Iterator[Outcome]:
        pending: deque[Chunk] = deque()
        source = iter(chunks)

        def next_chunk() -> Chunk | None:
            return pending.popleft() if pending else next(source, None)

        stop = self.setup.stop
        forwarded = False  # whether workers were told of the stop
        while True:
            if not stop.requested:
                yield from self._dispatch(next_chunk, pending)
            busy = [w for w in self._workers if w.held]
            if not busy:
                if pending and not stop.requested:
                    continue
                return
            by_handle: dict[Any, Worker | None] = {}
            for w in busy:
                by_handle[w.conn] = w
                by_handle[w.process.sentinel] = w
            by_handle[stop.forced_fileno() if forwarded else stop.fileno()] = None
            deadline = min(min((_deadline(w) for w in busy), default=math.inf),
                           self._groups.next_due())  # an ended group's SIGKILL is due
            ready = wait(list(by_handle), None if deadline == math.inf
                         else max(0.0, deadline - time.monotonic()))
            self._groups.sweep()
            stop.check()  # forced: close(cancel=True) stops the workers
            if stop.requested and not forwarded:
                forwarded = True
                self._forward_stop()
            for w in busy:
                if w in self._workers and w.held and time.monotonic() >= _deadline(w) \
                        and w.conn not in ready:
                    yield from self._expire(w, pending)
            for handle in ready:
                answered = by_handle[handle]
                if answered is None or answered not in self._workers or not answered.held:
                    continue
                if handle is answered.conn:
                    outcome = self._receive(answered, pending)
                    if outcome is not None:
                        yield outcome
                        continue
                yield from self._bury(answered, pending)

    def _dispatch(self, next_chunk: Any, pending: deque[Chunk]) -> list[Outcome]:
        """Give chunks to idle workers (and small ones to busy workers); start workers."""
        failed: list[Outcome] = []
        while not self.setup.stop.requested:
            chunk = next_chunk()
            if chunk is None:
                break
            try:
                target = self._idle_worker()
            except (OSError, EOFError) as exc:  # no worker could start: this chunk fails
                failed.append(Outcome.failed(
                    chunk, WorkerStartFailed(f"cannot start a worker process: {exc}")))
                continue
            if target is None:
                pending.appendleft(chunk)
                break
            payload = self._pickle(chunk, failed)
            if payload is None:
                continue
            if target.held and (len(payload) > PREFETCH_MAX_BYTES or chunk.call.refs
                                or chunk.call.timeout is not None):
                # Too big to queue behind running work, or it uses shared primitives:
                # a task queued behind one that waits on a Barrier or Event for it
                # would wait forever, where a free worker would have run it. A timed
                # chunk is never queued either: the slot then always belongs to the
                # one chunk its worker holds (its hand-over, its clear on the answer).
                pending.appendleft(chunk)
                break
            if not target.held:
                target.began = time.monotonic()
                if chunk.call.timeout is not None:
                    target.slot.hand_over(chunk.first, target.began)
            try:
                target.conn.send_bytes(payload)
            except OSError:
                # It died since it was last heard from: an idle worker's death shows only
                # when work is sent to it. The chunk goes to another worker, unless this
                # one never got through start-up: then the chunk fails with the cause, so
                # that workers which cannot start do not take chunks round forever.
                if target.ready:
                    pending.appendleft(chunk)
                else:
                    target.held.append(chunk)
                failed.extend(self._bury(target, pending))
                continue
            target.held.append(chunk)
            target.sent += 1
            if len(target.held) == 1:
                self.setup.started(chunk, target.pid)
        return failed

    def _idle_worker(self) -> Worker | None:
        limit = self.chunks_per_worker
        usable = [w for w in self._workers if limit is None or w.sent < limit]
        for w in usable:
            if not w.held:
                return w
        if len(self._workers) < self._worker_limit:
            source = self._parked_source()
            kept = source.take() if source is not None else None
            if kept is not None:
                self._workers.append(kept)
                return kept
            try:
                return self._start_worker()
            except (OSError, EOFError) as exc:  # out of descriptors, processes or memory
                if not self._workers:
                    raise
                # Go on with the workers there are, rather than fail work they can do.
                self._worker_limit = len(self._workers)
                self._log.warning("cannot start another worker; going on with fewer",
                                  workers=len(self._workers), error=str(exc))
        if self._chunk_seconds is not None and self._chunk_seconds < PREFETCH_BELOW_SECONDS:
            for w in usable:
                if len(w.held) < 2:
                    return w
        return None

    def _pickle(self, chunk: Chunk, failed: list[Outcome]) -> bytes | None:
        try:
            return bytes(ForkingPickler.dumps(chunk))
        except Exception as exc:
            failed.append(Outcome.failed(chunk, ArgumentsError(
                f"the task's arguments cannot be sent to a worker: {type(exc).__name__}: {exc}")))
            return None

    def _receive(self, w: Worker, pending: deque[Chunk]) -> Outcome | None:
        """``w``'s answer to its oldest chunk (None: its pipe is gone, it died)."""
        try:
            data = w.conn.recv_bytes()
        except (EOFError, OSError):
            return None
        chunk = w.held.popleft()
        if w.held:  # the chunk sent behind it begins now
            self.setup.started(w.held[0], w.pid)
        else:
            w.slot.clear()
        outcome = self._unpickle(w, chunk, data, pending)
        if outcome is None:  # it runs again item by item
            outcome = Outcome(chunk.first, [], [], 0.0, w.pid)
        elif outcome.first != chunk.first or len(outcome.values) > len(chunk.items):
            return self._mismatch(w, chunk, outcome, pending)
        elif len(outcome.values) < len(chunk.items) and not self.setup.stop.requested:
            done = len(outcome.values)
            # Ended early by a SIGINT meant for the worker alone: the rest still runs.
            pending.appendleft(Chunk(chunk.call, chunk.first + done, chunk.items[done:],
                                     chunk.attempt))
        w.began = time.monotonic()
        average = self._chunk_seconds
        self._chunk_seconds = outcome.seconds if average is None \
            else 0.8 * average + 0.2 * outcome.seconds
        if self.chunks_per_worker is not None and w.sent >= self.chunks_per_worker \
                and not w.held:
            self._workers.remove(w)
            w.conn.close()
            self._retired.append(w.process)
        self._reap()
        return outcome

    def _unpickle(self, w: Worker, chunk: Chunk, data: bytes,
                  pending: deque[Chunk]) -> Outcome | None:
        """The outcome in ``data``. One that cannot be unpickled here (an exception class
        whose ``__init__`` wants other arguments, a ``__setstate__`` that raises) fails its
        task; a chunk of several runs again item by item (None), so that only that item
        fails."""
        try:
            outcome: Outcome = ForkingPickler.loads(data)
        except (Interrupted, KeyboardInterrupt):
            raise
        except BaseException as exc:  # SystemExit from a __setstate__ too: the task's fault
            problem = worker.unsendable(exc)
        else:
            return outcome
        if len(chunk.items) > 1:
            self._log.warning("a result could not be unpickled; rerunning its chunk item by "
                              "item", job=chunk.call.job, worker_pid=w.pid, error=problem)
            pending.extendleft(reversed(one_by_one(chunk)))
            return None
        return Outcome.failed(chunk, ResultError(
            f"the result could not be unpickled in the runner: {problem}"), pid=w.pid)

    def _mismatch(self, w: Worker, chunk: Chunk, outcome: Outcome,
                  pending: deque[Chunk]) -> Outcome:
        """``w`` answered for other tasks than it was sent: nothing it says can be trusted.
        Stop it, fail its chunk, give back what it had not begun."""
        pending.extendleft(reversed(w.held))
        w.held.clear()
        self._workers.remove(w)
        how, _ = self._terminate(w)
        last = outcome.first + len(outcome.values) - 1
        self._log.error("a worker answered for other tasks", job=chunk.call.job,
                        worker_pid=w.pid, sent=[chunk.first, chunk.first + len(chunk.items) - 1],
                        answered=[outcome.first, last], how=how)
        return Outcome.failed(chunk, ResultError(
            f"the worker (pid {w.pid}) answered for tasks {outcome.first}-{last}, not for "
            f"this task; a task that forks and returns in the child does this; the worker "
            f"was {how}"), pid=w.pid)

    def _reap(self) -> None:
        """Release retired workers that have exited: each holds descriptors until then,
        which 10,000 one-task processes would run out of."""
        for process in [p for p in self._retired if p.exitcode is not None]:
            process.join()
            self._groups.end([process.pid])  # what its task started and left running
            process.close()
            self._retired.remove(process)
        self._groups.sweep()

    def _bury(self, w: Worker, pending: deque[Chunk]) -> Iterator[Outcome]:
        """``w`` died: fail the chunk it was running, hand back the ones it had not begun."""
        while w.held and w.conn.poll():  # answers that arrived before it died
            outcome = self._receive(w, pending)
            if outcome is None:
                break
            yield outcome
        failure, cause = self._release_dead(w)
        if not w.held:
            return
        if self.setup.stop.requested:
            # It ended with the run (a SIGTERM to the whole process group, say): what
            # it held did not finish, it did not fail. A resume runs it again.
            self._log.warning("worker ended during the stop; its tasks count as not run",
                              job=w.held[0].call.job, worker_pid=w.pid,
                              exitcode=w.process.exitcode, cause=cause)
            pending.extendleft(reversed(w.held))
            return
        running, *unstarted = w.held
        pending.extendleft(reversed(unstarted))
        if len(running.items) > 1 and w.ready:
            # Which item killed it is unknown, and the results of the items before it
            # died with it: run the chunk again one item at a time, so that only the
            # item that kills a worker fails (the others run twice).
            self._log.warning("worker died; rerunning its chunk item by item",
                              job=running.call.job, worker_pid=w.pid,
                              exitcode=w.process.exitcode, cause=cause,
                              tasks=[running.first, running.first + len(running.items) - 1])
            pending.extendleft(reversed(one_by_one(running)))
            return
        self._log.error("worker died", job=running.call.job, worker_pid=w.pid,
                        exitcode=w.process.exitcode, cause=cause,
                        tasks=[running.first, running.first + len(running.items) - 1])
        yield Outcome.failed(running, failure, pid=w.pid)

    def _release_dead(self, w: Worker) -> tuple[WorkerCrashed | WorkerStartFailed, str]:
        """Forget the dead ``w`` and reap its process; say how it died (the failure of the
        task it ran, and the cause in a few words)."""
        if w in self._workers:
            self._workers.remove(w)
        w.process.join(KILL_GRACE_SECONDS)
        exitcode = w.process.exitcode
        cause = describe_exit(exitcode)
        failure: WorkerCrashed | WorkerStartFailed = WorkerCrashed(
            w.pid, exitcode, cause, _lock_note(w.held[0] if w.held else None))
        if not w.ready:
            cause = f"it died while starting (exit code {exitcode})"
            failure = WorkerStartFailed(
                f"worker pid {w.pid} died while starting, before it ran this task (exit code "
                f"{exitcode}; its traceback, if any, is on stderr)")
        if exitcode is None:  # its pipe is gone: it is of no more use
            w.process.kill()
            w.process.join(KILL_GRACE_SECONDS)
        self._groups.end([w.pid])  # what its tasks started dies with it
        with contextlib.suppress(OSError):
            w.conn.close()
        return failure, cause

    def _expire(self, w: Worker, pending: deque[Chunk]) -> list[Outcome]:
        """``w``'s item ran past its timeout: stop the worker (SIGTERM, then SIGKILL after
        a grace period) and fail that item; the items before it keep the results the
        worker sends as it unwinds; the rest of its chunk and what it had not begun go
        back (``runner.executors.timeouts``)."""
        running, *unstarted = w.held
        pending.extendleft(reversed(unstarted))
        w.held.clear()
        timeout = running.call.timeout or 0.0
        self._workers.remove(w)
        task, since = timeouts.running_task(running, w.slot, w.began)
        w.slot.expire()
        how, data = self._terminate(w, listen=True)
        settled = timeouts.settle(
            running, task, timeouts.last_word(data, running),
            TaskTimeout(timeout, w.pid, how, _lock_note(running)),
            seconds=time.monotonic() - since, pid=w.pid)
        pending.extendleft(reversed(settled.again))
        fields = {"job": running.call.job, "timeout": timeout, "worker_pid": w.pid}
        if settled.lost:
            self._log.warning("a timed-out worker's finished items were lost with it; "
                              "running them again", **fields,
                              tasks=[settled.lost.start, settled.lost.stop - 1])
        self._log.error("task timed out", task=task, how=how, **fields)
        return settled.outcomes

    @staticmethod
    def _terminate(w: Worker, listen: bool = False) -> tuple[str, bytes | None]:
        """Stop ``w`` and its process group (SIGTERM, then SIGKILL after the kill grace);
        say how it ended, and (with ``listen``) what it sent meanwhile."""
        heard = ending.stop_all([w.process], w.conn if listen else None)
        how = "stopped with SIGTERM"
        if w.process.exitcode == -signal.SIGKILL:  # it outlived SIGTERM
            how = f"killed with SIGKILL after ignoring SIGTERM for {KILL_GRACE_SECONDS:g}s"
        with contextlib.suppress(OSError):
            w.conn.close()
        return how, heard

    def _forward_stop(self) -> None:
        """Tell workers to run no new chunk (``halt``) and to end the running one after
        its current item (SIGINT, only to workers past start-up, which handle it)."""
        self._stop_byte().value = 1
        for w in self._workers:
            if w.held and w.ready:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(w.pid, signal.SIGINT)
        self._log.warning("stopping: running tasks may finish",
                          running=sum(1 for w in self._workers if w.held))

    def _start_worker(self) -> Worker:
        if self._run_backend is not None:
            self._run_backend.ready()
        ctx = self.setup.context
        parent_conn, child_conn = ctx.Pipe(duplex=True)
        started = ctx.RawValue("b", 0)
        slot = Slot.create(ctx)
        process = ctx.Process(
            target=worker.main,
            args=(child_conn, self.setup.init, self.chunks_per_worker),
            kwargs={"started": started, "halt": self._stop_byte(), "slot": slot.array},
            name=f"mprun-worker-{len(self._workers)}",
        )
        # Blocked until the worker has its own handlers (fork and spawn children inherit
        # the mask): a Ctrl-C meanwhile must not kill it with a traceback, nor a SIGTERM
        # run the runner's handler in it.
        # A signal held back meanwhile is handled when the mask is restored, and may raise
        # there: by then the worker is registered, so that close() stops it.
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, ())
        try:
            signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGINT, signal.SIGTERM,
                                                      signal.SIGHUP})
            try:
                process.start()
            except BaseException:
                parent_conn.close()
                child_conn.close()
                raise
            child_conn.close()
            groups.adopt(process.pid)
            w = Worker(process, parent_conn, started, slot)
            self._workers.append(w)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        return w

    # -- shutdown ----------------------------------------------------------

    def close(self, *, cancel: bool = False) -> None:
        """Idle workers go to the run's next pool job (``ProcessBackend.park``); the others
        are told to exit, or with ``cancel`` stopped, with what their tasks left running."""
        leaving = list(self._workers)
        if not cancel and self.chunks_per_worker is None and self._run_backend is not None:
            kept = [w for w in leaving if w.idle]
            self._run_backend.park(kept)
            leaving = [w for w in leaving if w not in kept]
        if cancel:
            ending.stop_all([w.process for w in leaving] + self._retired)
            for w in leaving:
                with contextlib.suppress(OSError):
                    w.conn.close()
        else:
            dismiss(leaving, self._retired, queues(self.setup.init.shared))
        self._groups.finish()
        self._workers.clear()
        self._retired.clear()

    @property
    def _run_backend(self) -> ProcessBackend | None:
        """The run's ProcessBackend (None only for a setup made by hand, without one)."""
        backend = self.setup.backend
        return backend if isinstance(backend, ProcessBackend) else None

    def _parked_source(self) -> ProcessBackend | None:
        """Where this job may take the workers earlier jobs left: nowhere for one worker
        per task (process mode) or a mode of a ``compare`` job (its timing includes its
        workers' start)."""
        if self.chunks_per_worker is None and not self.setup.fresh:
            return self._run_backend
        return None

    def _stop_byte(self) -> Any:
        """The shared byte a stop sets: the run's (so parked workers share it), else this
        executor's own."""
        if self._run_backend is not None:
            return self._run_backend.halt
        if self._halt is None:
            self._halt = self.setup.context.RawValue("b", 0)
        return self._halt


def one_by_one(chunk: Chunk) -> list[Chunk]:
    """``chunk`` as one chunk per item."""
    return [Chunk(chunk.call, chunk.first + i, chunk.items[i:i + 1], chunk.attempt)
            for i in range(len(chunk.items))]


def _lock_note(running: Chunk | None) -> str:
    """A dead worker's shared locks are never released: say so where it matters."""
    if running is not None and running.call.refs:
        return ("; a shared lock it held, if any, stays held: tasks that wait for it "
                "end only by their timeout")
    return ""


def _deadline(w: Worker) -> float:
    """When ``w``'s running item times out (infinity: no timeout)."""
    return timeouts.deadline(w.held[0], w.slot, w.began) if w.held else math.inf
