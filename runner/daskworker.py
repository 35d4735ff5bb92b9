"""What runs inside a Dask worker: one chunk per task, and the start-up probe.

Data flow::

    runner ── submit(run, TaskInit, Chunk, shared, key) ──> dask worker thread
       run(): this process set up for the run (once), a "start" event, run_chunk(),
              the Outcome pickled ──> bytes, one object per chunk, never a list
    runner <── events on topic "mprun-RUN": ["start", key, pid, address],
                                            ["log", key, host, pid, line]

The result is the Outcome pickled by mprun (``runner.worker.pickled``): a
value that will not pickle fails its own task only, and distributed moves one
bytes object instead of walking a list of a million items. Log lines are
rendered to JSON here and travel through the scheduler's event stream, so
they reach ``LOG_DIR/RUN_ID/worker-HOST-PID.jsonl`` from any machine; each
task's result says how many it sent, so the runner knows when it has them all.

Every exception, SystemExit and KeyboardInterrupt included, fails only its
task: distributed lets those two shut the worker down, so nothing escapes
:func:`run`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sys
import threading
from dataclasses import dataclass, field
from typing import Any

from runner import imports, log, redact
from runner.work import Chunk, Outcome, run_chunk

__all__ = ["TaskInit", "dask_setup", "forget_modules", "probe", "run", "topic"]


@dataclass(frozen=True)
class TaskInit:
    """What a worker process needs for a run, sent with each task (a few hundred bytes)."""

    run_id: str
    log_level: str = "info"
    sys_path: list[str] = field(default_factory=list)  # an embedded cluster's: the runner's
    secret_values: list[str] = field(default_factory=list)
    stdout_to_stderr: bool = False


def topic(run_id: str) -> str:
    """The scheduler event topic of a run."""
    return f"mprun-{run_id}"


class _State(threading.local):
    key: str = ""  # the task running in this thread
    sent: int = 0  # log lines it sent


_state = _State()
_ready_for: str | None = None  # the run this process is set up for
_ready_lock = threading.Lock()
_HOST = socket.gethostname()


class _EventSink:
    """structlog's file in a dask worker: each line goes to the run's event topic."""

    def __init__(self, topic_name: str) -> None:
        self.topic = topic_name

    def write(self, data: bytes) -> None:
        from distributed import get_worker

        try:
            worker = get_worker()
        except ValueError:  # not in a worker thread (a thread of the task's own)
            return
        worker.log_event(self.topic, ["log", _state.key, _HOST, os.getpid(),
                                      data.decode("utf-8", "replace").rstrip("\n")])
        _state.sent += 1

    def flush(self) -> None:
        """Nothing to do: each line is sent as it is written."""

    def close(self) -> None:
        """Nothing to close."""


def _set_up(init: TaskInit) -> None:
    """This process as run ``init.run_id``'s (once per run): paths, secrets, logging."""
    global _ready_for
    with _ready_lock:
        if _ready_for == init.run_id:
            return
        imports.add_paths(init.sys_path)
        redact.add_secret_values(init.secret_values)
        if init.stdout_to_stderr and sys.stdout is not sys.__stderr__:
            sys.stdout = sys.__stderr__  # an embedded worker's fd 1 is stderr already
        log.configure(path=None, run_id=init.run_id, process="worker", level=init.log_level,
                      sink=_EventSink(topic(init.run_id)), fields={"host": _HOST})
        _ready_for = init.run_id


def run(init: TaskInit, chunk: Chunk, shared: dict[str, Any] | None, key: str) -> bytes:
    """Run ``chunk`` here; its Outcome pickled, with how many log lines it sent."""
    from distributed import get_worker

    from runner.worker import log_failure, pickled

    worker = get_worker()
    address = worker.address
    _state.key, _state.sent = key, 0
    try:
        _set_up(init)
        worker.log_event(topic(init.run_id), ["start", key, os.getpid(), address])
        outcome = run_chunk(chunk, shared or {}, log_failure)
    except BaseException as exc:
        outcome = Outcome.failed(chunk, exc, seconds=0.0)
    finally:
        with contextlib.suppress(Exception):  # a task may have closed or replaced them
            sys.stdout.flush()
            sys.stderr.flush()
    outcome.worker = address
    data = pickled(outcome, chunk.attempt)
    sent, _state.key = _state.sent, ""
    return sent.to_bytes(4, "little") + data


def dask_setup(worker: Any) -> None:
    """An embedded cluster's worker process, at its start (distributed's preload hook):
    its own process group, so that a Ctrl-C at the terminal reaches the runner only
    (which stops the run by its rules) and not the workers, as a pool worker's."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)


def forget_modules(tops: list[str]) -> None:
    """Drop ``tops`` and their submodules from this worker's imports, so that the next
    import reads the files just uploaded (distributed reloads a package's ``__init__``
    only, and a submodule would keep its old code)."""
    import importlib

    for name in [name for name in sys.modules
                 if any(name == top or name.startswith(top + ".") for top in tops)]:
        del sys.modules[name]
    imports.forget(tops)
    importlib.invalidate_caches()


def probe(modules: list[str], sys_path: list[str]) -> dict[str, Any]:
    """What the runner checks of a worker before any job runs: its mprun version, and
    which of ``modules`` cannot be imported there (and why)."""
    import runner

    imports.add_paths(sys_path)
    failed = {module: problem for module in modules
              if (problem := _import_problem(module)) is not None}
    return {"version": runner.__version__, "failed": failed, "pid": os.getpid(),
            "host": _HOST}


def _import_problem(module: str) -> str | None:
    import importlib

    try:
        importlib.import_module(module)
    except BaseException as exc:
        return f"{type(exc).__name__}: {exc}"
    return None
