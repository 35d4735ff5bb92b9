"""GitHub Actions: the run as a Markdown step summary, and its failures as annotations.

GitHub shows the file ``$GITHUB_STEP_SUMMARY`` names on the run's page, each
step appending its own part: so the summary is appended, never written over
(``--summary-md PATH`` does the same anywhere). With ``GITHUB_ACTIONS=true``
each failure (the first ``ANNOTATED``) becomes an ``::error`` workflow command on
stderr, which GitHub pins to the job's line in the config file.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from runner.durations import line_name
from runner.redact import redact

if TYPE_CHECKING:
    from runner.report import RunReport

__all__ = ["ANNOTATED", "error_lines", "markdown"]

ANNOTATED = 10  # GitHub shows at most 10 error annotations per step
SHOWN_FAILURES = 10


def markdown(report: RunReport, durations: int) -> str:
    """The run's summary: status, a table of its jobs, its failures with their rerun
    commands, and its ``durations`` slowest task lines."""
    mark = {"ok": "✅", "failed": "❌"}.get(report.status, "⚠️")
    lines = [f"### {mark} mprun `{_code(report.config)}`: {report.status} "
             f"(exit {report.exit_code}) in {report.seconds:.2f}s", "",
             "| job | mode | tasks | ok | failed | seconds |",
             "| --- | --- | ---: | ---: | ---: | ---: |"]
    lines += [f"| {_cell(job.name)} | {job.mode} | {job.tasks} | {job.ok} | {job.failed} | "
              f"{job.seconds:.2f} |" for job in report.jobs]
    lines += [f"| {_cell(name)} | | | | | not run |" for name in report.not_run]
    failures = [(job.name, error) for job in report.jobs for error in job.errors]
    if failures:
        lines += ["", "**Failures**", ""]
        for job, error in failures[:SHOWN_FAILURES]:
            where = f"{job}[{error.task}]" if error.task >= 0 else job
            lines.append(f"- `{_code(where)}` {_cell(error.type)}: "
                         f"{_cell(_one_line(redact(error.message)))}"
                         + (f" (after {error.attempts} attempts)" if error.attempts > 1 else ""))
        if len(failures) > SHOWN_FAILURES:
            lines.append(f"- and {len(failures) - SHOWN_FAILURES} more")
    slowest = sorted(((entry["seconds"], line_name(job.name, entry)) for job in report.jobs
                      for entry in job.slowest), key=lambda pair: -pair[0])[:durations]
    if slowest:
        lines += ["", "**Slowest**", ""]
        lines += [f"- `{_code(name)}` {seconds:.2f}s" for seconds, name in slowest]
    return "\n".join(lines) + "\n\n"


def error_lines(report: RunReport, job_lines: dict[str, int | None]) -> list[str]:
    """``::error file=CONFIG,line=LINE::JOB[N] Type: message`` for the first failures;
    ``job_lines``: the line of each job's key in the config file."""
    out = []
    failures = [(job.name, error) for job in report.jobs for error in job.errors]
    for job, error in failures[:ANNOTATED]:
        properties = f"file={_property(report.config)}"
        line = job_lines.get(job)
        if line is not None:
            properties += f",line={line}"
        where = f"{job}[{error.task}]" if error.task >= 0 else job
        message = f"{where} {error.type}: {redact(error.message)}"
        out.append(f"::error {properties}::{_data(message)}")
    return out


def _data(text: str) -> str:
    """A workflow command's message, escaped as GitHub's runner unescapes it."""
    return text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def _property(text: str) -> str:
    return _data(text).replace(":", "%3A").replace(",", "%2C")


def _one_line(text: str) -> str:
    return text.replace("\r", "\\r").replace("\n", "\\n")


def _cell(text: str) -> str:
    """Text for a Markdown table cell or list item: no line breaks, no column bars,
    no HTML."""
    return (_one_line(text).replace("&", "&amp;").replace("|", "\\|").replace("<", "&lt;")
            .replace(">", "&gt;"))


def _code(text: str) -> str:
    return _one_line(text).replace("`", "'")
