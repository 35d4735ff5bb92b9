"""The main loop of a worker process (``pool`` and ``process`` modes).

Data flow, one duplex pipe per worker::

    runner ── Chunk ──> pipe ──> worker: run_chunk() ──> pipe ── Outcome ──> runner
                        (None: stop)

Each worker knows exactly which chunk it holds, so the runner can tell which
tasks a dead worker took with it.

A worker leads a process group of its own (``runner.groups``), so that the
processes its tasks start can be ended with it. SIGTERM raises
:class:`Terminated` inside the running task, so that its ``finally`` blocks
and context managers run (under ``SIG_DFL`` they would not), then the worker
ends by SIGTERM; the runner SIGKILLs what is left of the group after the kill
grace. A worker also watches its runner: if the runner dies, even by SIGKILL,
the worker does the same to its own group itself, instead of lingering.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing import parent_process
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from runner import forkguard, groups, imports, log, redact
from runner.errors import ResultError
from runner.slots import Slot
from runner.work import Call, Outcome, TaskError, clear_stop, run_chunk, stop_chunks

__all__ = ["Terminated", "WorkerInit", "log_failure", "main", "pickled", "unsendable"]

# Exit code of a worker whose runner died while it ran a task (no one reads it).
EXIT_ORPHANED = 1


class Terminated(BaseException):
    """SIGTERM reached the worker while a task ran: raised in the task to unwind it."""


class _State:
    """What the worker's signal handlers and its runner watch share (plain flags)."""

    in_chunk = False  # a chunk's task code is running in the main thread
    terminating = False  # SIGTERM came: the worker ends once the task has unwound
    orphaned = False  # the runner is gone: the watch thread ends the group
    leads_group = False
    pid = 0  # the worker's: a process a task forks inherits the handler, not the role


@dataclass
class WorkerInit:
    """What a worker needs before its first chunk; sent once, at start-up."""

    run_id: str
    log_dir: str | None
    log_level: str = "info"
    sys_path: list[str] = field(default_factory=list)
    shared: dict[str, Any] = field(default_factory=dict)
    functions: list[str] = field(default_factory=list)  # imported before the first chunk
    stdout_to_stderr: bool = False
    # Masked in this worker's logs (runner.redact); spawn and forkserver do not inherit them.
    secret_values: list[str] = field(default_factory=list)


def log_failure(call: Call, task: int, exc: BaseException) -> None:
    log.logger(job=call.job, task=task).error(
        "task failed", error_type=type(exc).__qualname__, exc_info=exc)


def main(conn: Connection, init: WorkerInit, max_chunks: int | None = None, *,
         started: Any = None, halt: Any = None, slot: Any = None) -> None:
    """Run chunks from ``conn`` until told to stop, the runner dies, or ``max_chunks``.

    ``started`` (a shared ``RawValue``) is set to 1 once start-up is over, so that
    the runner can tell a worker that could not start from one that a task killed.
    ``halt`` (a shared ``RawValue``) is set by the runner on a stop: chunks
    received after that are answered at once with no item run.
    ``slot`` (a ``RawArray`` for :class:`runner.slots.Slot`) is where the items of a
    chunk with a timeout are named as they begin.
    """
    _State.pid, _State.leads_group = os.getpid(), groups.lead()
    _install_signal_handlers()
    forkguard.install()
    _start(init)
    parent = parent_process()
    watched: list[Any] = [conn] if parent is None else [conn, parent.sentinel]
    if parent is not None:
        threading.Thread(target=_exit_with_runner, args=(parent.sentinel,), daemon=True,
                         name="mprun-watch-runner").start()
    if started is not None:
        started.value = 1
    try:
        done = _serve(conn, init, watched, max_chunks,
                      halt=halt, slot=None if slot is None else Slot(slot))
    except Terminated:  # SIGTERM outside task code, while the worker sent or waited
        _end_terminated()
    if _State.terminating:
        _end_terminated()
    log.logger().info("worker stopped", chunks=done)


def _serve(conn: Connection, init: WorkerInit, watched: list[Any], max_chunks: int | None,
           *, halt: Any, slot: Slot | None) -> int:
    """Answer chunks until told to stop, the runner is gone or SIGTERM came; how many."""
    done = 0
    while (max_chunks is None or done < max_chunks) and not _State.terminating:
        if not conn.poll() and conn not in wait(watched):
            log.logger().warning("runner is gone; worker exits")
            break
        try:
            chunk = conn.recv()
        except EOFError:
            break
        if chunk is None:
            break
        timed = None if chunk.call.timeout is None else slot
        if halt is not None and halt.value:
            outcome = Outcome(chunk.first, [], [], 0.0, os.getpid())
        else:
            _State.in_chunk = True
            try:
                outcome = run_chunk(chunk, init.shared, log_failure, timed)
            finally:
                _State.in_chunk = False
            forkguard.exit_if_forked()  # a task forked and this is the child: never answer
        if _State.terminating:  # the task unwound: nobody waits for its answer...
            if timed is not None and timed.expired():
                # ...unless it timed out: the runner waits for the items done before it.
                _send(conn, _before_timeout(outcome, timed), chunk.attempt)
            break
        clear_stop()  # a SIGINT cuts short the chunk it came during, not the next one
        sys.stdout.flush()
        sys.stderr.flush()
        _send(conn, outcome, chunk.attempt)
        done += 1
    return done


def _before_timeout(outcome: Outcome, slot: Slot) -> Outcome:
    """``outcome`` cut to the items before the one ``slot`` names: the one whose timeout
    came, which SIGTERM unwound (its own error, if any, is the stop's doing)."""
    running = slot.running()
    return outcome.head(0 if running is None else running[0] - outcome.first)


def _install_signal_handlers() -> None:
    # SIGINT (the runner forwards its own stop; Ctrl-C no longer reaches a worker's
    # own process group) ends the running chunk after its current item, so that a
    # task in progress finishes within the runner's grace period and its result is
    # kept. The runner stops the worker if the grace period ends first.
    signal.signal(signal.SIGINT, _stop_chunk)
    signal.siginterrupt(signal.SIGINT, False)  # native code in tasks sees no EINTR
    # A forked worker inherits the runner's SIGTERM handler; a worker's own raises
    # Terminated in task code (see the module's docstring).
    signal.signal(signal.SIGTERM, _on_sigterm)
    # A forked worker would keep the runner's SIGHUP handler (a stop request of the
    # runner's, written into its self-pipe); a hang-up ends a worker as SIGTERM does.
    signal.signal(signal.SIGHUP, _on_sigterm)
    # The runner starts workers with these signals blocked (fork and spawn keep the
    # mask) until the handlers are in place: see PoolExecutor._start_worker.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM, signal.SIGHUP})


def _on_sigterm(_signum: int, _frame: Any) -> None:
    """Unwind the running task (once), or end at once if none runs. Only flags and
    ``stop_chunks`` here: the rest happens in the main loop."""
    if os.getpid() != _State.pid:  # a process a task forked: SIGTERM's default for it
        _die_by_sigterm()
    first = not _State.terminating
    _State.terminating = True
    stop_chunks()
    if _State.in_chunk:
        if first:
            raise Terminated("SIGTERM: the task was stopped (a timeout, an interrupt, or "
                             "the runner's end)")
    elif not _State.orphaned:
        _end_terminated()


def _end_terminated() -> None:
    """End as SIGTERM would have, now that the task has unwound; an orphan waits for its
    watch thread instead, which ends the whole group."""
    if _State.orphaned:
        threading.Event().wait()
    _die_by_sigterm()


def _die_by_sigterm() -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    os.kill(os.getpid(), signal.SIGTERM)
    os._exit(128 + signal.SIGTERM)  # not reached: SIGTERM is not blocked here


def _start(init: WorkerInit) -> None:
    """Output, import paths, secrets and logging as the run's; the jobs' functions imported."""
    if init.stdout_to_stderr:
        sys.stdout.flush()
        os.dup2(2, 1)
    imports.add_paths(init.sys_path)
    redact.add_secret_values(init.secret_values)
    path = os.path.join(init.log_dir, f"worker-{os.getpid()}.jsonl") if init.log_dir else None
    log.configure(path=path, run_id=init.run_id, process="worker", level=init.log_level)
    log.logger().info("worker started", functions=init.functions)
    for function in init.functions:
        # A function that fails to import fails the tasks that use it, with the reason.
        with contextlib.suppress(Exception):
            imports.resolve(function)


def _stop_chunk(_signum: int, _frame: Any) -> None:
    stop_chunks()


def _exit_with_runner(sentinel: Any) -> None:
    """Once the runner is gone, even by SIGKILL, end this worker's group: SIGTERM (the
    task unwinds, and what it started may clean up), then SIGKILL once the task has
    unwound or the kill grace is over. A task that sleeps or loops would otherwise keep
    an orphan alive (the main loop only looks between chunks); nobody is left to take
    its results."""
    # Under fork, a worker started later holds the runner's end of this worker's
    # sentinel pipe too, so the sentinel alone would wait for its siblings to end first:
    # the parent's pid changing (to init's) says it at once.
    parent = os.getppid()
    while not wait([sentinel], timeout=0.5) and os.getppid() == parent:
        pass
    _State.orphaned = True
    with contextlib.suppress(Exception):
        log.logger().warning("runner is gone; worker ends its process group")
    if _State.leads_group:
        groups.send(os.getpid(), signal.SIGTERM)
        deadline = time.monotonic() + groups.KILL_GRACE_SECONDS
        while _State.in_chunk and time.monotonic() < deadline:
            time.sleep(0.01)  # the main thread has nothing to wait on for us
        groups.send(os.getpid(), signal.SIGKILL)  # this worker last of all
    os._exit(EXIT_ORPHANED)


def _send(conn: Connection, outcome: Outcome, attempt: int = 1) -> None:
    """Send ``outcome``; a value that cannot be pickled fails its own task only."""
    conn.send_bytes(pickled(outcome, attempt))


def pickled(outcome: Outcome, attempt: int = 1) -> bytes:
    """``outcome`` pickled; a value that cannot be pickled fails its own task only.

    Whatever pickling raises counts, ``SystemExit`` from a ``__reduce__`` and the
    ``RecursionError`` of a deeply nested value included: the worker answers.
    """
    try:
        return bytes(ForkingPickler.dumps(outcome))
    except BaseException as exc:  # any failure to pickle is the task's
        first_error: BaseException = exc
    for index, value in enumerate(outcome.values):
        try:
            ForkingPickler.dumps(value)
        except BaseException as exc:
            outcome.values[index] = None
            outcome.errors.append(TaskError.of(outcome.first + index, ResultError(
                f"the result cannot be sent back to the runner: {unsendable(exc)}"),
                attempts=attempt))
    outcome.errors.sort(key=lambda error: error.task)
    try:
        return bytes(ForkingPickler.dumps(outcome))
    except BaseException:
        failure = ResultError(f"the results cannot be sent back: {unsendable(first_error)}")
        failed = [TaskError.of(outcome.first + i, failure, attempts=attempt)
                  for i in range(len(outcome.values))]
        return bytes(ForkingPickler.dumps(Outcome(outcome.first, [None] * len(outcome.values),
                                                  failed, outcome.seconds, outcome.pid,
                                                  outcome.worker)))


def unsendable(exc: BaseException) -> str:
    """Why a value could not be pickled or unpickled, in words."""
    if isinstance(exc, RecursionError):
        return (f"it is nested deeper than pickle can go (Python's recursion limit, "
                f"{sys.getrecursionlimit()} levels)")
    return f"{type(exc).__name__}: {exc}"
