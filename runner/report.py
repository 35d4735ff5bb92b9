"""What a run produced: the report objects, the ``--json`` documents, the human summary
and ``--quiet``'s failure lines.

Shared primitives with a secret-looking name (``api_token``) show as ``"***"``
in all of them, and so does every secret value (a secret-named ``${VAR}``'s)
inside a task's error message (``runner.redact``). Results, ``reduced`` and
shared values are data: they are shown as the tasks left them, in the human
summary as JSON writes them (``null``, ``true``, ``"text"``), shortened.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from runner.errors import (
    EXIT_INTERRUPTED,
    EXIT_IO,
    EXIT_OK,
    EXIT_TASK_FAILED,
    EXIT_USAGE,
    ConfigError,
    ConfigIssue,
    Interrupted,
    RunFilesError,
)
from runner.redact import MASK, is_secret, redact
from runner.shared import ArrayFile
from runner.vet import problem as unwritable
from runner.work import TaskError

__all__ = ["CompareEntry", "JobReport", "RunReport", "failure_lines", "files_failed",
           "format_results", "invalid_document", "job_status", "not_run_document", "render",
           "run_status", "validated_document"]

# How much of a job's results the human summary shows before shortening.
SHOWN_RESULTS = 10
SHOWN_ERRORS = 10
SHOWN_SLOWEST = 5  # --durations' default
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
    # The slowest task or chunk lines, slowest first (runner.durations, --durations N).
    slowest: list[dict[str, Any]] = field(default_factory=list)
    # orjson refused some of the results (runner.vet.vetted): not in the document.
    refused: bool = field(default=False, repr=False, compare=False)
    # ``results`` as JSON, joined from the chunks' JSON the journal wrote (Tally), if known.
    encoded_results: bytes | None = field(default=None, repr=False, compare=False)

    def as_dict(self, *, fragments: bool = False) -> dict[str, Any]:
        """This job in the ``--json`` document; with ``fragments``, its results as the JSON
        already made of them, where known (``orjson.Fragment``: written, never parsed)."""
        results: Any = self.results
        if fragments and self.encoded_results is not None:
            import orjson

            results = orjson.Fragment(self.encoded_results)
        return {
            "name": self.name, "mode": self.mode, "workers": self.workers,
            "status": self.status, "tasks": self.tasks, "ok": self.ok, "failed": self.failed,
            "not_run": self.not_run, "reused": self.reused,
            "seconds": round(self.seconds, 4),
            "results": results, "reduced": self.reduced,
            "errors": [redact(error.as_dict()) for error in self.errors],
            "compare": None if self.compare is None else [c.as_dict() for c in self.compare],
            "slowest": list(self.slowest),
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
    # What the run's backends add at the top level (dask mode: "dask", its cluster).
    backends: dict[str, Any] = field(default_factory=dict)
    resume_notes: list[str] = field(default_factory=list)  # changes --force let through
    error: RunFilesError | None = None  # the run's own files could not be written
    # summary.json's bytes as written (the --json document, serialised once); None when
    # it was not written, or the report changed since.
    document: bytes | None = field(default=None, repr=False, compare=False)

    def as_dict(self, *, fragments: bool = False) -> dict[str, Any]:
        """The ``--json`` document (DESIGN.md, "Command line"); also ``summary.json``.

        Values are as the tasks returned them; ``runner.jsonable.dumps_document``
        writes what JSON cannot hold as its ``repr``. ``fragments``: each job's results
        as the JSON the journal wrote of them, where known, so that ``summary.json``
        encodes no result a second time (its results list is then compact).
        """
        doc = {
            "run_id": self.run_id, "config": self.config, "status": self.status,
            "exit_code": self.exit_code, "seconds": round(self.seconds, 4),
            "log_dir": self.log_dir,
            "jobs": [job.as_dict(fragments=fragments) for job in self.jobs],
            "shared": _shown_shared(self.shared),
        }
        doc.update(self.backends)
        if self.not_run:
            doc["not_run"] = list(self.not_run)
        if self.resumed_from:
            doc["resumed_from"] = self.resumed_from
            doc["resume_notes"] = list(self.resume_notes)
        if self.error is not None:
            doc["error"] = {"type": type(self.error).__name__, "path": self.error.path,
                            "message": str(self.error)}
        return doc

    @property
    def refused(self) -> bool:
        """Whether orjson refused some job's results: its document takes the slow path."""
        return any(job.refused for job in self.jobs)


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


def files_failed(report: RunReport, error: RunFilesError) -> None:
    """The run's own files could not be written: status ``failed`` and exit 74 (an
    interrupted run stays ``interrupted``, with its signal's code); the first error kept."""
    report.document = None
    if report.error is None:
        report.error = error
    if report.status != "interrupted":
        report.status, report.exit_code = "failed", EXIT_IO


def _shown_shared(shared: dict[str, Any]) -> dict[str, Any]:
    """Each shared value as the summary writes it: a large array as its file's
    ``{"file", "typecode", "length", "head"}``; a secret name's as ``"***"``."""
    return {name: MASK if is_secret(name) else
            value.as_dict() if isinstance(value, ArrayFile) else _writable(name, value)
            for name, value in shared.items()}


def _shared_line(name: str, value: Any) -> str:
    """``NAME = VALUE`` for the human summary; a large array from its head and length,
    and where its bytes are."""
    if is_secret(name):
        return f"{name} = {MASK}"
    if not isinstance(value, ArrayFile):
        return f"{name} = {_short(value)}"
    head = format_results(value.head).rstrip("]")[: ITEM_WIDTH - 3]
    where = f"in {value.file}" if value.file else "not written to a file"
    return f"{name} = {head}... ({value.length:,} items)]  ({value.typecode!r}, {where})"


def _writable(name: str, value: Any) -> Any:
    """``value``, or a note saying why it cannot be written (an item a task left in a
    queue whose ``__repr__`` raises, say): the summary is written either way."""
    why = unwritable(value, what=f"shared {name}")
    return value if why is None else f"<not written: {why}>"


def _short(value: Any) -> str:
    """``value`` as JSON writes it, at most ``ITEM_WIDTH`` characters (a long list says how
    many items it has)."""
    try:
        length = _length(value)
        if length > SHOWN_RESULTS:
            # A shared Array of 10^7 items must not be written whole to show 60 characters.
            return format_results(_head(value, SHOWN_RESULTS)).rstrip("]")[: ITEM_WIDTH - 3] \
                + f"... ({length:,} items)]"
        text = _json_text(value)
    except Interrupted:
        raise
    except BaseException as exc:  # runner.vet passed it, yet it raised (a second repr)
        return f"<{type(value).__qualname__}: cannot be shown: {type(exc).__qualname__}>"
    return text if len(text) <= ITEM_WIDTH else text[: ITEM_WIDTH - 3] + "..."


def format_results(results: list[Any]) -> str:
    shown = ", ".join(_short(item) for item in results[:SHOWN_RESULTS])
    if len(results) > SHOWN_RESULTS:
        shown += f", ... ({len(results) - SHOWN_RESULTS:,} more)"
    return f"[{shown}]"


# Past this many items (or characters, or levels), what follows cannot reach the
# ITEM_WIDTH characters shown: each item, character or level writes at least one.
_PREVIEW_ITEMS = ITEM_WIDTH + 1


def _json_text(value: Any) -> str:
    """``value`` written as JSON (``runner.jsonable``, as the ``--json`` document writes it),
    with a space after ``,`` and ``:``; a value that JSON cannot hold, as its ``repr``.

    Only a preview is written: lists, mappings and strings cut to what can still
    show in ``ITEM_WIDTH`` characters, so a result holding a huge list costs what a
    small one does.
    """
    from runner.jsonable import WRITTEN_AS_OPTIONS, dumps_compact, written_as, written_by

    preview = _preview(value, _PREVIEW_ITEMS)
    refused: list[Any] = []

    def default(item: Any) -> Any:
        if written_by(item) != "__repr__":
            return written_as(item)  # a date, a dataclass: as the journal writes it
        refused.append(item)
        return _safe_repr(item)

    text = dumps_compact(preview, default, WRITTEN_AS_OPTIONS).decode()
    if refused and refused[0] is preview:  # the value itself is not JSON
        return _safe_repr(value)
    return _spaced(text)


def _preview(value: Any, depth: int) -> Any:
    """``value`` with its lists, mappings and strings cut to ``_PREVIEW_ITEMS`` (and
    nesting cut at ``depth``): the same first ``ITEM_WIDTH`` characters as JSON."""
    if isinstance(value, str):
        return value[:_PREVIEW_ITEMS]
    if _length(value) < 0:
        return value
    if depth <= 0:
        return "..."
    if isinstance(value, dict):
        return {key: _preview(item, depth - 1)
                for key, item in itertools.islice(dict.items(value), _PREVIEW_ITEMS)}
    return [_preview(item, depth - 1) for item in _head(value, _PREVIEW_ITEMS)]


def _length(value: Any) -> int:
    """How many items JSON writes ``value`` with: -1 for a value that is not a list, a
    tuple or a mapping. Read as orjson reads them: a list or dict subclass by its items,
    never its own ``__len__``; a tuple subclass (a namedtuple) as its ``repr``."""
    if isinstance(value, list):
        return list.__len__(value)
    if isinstance(value, dict):
        return dict.__len__(value)
    return len(value) if type(value) is tuple else -1


def _head(value: Any, count: int) -> list[Any]:
    """The first ``count`` items of a list or tuple, as :func:`_length` reads it."""
    return list(itertools.islice(list.__iter__(value) if isinstance(value, list)
                                 else value, count))


def _safe_repr(value: Any) -> str:
    try:
        return repr(value)
    except Exception as exc:  # a detached ORM object, say: the summary still prints
        return f"<{type(value).__qualname__}: __repr__ raised {type(exc).__qualname__}>"


def _spaced(text: str) -> str:
    """Compact JSON with a space after each ``,`` and ``:`` outside strings."""
    if "," not in text and ":" not in text:
        return text
    out: list[str] = []
    in_string = escaped = False
    for char in text:
        out.append(char)
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in ",:":
            out.append(" ")
    return "".join(out)


def _table(rows: list[list[str]], indent: str) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [indent + "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True))
            .rstrip() for row in rows]


def render(report: RunReport, durations: int = SHOWN_SLOWEST) -> str:
    """The human summary printed on stdout at the end of a run; ``durations``: how many
    of the slowest task lines to show (``--durations``)."""
    lines = [f"{report.config}  run {report.run_id}"
             + (f" (resumes {report.resumed_from})" if report.resumed_from else "")]
    for name, described in report.backends.items():  # what a backend says of itself
        lines.append(f"  {name}: " + ", ".join(f"{key} {_short(value)}"
                                                for key, value in described.items()))
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
        lines += _failures(job)
    if report.not_run:
        lines.append(f"  not run: {', '.join(report.not_run)}")
    lines += _slowest_lines(report, durations)
    if report.shared:
        lines.append("  shared:")
        lines += [f"    {_shared_line(name, value)}" for name, value in report.shared.items()]
    if report.error is not None:
        lines.append(f"  error: {report.error}")
    where = f"  logs: {report.log_dir}" if report.log_dir else ""
    lines.append(f"{report.status} (exit {report.exit_code}) in {report.seconds:.2f}s{where}")
    return "\n".join(lines)


def _failures(job: JobReport) -> list[str]:
    """A job's failed tasks (the first ``SHOWN_ERRORS``), each with its attempts."""
    lines = []
    for error in job.errors[:SHOWN_ERRORS]:
        lines.append(f"    task {error.task} failed: {error.type}: {redact(error.message)}"
                     + (f" (after {error.attempts} attempts)" if error.attempts > 1 else ""))
    if len(job.errors) > SHOWN_ERRORS:
        lines.append(f"    ... and {len(job.errors) - SHOWN_ERRORS} more failed tasks "
                     "(see results.jsonl)")
    return lines


def _slowest_lines(report: RunReport, durations: int) -> list[str]:
    """The run's ``durations`` slowest task lines (``runner.durations``), ``JOB[N] 1.23s``."""
    from runner.durations import line_name

    entries = sorted(((entry["seconds"], line_name(job.name, entry)) for job in report.jobs
                      for entry in job.slowest), key=lambda pair: -pair[0])[:max(durations, 0)]
    if not entries:
        return []
    return ["  slowest:", *(f"    {name} {seconds:.2f}s" for seconds, name in entries)]


def failure_lines(report: RunReport, config: str | None = None) -> list[str]:
    """``--quiet``'s output: one line per failed task, ``mprun: JOB[TASK] failed: Type:
    message`` (``JOB failed:`` for a job's reduce or compare), secrets masked; with
    ``config`` (several configs on the command line) ``mprun: CONFIG: JOB[TASK] ...``."""
    prefix = f"mprun: {config}: " if config else "mprun: "
    lines = []
    for job in report.jobs:
        for error in job.errors:
            where = f"{job.name}[{error.task}]" if error.task >= 0 else job.name
            message = redact(error.message).replace("\r", "\\r").replace("\n", "\\n")
            lines.append(f"{prefix}{where} failed: {error.type}: {message}"
                         + (f" (after {error.attempts} attempts)" if error.attempts > 1 else ""))
    return lines


def invalid_document(config: str | None, problems: Sequence[ConfigIssue | Exception | str], *,
                     status: str = "invalid", exit_code: int = EXIT_USAGE) -> dict[str, Any]:
    """The ``--json`` document of a config that did not run because of a problem of its
    own: ``{"config", "status": "invalid", "exit_code": 2, "errors": [{"file", "line",
    "column", "path", "message"}]}``. A config error gives an entry per issue; any other
    problem (an unknown ``--only`` job, a lock held) one entry with only a message
    (``file`` is the config, ``line``/``column`` null, ``path`` empty). Without a
    ``config`` (the command line itself is wrong) the document has no ``config`` key."""
    errors: list[dict[str, Any]] = []
    for problem in problems:
        issues = problem.issues if isinstance(problem, ConfigError) else [problem]
        errors += [{"file": issue.file, "line": issue.line, "column": issue.column,
                    "path": issue.path, "message": issue.message}
                   if isinstance(issue, ConfigIssue) else
                   {"file": config, "line": None, "column": None, "path": "",
                    "message": str(issue)} for issue in issues]
    doc: dict[str, Any] = {} if config is None else {"config": config}
    doc.update(status=status, exit_code=exit_code, errors=errors)
    return dict(redact(doc))


def not_run_document(config: str, exit_code: int) -> dict[str, Any]:
    """The ``--json`` document of a valid config that did not run: another config given
    with it is invalid (``exit_code`` 2), or the run was interrupted before it (130, 143)."""
    return {"config": config, "status": "not_run", "exit_code": exit_code, "errors": []}


def validated_document(config: str, jobs: list[str]) -> dict[str, Any]:
    """``mprun validate --json``'s document for a valid config."""
    return {"config": config, "status": "ok", "exit_code": EXIT_OK, "jobs": jobs, "errors": []}
