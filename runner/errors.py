"""One exception tree for mprun, and the exit code each branch means.

::

    MprunError
    ├── ConfigError ── JobImportError       exit 2: nothing ran
    ├── UsageError ── ResumeRefused          exit 2: nothing ran
    ├── OutputError                          exit 74: stdout could not be written
    │   └── RunFilesError                    exit 74: nor could the run's own files
    ├── RunLocked                            exit 75
    ├── TaskFailed                           a task gave no result (recorded, exit 1)
    │   ├── WorkerCrashed
    │   ├── TaskTimeout
    │   ├── WorkerStartFailed
    │   ├── ArgumentsError
    │   ├── ResultError
    │   └── ClusterLost
    ├── ResultsDiffer                        a compare job's modes disagree (recorded, exit 1)
    └── MapFileChanged                       a map file changed during its run (recorded, exit 1)
    Interrupted (a BaseException)            exit 128 + signal

The CLI catches :class:`MprunError` and maps it with :func:`exit_code_for`.
Task failures inside a run are *recorded*, not raised: a runner-made failure
is built as one of the :class:`TaskFailed` classes, and its record
(``runner.work.TaskError.of``) carries that class's name as its ``type``. A
task's own exception is recorded under its own class name (``ValueError``);
the record also keeps the names of the class and its bases, which a job's
``retry_on`` matches.

Stdlib only: every worker imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "EXIT_INTERRUPTED",
    "EXIT_IO",
    "EXIT_LOCKED",
    "EXIT_OK",
    "EXIT_TASK_FAILED",
    "EXIT_USAGE",
    "ArgumentsError",
    "ClusterLost",
    "ConfigError",
    "ConfigIssue",
    "Interrupted",
    "JobImportError",
    "MapFileChanged",
    "MprunError",
    "OutputError",
    "ResultError",
    "ResultsDiffer",
    "ResumeRefused",
    "RunFilesError",
    "RunLocked",
    "TaskFailed",
    "TaskTimeout",
    "UsageError",
    "WorkerCrashed",
    "WorkerStartFailed",
    "exit_code_for",
]

EXIT_OK = 0
EXIT_TASK_FAILED = 1
EXIT_USAGE = 2  # an invalid config or command line; nothing ran
EXIT_IO = 74  # mprun's own output or run files could not be written (EX_IOERR)
EXIT_LOCKED = 75  # another run of the same config holds its lock (EX_TEMPFAIL: try later)
EXIT_INTERRUPTED = 128  # plus the signal's number: 130 SIGINT, 143 SIGTERM


class MprunError(Exception):
    """Base class for every error mprun raises or records on purpose."""

    exit_code = EXIT_USAGE


@dataclass(frozen=True)
class ConfigIssue:
    """One problem in a config, located as precisely as the YAML allows."""

    file: str
    line: int | None
    column: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = self.file
        if self.line is not None:
            where += f":{self.line}:{self.column or 1}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(MprunError):
    """Raised when a config cannot be read or is invalid; carries every issue found."""

    def __init__(self, issues: list[ConfigIssue]) -> None:
        self.issues = issues
        super().__init__("\n".join(str(issue) for issue in issues))


class JobImportError(ConfigError):
    """Raised when a job's ``function`` (or ``reduce``) cannot be imported or is not callable,
    and that is all that is wrong with the config."""


class UsageError(MprunError):
    """Raised when the command line or the run options ask for something impossible."""


class ResumeRefused(UsageError):
    """Raised when ``--resume`` cannot resume the run it names; nothing has run."""


class OutputError(MprunError):
    """Raised when mprun cannot write its own output (stdout: a full disk, a closed
    stream, an encoding that cannot hold the text)."""

    exit_code = EXIT_IO


class RunFilesError(OutputError):
    """Raised (or recorded, mid-run) when a file or folder of the run's own cannot be
    written: the log folder, its lock, a log file, ``results.jsonl``, ``summary.json``
    (a full disk, a read-only or removed folder, a path that is a file or ``/proc``).

    ``path`` is absolute; ``reason`` is the system's words (``No space left on device``).
    """

    def __init__(self, path: str, reason: str) -> None:
        self.path, self.reason = path, reason
        super().__init__(f"cannot write {path}: {reason}")


class RunLocked(MprunError):
    """Raised when another run of the same config holds its lock.

    ``pid``, ``run_id`` and ``started`` describe the holder, as far as its lock
    file says; ``waited`` is how many seconds this run waited for it.
    """

    exit_code = EXIT_LOCKED

    def __init__(self, config: str, *, pid: int | None, run_id: str | None,
                 started: str | None = None, waited: float = 0.0) -> None:
        self.config = config
        self.pid = pid
        self.run_id = run_id
        self.started = started
        self.waited = waited
        who = f"pid {pid if pid is not None else '?'}, run {run_id or '?'}"
        if started:
            who += f", started {started}"
        after = f"; still running after waiting {waited:g}s" if waited > 0 else ""
        super().__init__(f"{config} is already running ({who}){after}")


class TaskFailed(MprunError):
    """Raised (and recorded) when a task gives no result for a reason the runner found,
    not an exception of its own; the base of every such failure."""

    exit_code = EXIT_TASK_FAILED


class WorkerCrashed(TaskFailed):
    """Recorded when the process running a task dies before answering.

    ``exitcode`` is the process's (negative: the signal that killed it) and
    ``cause`` what that probably means.
    """

    def __init__(self, pid: int, exitcode: int | None, cause: str, note: str = "") -> None:
        self.pid, self.exitcode, self.cause = pid, exitcode, cause
        super().__init__(f"worker pid {pid} died running this task: {cause}{note}")

    @property
    def signal(self) -> int | None:
        """The signal that ended the worker, if one did."""
        return -self.exitcode if self.exitcode is not None and self.exitcode < 0 else None


class TaskTimeout(TaskFailed):
    """Recorded when a task runs past its job's ``timeout`` and its worker is stopped."""

    def __init__(self, timeout: float, pid: int, how: str, note: str = "") -> None:
        self.timeout, self.pid, self.how = timeout, pid, how
        super().__init__(f"timed out after {timeout:g}s; its worker (pid {pid}) was {how}{note}")


class WorkerStartFailed(TaskFailed):
    """Recorded when no worker process could be started (or one died while starting)
    to run a task."""


class ClusterLost(TaskFailed):
    """Recorded when a dask task's scheduler went away, or dropped the task, before the
    task answered."""


class ArgumentsError(TaskFailed):
    """Recorded when a task's arguments cannot be sent to its worker process."""


class ResultError(TaskFailed):
    """Recorded when a task's result cannot be sent back to the runner."""


class ResultsDiffer(MprunError):
    """Recorded when a ``compare`` job's modes do not all give the first mode's results."""

    exit_code = EXIT_TASK_FAILED


class MapFileChanged(MprunError):
    """Recorded when a job's map file changed between its check and the reading of its
    items for the run: its tasks not yet sent are not run, nor are later jobs."""

    exit_code = EXIT_TASK_FAILED


class Interrupted(BaseException):
    """Raised in the runner's main thread when SIGINT or SIGTERM arrives.

    A ``BaseException``, like ``KeyboardInterrupt``, so that task code catching
    ``Exception`` does not swallow it in serial mode.
    """

    def __init__(self, signum: int) -> None:
        self.signum = signum
        super().__init__(signum)

    @property
    def exit_code(self) -> int:
        return EXIT_INTERRUPTED + self.signum


def exit_code_for(exc: MprunError | Interrupted) -> int:
    """The exit code the CLI ends with for ``exc``."""
    return exc.exit_code
