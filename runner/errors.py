"""One exception tree for mprun.

The CLI catches :class:`MprunError` only and maps each branch to an exit code
(see ``runner.cli``). Task failures inside a run are *recorded*, not raised:
the classes below that describe them (:class:`TaskFailed`,
:class:`WorkerCrashed`) are what a report's ``errors`` entries are made of.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "ConfigError",
    "ConfigIssue",
    "Interrupted",
    "JobImportError",
    "MprunError",
    "RunLocked",
    "TaskFailed",
    "UsageError",
    "WorkerCrashed",
]


class MprunError(Exception):
    """Base class for every error mprun raises on purpose."""


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
    """Raised when a job's ``function`` (or ``reduce``) cannot be imported or is not callable."""


class UsageError(MprunError):
    """Raised when the command line or the run options ask for something impossible."""


class RunLocked(MprunError):
    """Raised when another run of the same config holds its lock (the CLI exits 75).

    ``pid``, ``run_id`` and ``started`` describe the holder, as far as its lock
    file says; ``waited`` is how many seconds this run waited for it.
    """

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
    """Raised (and recorded) when a task's function raises."""


class WorkerCrashed(MprunError):
    """Raised (and recorded) when the process running a task dies before answering."""


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
        return 128 + self.signum
