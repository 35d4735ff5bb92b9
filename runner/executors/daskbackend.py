"""Dask mode's run-wide part: the cluster, checked before any job runs, and what
comes back from its workers besides results.

Data flow::

    open()   --dask-scheduler > dask.scheduler > $DASK_SCHEDULER_ADDRESS > an embedded
             LocalCluster ── Client ── the job modules uploaded ── every worker probed
             (mprun's version, the job modules' imports): a problem is exit 2, nothing run
    build_shared()  the dask jobs' primitives, in the scheduler (runner.daskshared)
    listen()  the run's event topic ── "start" and "log" events ──┐
              each future's end ─────────────────────────────────┼─> one queue + a wake-up
                                                                  │   pipe the executor waits on
              log lines ──> LOG_DIR/RUN_ID/worker-HOST-PID.jsonl  ┘
    close()  primitives deleted, log files flushed and closed, the client closed, and
             the cluster only if mprun started it

Settings that make a task's failure its own (``allowed-failures: 0``: a dead
worker's task is not rerun elsewhere; ``worker-saturation: 1.0``) apply to an
embedded cluster; on a cluster of someone else's they are the scheduler's own,
and the executor finds a rerun by a task's second "start" event instead.
``distributed`` is imported here and in the executor only: no other path pays
for it (0.7 to 1.0 s on a 2-core machine).
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import re
import signal
import threading
import time
import zipfile
from collections import defaultdict
from pathlib import Path
from typing import Any

from runner import daskconfig, daskshared, daskworker
from runner.errors import ConfigError, ConfigIssue
from runner.executors.base import Backend
from runner.runfiles import AppendFile, open_append

__all__ = ["DaskBackend"]

# The nanny's words for a worker's end (distributed.nanny, "Worker process ...").
_DEATH_RE = re.compile(r"Worker process (\d+) (?:exited with status (-?\d+)|was killed by "
                       r"signal (\d+)|was killed by unknown signal)")
# How long a dead worker's nanny has to say how it ended, and the log lines to arrive.
DEATH_NOTE_SECONDS = 2.0
LOG_DRAIN_SECONDS = 5.0


class _NannyLog(logging.Handler):
    """An embedded cluster's nannies run in the runner: their death notes, by pid."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.exits: dict[int, int | None] = {}

    def emit(self, record: logging.LogRecord) -> None:
        note = exit_of(record.getMessage())
        if note is not None:
            self.exits[note[0]] = note[1]


class _Quiet:
    """distributed's own log lines in the runner, while a dask run is open: off stderr
    (its tracebacks are not mprun's words: a lost scheduler is a task's ClusterLost),
    into runner.jsonl instead, warnings and up, one line each."""

    def __init__(self) -> None:
        self.logger = logging.getLogger("distributed")
        self.saved = [(handler, handler.level) for handler in self.logger.handlers]
        for handler, _level in self.saved:
            handler.setLevel(logging.CRITICAL + 1)
        self.relay = _Relay()
        self.logger.addHandler(self.relay)

    def undo(self) -> None:
        self.logger.removeHandler(self.relay)
        for handler, level in self.saved:
            handler.setLevel(level)


class _Relay(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)

    def emit(self, record: logging.LogRecord) -> None:
        from runner import log

        error = record.exc_info[1] if record.exc_info else None
        with contextlib.suppress(Exception):
            log.logger().warning("distributed said", logger=record.name,
                                 level_name=record.levelname, said=record.getMessage(),
                                 error=None if error is None else
                                 f"{type(error).__name__}: {error}")


def exit_of(message: str) -> tuple[int, int | None] | None:
    """(pid, exit code as multiprocessing gives it: -signal) from a nanny's line."""
    found = _DEATH_RE.search(message)
    if found is None:
        return None
    pid, status, signum = found.groups()
    code = int(status) if status is not None else -int(signum) if signum is not None else None
    return int(pid), code


def _zipped(package: Path, folder: Path) -> Path:
    """``package`` (its .py files) as ``folder/NAME.zip``, importable from the zip."""
    target = folder / f"{package.name}.zip"
    with zipfile.ZipFile(target, "w") as archive:
        for file in sorted(package.rglob("*.py")):
            archive.write(file, file.relative_to(package.parent))
    return target


class DaskBackend(Backend):
    """One client (and, embedded, one cluster) for every dask job of the run."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.client: Any = None
        self.cluster: Any = None  # the LocalCluster mprun started, if it did
        self.address = ""
        self.messages: queue.SimpleQueue[tuple[Any, ...]] = queue.SimpleQueue()
        self._wake_r, self._wake_w = os.pipe()
        self._wake_lock = threading.Lock()
        self._closed = False
        self._dask_config: Any = None
        self._from_env = False
        self._quiet: _Quiet | None = None
        self.lost: str | None = None  # why the cluster is of no more use, once it is not
        self._nanny_log: _NannyLog | None = None
        self._shared: list[daskshared._Handle] = []
        self._topic: str | None = None
        self._logs: dict[tuple[str, int], AppendFile | None] = {}
        self._logs_lock = threading.Lock()
        self.log_lines: defaultdict[str, int] = defaultdict(int)  # key -> lines received

    # -- opening: the cluster and its checks -----------------------------------

    def open(self) -> None:
        import dask
        import distributed  # noqa: F401 -- first: its defaults must be in dask's config
        # before dask.config.set, whose undo would otherwise remove the whole section

        self._quiet = _Quiet()

        settings = daskconfig.settings(self.scope.config)
        lease = settings.lease_timeout
        self._dask_config = dask.config.set({
            "distributed.scheduler.allowed-failures": 0,
            "distributed.scheduler.worker-saturation": 1.0,
            "distributed.scheduler.locks.lease-timeout": f"{lease}s",
            "distributed.scheduler.locks.lease-validation-interval": f"{min(10.0, lease / 3)}s",
        })
        address = settings.scheduler or os.environ.get("DASK_SCHEDULER_ADDRESS") or None
        self._from_env = settings.scheduler is None and address is not None
        self.client = self._connect(address, settings) if address else self._embedded(settings)
        self.address = self.client.scheduler.address
        daskshared.bind(self.client)
        if address and settings.upload:
            try:
                self._upload()
            except Exception as exc:  # a worker that cannot import it, or lacks mprun
                raise self._problem(
                    f"dask scheduler {self.address}: the job modules could not be uploaded "
                    f"to every worker ({type(exc).__name__}: {exc}); each worker needs "
                    f"mprun and every module the jobs import") from None
        self._probe()

    def _connect(self, address: str, settings: Any) -> Any:
        from distributed import Client

        try:
            client = Client(address, timeout=settings.connect_timeout, set_as_default=False)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            where = " (from $DASK_SCHEDULER_ADDRESS)" if self._from_env else ""
            raise self._problem(f"cannot reach the dask scheduler at {address!r}{where} within "
                                f"connect_timeout ({settings.connect_timeout:g}s): {exc}") \
                from None
        try:
            client.wait_for_workers(1, timeout=settings.connect_timeout)
        except TimeoutError:
            client.close()
            raise self._problem(f"the dask scheduler at {address} has no worker (waited "
                                f"connect_timeout, {settings.connect_timeout:g}s)") from None
        return client

    def _embedded(self, settings: Any) -> Any:
        from distributed import Client, LocalCluster

        jobs = self.scope.jobs.values()
        workers = settings.workers or max(
            (job.worker_count() for job in jobs if daskconfig.MODE in job.modes()), default=1)
        self._nanny_log = _NannyLog()
        logging.getLogger("distributed.nanny").addHandler(self._nanny_log)
        self.cluster = LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, host="127.0.0.1",
            # Its HTTP server starts even without the dashboard, on 8787 unless told:
            # a random loopback port never clashes, nor is it reachable from outside.
            dashboard_address="127.0.0.1:0",
            silence_logs=logging.CRITICAL, memory_limit=0,
            preload=["runner.daskworker"])  # its dask_setup: the workers' process group
        client = Client(self.cluster, set_as_default=False)
        client.wait_for_workers(workers)
        if settings.dashboard:
            import sys

            print(f"mprun: dask dashboard: {client.dashboard_link}", file=sys.stderr)
        return client

    def _problem(self, message: str) -> ConfigError:
        """A problem of the cluster, not of a line of the file: named by the config and
        its ``dask`` section (the address may come from --dask-scheduler or the
        environment)."""
        config = self.scope.config
        return ConfigError([ConfigIssue(config.source or "<config>", None, None, "dask",
                                        message)])

    def _modules(self) -> list[str]:
        return sorted({job.function.partition(":")[0] for job in self.scope.jobs.values()
                       if daskconfig.MODE in job.modes()})

    def _upload(self) -> None:
        """Ship the job modules that come from the config's folder to every worker, and
        to workers that join or restart later: a module file as it is, a package as a
        zip. Each goes under a name of its own (``mprun-upload-FILE``), so that a later
        run replaces it instead of adding one more to the scheduler. A worker that had
        an older copy imported forgets it (a package's submodules too)."""
        import sys
        import tempfile

        from distributed.diagnostics.plugin import UploadFile

        folder = Path(self.scope.config.folder).resolve()
        tops = sorted({module.partition(".")[0] for module in self._modules()})
        sent: list[str] = []
        with tempfile.TemporaryDirectory(prefix="mprun-upload-") as scratch:
            for top in tops:
                file = getattr(sys.modules.get(top), "__file__", None)
                if file is None:
                    continue
                path = Path(file).resolve()
                if folder not in path.parents:
                    continue  # installed where the workers have it too
                if path.name == "__init__.py":
                    path = _zipped(path.parent, Path(scratch))
                self.client.register_plugin(UploadFile(str(path), load=True),
                                            name=f"mprun-upload-{path.name}")
                sent.append(top)
        if sent:
            self.client.run(daskworker.forget_modules, sent, on_error="return")

    def _probe(self) -> None:
        """Every worker runs mprun's version and imports each job module, or exit 2."""
        import runner

        embedded = self.cluster is not None
        paths = self.scope.init.sys_path if embedded else []
        answers = self.client.run(daskworker.probe, self._modules(), paths, on_error="return")
        found = []
        for worker, answer in sorted(answers.items()):
            if isinstance(answer, BaseException):
                found.append(f"worker {worker} cannot run mprun ({type(answer).__name__}: "
                             f"{answer}); install mprun {runner.__version__} in the workers' "
                             "environment")
                continue
            if answer["version"] != runner.__version__:
                found.append(f"worker {worker} has mprun {answer['version']}, the runner "
                             f"{runner.__version__}: install the same version on both")
            for module, problem in sorted(answer["failed"].items()):
                found.append(f"worker {worker} cannot import module {module}: {problem} "
                             "(install it there, or keep it in the config's folder with "
                             "dask.upload: true)")
        if found:
            config = self.scope.config
            raise ConfigError([ConfigIssue(config.source or "<config>", None, None, "dask",
                                           f"dask scheduler {self.address}: {message}")
                               for message in found])

    # -- during the run ----------------------------------------------------------

    def describe(self) -> dict[str, Any]:
        workers: dict[str, Any] = {}
        with contextlib.suppress(Exception):  # the cluster went away: say what is known
            workers = self.client.scheduler_info(n_workers=-1)["workers"]
        return {"dask": {"scheduler": self.address, "embedded": self.cluster is not None,
                         "workers": len(workers),
                         "threads": sum(w["nthreads"] for w in workers.values())}}

    def threads(self) -> int:
        info = self.client.scheduler_info(n_workers=-1)
        return max(1, sum(int(w["nthreads"]) for w in info["workers"].values()))

    def build_shared(self, specs: dict[str, Any]) -> dict[str, Any]:
        built = daskshared.build(specs, self.scope.init.run_id)
        self._shared.extend(built.values())
        return built

    def task_init(self) -> daskworker.TaskInit:
        init = self.scope.init
        return daskworker.TaskInit(
            run_id=init.run_id, log_level=init.log_level,
            sys_path=init.sys_path if self.cluster is not None else [],
            secret_values=init.secret_values, stdout_to_stderr=init.stdout_to_stderr)

    def listen(self) -> None:
        """Take the run's events from here on (before the first task is sent)."""
        name = daskworker.topic(self.scope.init.run_id)
        if self._topic != name:
            self._topic = name
            self.client.subscribe_topic(name, self._on_event)

    def _on_event(self, event: tuple[float, Any]) -> None:
        """On the client's thread: a log line to its file, a start to the executor."""
        message = event[1]
        if message[0] == "log":
            _kind, key, host, pid, line = message
            self._write_log(host, pid, line)
            self.log_lines[key] += 1
            return
        self.notify(tuple(message))

    def lose(self, reason: str) -> str:
        """The cluster is gone: remember the first reason, and return it."""
        if self.lost is None:
            self.lost = reason
        return self.lost

    def notify(self, message: tuple[Any, ...]) -> None:
        """Hand ``message`` to the executor's loop and wake it (any thread; a future's
        callback may come after close(), when the pipe's number may be another file's)."""
        with self._wake_lock:
            if self._closed:
                return
            self.messages.put(message)
            with contextlib.suppress(OSError):
                os.write(self._wake_w, b"\0")

    def wake_fileno(self) -> int:
        return self._wake_r

    def drain_wake(self) -> None:
        with contextlib.suppress(BlockingIOError, OSError):
            os.set_blocking(self._wake_r, False)
            os.read(self._wake_r, 65536)

    def _write_log(self, host: str, pid: int, line: str) -> None:
        log_dir = self.scope.init.log_dir
        if log_dir is None:
            return
        with self._logs_lock:
            if (host, pid) not in self._logs:
                path = os.path.join(log_dir, f"worker-{host}-{pid}.jsonl")
                self._logs[(host, pid)] = open_append(path, self._log_failed)
            file = self._logs[(host, pid)]
            if file is not None:
                try:
                    file.write(line.encode() + b"\n")
                except Exception:
                    self._logs[(host, pid)] = None

    def _log_failed(self, error: Any) -> None:
        from runner import log

        log.logger().warning("a dask worker's log file cannot be written", error=str(error))

    def wait_for_logs(self, expected: dict[str, int]) -> int:
        """Wait (a few seconds at most) until every task's log lines have come; how many
        did not."""
        deadline = time.monotonic() + LOG_DRAIN_SECONDS
        while True:
            missing = sum(max(0, count - self.log_lines.get(key, 0))
                          for key, count in expected.items())
            if not missing or time.monotonic() >= deadline:
                return missing
            time.sleep(0.01)

    def exit_code(self, pid: int, address: str | None) -> tuple[bool, int | None]:
        """How worker ``pid`` ended, from its nanny's log: (known, exit code)."""
        deadline = time.monotonic() + DEATH_NOTE_SECONDS
        while True:
            if self._nanny_log is not None:
                if pid in self._nanny_log.exits:
                    return True, self._nanny_log.exits[pid]
            else:
                with contextlib.suppress(Exception):
                    for lines in self.client.get_worker_logs(nanny=True).values():
                        for _level, message in lines:
                            note = exit_of(message)
                            if note is not None and note[0] == pid:
                                return True, note[1]
            if time.monotonic() >= deadline:
                # A nanny logs every end but exit status 0: ours (embedded) said nothing,
                # so that is how it ended; a remote one's silence may also be the network.
                return (True, 0) if self._nanny_log is not None else (False, None)
            time.sleep(0.05)

    def restart(self, address: str) -> None:
        """Restart the worker at ``address`` through its nanny (in the background: it
        takes seconds), ending a task that ran past its timeout."""
        def restart() -> None:
            with contextlib.suppress(Exception):
                self.client.restart_workers([address], raise_for_error=False)
        threading.Thread(target=restart, name="mprun-dask-restart", daemon=True).start()

    def end_tasks(self, pids: list[int]) -> None:
        """End the cancelled tasks running in worker processes ``pids`` at once: SIGKILL,
        on an embedded cluster (its own workers; their nannies start new ones). A
        cluster of someone else's is left alone: its tasks run on until they return."""
        if self.cluster is None:
            return
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)

    # -- closing -------------------------------------------------------------------

    def close(self) -> None:
        try:
            if self.client is not None:
                daskshared.delete(self._shared)
                if self._topic is not None:
                    with contextlib.suppress(Exception):
                        self.client.unsubscribe_topic(self._topic)
                with contextlib.suppress(Exception):
                    self.client.close()
            if self.cluster is not None:
                with contextlib.suppress(Exception):
                    self.cluster.close()
        finally:
            with self._logs_lock:
                for file in self._logs.values():
                    if file is not None:
                        file.close()
                self._logs.clear()
            if self._nanny_log is not None:
                logging.getLogger("distributed.nanny").removeHandler(self._nanny_log)
            daskshared.bind(None)
            if self._quiet is not None:
                self._quiet.undo()
            if self._dask_config is not None:
                self._dask_config.__exit__(None, None, None)
            with self._wake_lock:
                self._closed = True
                for fd in (self._wake_r, self._wake_w):
                    with contextlib.suppress(OSError):
                        os.close(fd)
