"""The main loop of a worker process (``pool`` and ``process`` modes).

Data flow, one duplex pipe per worker::

    runner ── Chunk ──> pipe ──> worker: run_chunk() ──> pipe ── Outcome ──> runner
                        (None: stop)

Each worker knows exactly which chunk it holds, so the runner can tell which
tasks a dead worker took with it. A worker also watches its parent: if the
runner dies, even by SIGKILL, the worker exits instead of lingering.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from dataclasses import dataclass, field
from multiprocessing import parent_process
from multiprocessing.connection import Connection, wait
from multiprocessing.reduction import ForkingPickler
from typing import Any

from runner import forkguard, imports, log, redact
from runner.errors import ResultError
from runner.work import Call, Outcome, TaskError, clear_stop, run_chunk, stop_chunks

__all__ = ["WorkerInit", "log_failure", "main"]

# Exit code of a worker whose runner died while it ran a task (no one reads it).
EXIT_ORPHANED = 1


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


def main(conn: Connection, init: WorkerInit, max_chunks: int | None = None,
         started: Any = None, halt: Any = None) -> None:
    """Run chunks from ``conn`` until told to stop, the runner dies, or ``max_chunks``.

    ``started`` (a shared ``RawValue``) is set to 1 once start-up is over, so that
    the runner can tell a worker that could not start from one that a task killed.
    ``halt`` (a shared ``RawValue``) is set by the runner on a stop: chunks
    received after that are answered at once with no item run.
    """
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
    done = 0
    while max_chunks is None or done < max_chunks:
        if not conn.poll() and conn not in wait(watched):
            log.logger().warning("runner is gone; worker exits")
            break
        try:
            chunk = conn.recv()
        except EOFError:
            break
        if chunk is None:
            break
        if halt is not None and halt.value:
            outcome = Outcome(chunk.first, [], [], 0.0, os.getpid())
        else:
            outcome = run_chunk(chunk, init.shared, log_failure)
            forkguard.exit_if_forked()  # a task forked and this is the child: never answer
        clear_stop()  # a SIGINT cuts short the chunk it came during, not the next one
        sys.stdout.flush()
        sys.stderr.flush()
        _send(conn, outcome, chunk.attempt)
        done += 1
    log.logger().info("worker stopped", chunks=done)


def _install_signal_handlers() -> None:
    # SIGINT (Ctrl-C reaches the whole process group; the runner forwards its own)
    # ends the running chunk after its current item, so that a task in progress
    # finishes within the runner's grace period and its result is kept. The
    # runner kills the worker if the grace period ends first.
    signal.signal(signal.SIGINT, _stop_chunk)
    signal.siginterrupt(signal.SIGINT, False)  # native code in tasks sees no EINTR
    # A forked worker inherits the runner's SIGTERM handler, which raises Interrupted
    # inside task code; SIGTERM (from the runner's cancel, or the whole group's)
    # must end a worker quietly, as it does under spawn and forkserver.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    # The runner starts workers with SIGINT and SIGTERM blocked (fork and spawn keep
    # the mask) until these handlers are in place: see PoolExecutor._start_worker.
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT, signal.SIGTERM})


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
    """Exit as soon as the runner dies, even in the middle of a task: a task that
    sleeps or loops would otherwise keep an orphan alive (the main loop only looks
    between chunks). Nobody is left to take its results."""
    wait([sentinel])
    with contextlib.suppress(Exception):
        log.logger().warning("runner is gone; worker exits")
    os._exit(EXIT_ORPHANED)


def _send(conn: Connection, outcome: Outcome, attempt: int = 1) -> None:
    """Send ``outcome``; a value that cannot be pickled fails its own task only.

    Whatever pickling raises counts, ``SystemExit`` from a ``__reduce__`` and the
    ``RecursionError`` of a deeply nested value included: the worker answers.
    """
    try:
        data = ForkingPickler.dumps(outcome)
    except BaseException as exc:  # any failure to pickle is the task's
        first_error: BaseException = exc
    else:
        conn.send_bytes(data)
        return
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
        data = ForkingPickler.dumps(outcome)
    except BaseException:
        failure = ResultError(f"the results cannot be sent back: {unsendable(first_error)}")
        failed = [TaskError.of(outcome.first + i, failure, attempts=attempt)
                  for i in range(len(outcome.values))]
        data = ForkingPickler.dumps(Outcome(outcome.first, [None] * len(outcome.values), failed,
                                            outcome.seconds, outcome.pid))
    conn.send_bytes(data)


def unsendable(exc: BaseException) -> str:
    """Why a value could not be pickled or unpickled, in words."""
    if isinstance(exc, RecursionError):
        return (f"it is nested deeper than pickle can go (Python's recursion limit, "
                f"{sys.getrecursionlimit()} levels)")
    return f"{type(exc).__name__}: {exc}"
