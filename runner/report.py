"""What a run produced: the report objects, the ``--json`` document and the human summary.

Shared primitives with a secret-looking name (``api_token``) show as ``"***"``
in both, and so does every secret value (a secret-named ``${VAR}``'s) inside a
task's error message (``runner.redact``). Results, ``reduced`` and shared
values are data: they are shown as the tasks left them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from runner.errors import EXIT_INTERRUPTED, EXIT_OK, EXIT_TASK_FAILED
from runner.redact import MASK, is_secret, redact
from runner.work import TaskError

__all__ = ["CompareEntry", "JobReport", "RunReport", "job_status", "render", "run_status"]

# How much of a job's results the human summary shows before shortening.
SHOWN_RESULTS = 10
SHOWN_ERRORS = 5
ITEM_WIDTH = 60


@dataclass
class CompareEntry:
    mode: str
    seconds: float
    speedup: float
    same_results: bool

    def as_dict(self) -> dict[str, Any]:
        return {"mode": self.mode, "seconds": round(self.seconds, 4),
                "speedup": round(self.speedup, 3), "same_results": self.same_results}


@dataclass
class JobReport:
    name: str
    mode: str
    workers: int
    status: str  # "ok", "failed" or "interrupted"
    tasks: int
    ok: int
    failed: int
    seconds: float
    results: list[Any]
    reduced: Any = None
    errors: list[TaskError] = field(default_factory=list)
    compare: list[CompareEntry] | None = None
    not_run: int = 0  # tasks never started (an interrupt, or on_error: stop)
    reused: int = 0  # results taken over from an earlier run (--resume)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name, "mode": self.mode, "workers": self.workers,
            "status": self.status, "tasks": self.tasks, "ok": self.ok, "failed": self.failed,
            "not_run": self.not_run, "reused": self.reused,
            "seconds": round(self.seconds, 4),
            "results": self.results, "reduced": self.reduced,
            "errors": [redact(error.as_dict()) for error in self.errors],
            "compare": None if self.compare is None else [c.as_dict() for c in self.compare],
        }


@dataclass
class RunReport:
    run_id: str
    config: str
    status: str  # "ok", "failed" or "interrupted"
    exit_code: int
    seconds: float
    log_dir: str | None
    jobs: list[JobReport]
    shared: dict[str, Any]
    not_run: list[str] = field(default_factory=list)
    resumed_from: str | None = None  # --resume RUN_ID
    resume_notes: list[str] = field(default_factory=list)  # changes --force let through

    def as_dict(self) -> dict[str, Any]:
        """The ``--json`` document (DESIGN.md, "Command line"); also ``summary.json``.

        Values are as the tasks returned them; ``runner.jsonable.dumps_document``
        writes what JSON cannot hold as its ``repr``.
        """
        doc = {
            "run_id": self.run_id, "config": self.config, "status": self.status,
            "exit_code": self.exit_code, "seconds": round(self.seconds, 4),
            "log_dir": self.log_dir,
            "jobs": [job.as_dict() for job in self.jobs],
            "shared": _shown_shared(self.shared),
        }
        if self.not_run:
            doc["not_run"] = list(self.not_run)
        if self.resumed_from:
            doc["resumed_from"] = self.resumed_from
            doc["resume_notes"] = list(self.resume_notes)
        return doc


def job_status(*, interrupted: bool, failed: bool) -> str:
    """A job's status: ``interrupted`` if a signal cut it short, else ``failed`` if a task,
    the reduce or a compare failed, else ``ok``."""
    if interrupted:
        return "interrupted"
    return "failed" if failed else "ok"


def run_status(jobs: list[JobReport], signum: int | None) -> tuple[str, int]:
    """The run's status and exit code, from its jobs and the signal that stopped it (if any).

    The one place that decides them: ``interrupted`` with 128 + the signal, else
    ``failed`` with 1 when any job did not succeed, else ``ok`` with 0.
    """
    if signum is not None:
        return "interrupted", EXIT_INTERRUPTED + signum
    if any(job.status != "ok" for job in jobs):
        return "failed", EXIT_TASK_FAILED
    return "ok", EXIT_OK


def _shown_shared(shared: dict[str, Any]) -> dict[str, Any]:
    return {name: MASK if is_secret(name) else value for name, value in shared.items()}


def _short(value: Any) -> str:
    if isinstance(value, list | tuple) and len(value) > SHOWN_RESULTS:
        # A shared Array of 10^7 items must not be repr'd whole to show 60 characters.
        return format_results(list(value[:SHOWN_RESULTS])).rstrip("]")[: ITEM_WIDTH - 3] \
            + f"... ({len(value):,} items)]"
    text = repr(value)
    return text if len(text) <= ITEM_WIDTH else text[: ITEM_WIDTH - 3] + "..."


def format_results(results: list[Any]) -> str:
    shown = ", ".join(_short(item) for item in results[:SHOWN_RESULTS])
    if len(results) > SHOWN_RESULTS:
        shown += f", ... ({len(results) - SHOWN_RESULTS:,} more)"
    return f"[{shown}]"


def _table(rows: list[list[str]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip() for row in rows]


def render(report: RunReport) -> str:
    """The human summary printed on stdout at the end of a run."""
    lines = [f"{report.config}  run {report.run_id}"
             + (f" (resumes {report.resumed_from})" if report.resumed_from else "")]
    for job in report.jobs:
        lines.append(
            f"  {job.name}: {job.mode}, {job.workers} worker{'s' * (job.workers != 1)}, "
            f"{job.tasks} task{'s' * (job.tasks != 1)}, {job.ok} ok, {job.failed} failed, "
            + (f"{job.not_run} not run, " if job.not_run else "")
            + (f"{job.reused} reused, " if job.reused else "")
            + f"{job.seconds:.2f}s  [{job.status}]")
        lines.append(f"    results: {format_results(job.results)}")
        if job.reduced is not None:
            lines.append(f"    reduced: {_short(job.reduced)}")
        if job.compare:
            rows = [["mode", "seconds", "speedup", "same results"]]
            rows += [[c.mode, f"{c.seconds:.3f}", f"{c.speedup:.2f}x",
                      "yes" if c.same_results else "NO"] for c in job.compare]
            lines += _table(rows, "    ")
        for error in job.errors[:SHOWN_ERRORS]:
            lines.append(f"    task {error.task} failed: {error.type}: {redact(error.message)}"
                         + (f" (after {error.attempts} attempts)" if error.attempts > 1 else ""))
        if len(job.errors) > SHOWN_ERRORS:
            lines.append(f"    ... and {len(job.errors) - SHOWN_ERRORS} more failed tasks "
                         "(see results.jsonl)")
    if report.not_run:
        lines.append(f"  not run: {', '.join(report.not_run)}")
    if report.shared:
        lines.append("  shared:")
        lines += [f"    {name} = {MASK if is_secret(name) else _short(value)}"
                  for name, value in report.shared.items()]
    where = f"  logs: {report.log_dir}" if report.log_dir else ""
    lines.append(f"{report.status} (exit {report.exit_code}) in {report.seconds:.2f}s{where}")
    return "\n".join(lines)
