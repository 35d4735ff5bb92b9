"""``--junit-xml PATH``: the run as JUnit XML, the file CI systems show as test results.

Kept from the events observers get (``runner.observe``), per chunk, never per
task: a testcase per line the journal writes (``runner.journal``): ``JOB[N]``
for a task, ``JOB[FIRST-LAST]`` for a chunk's run of successes, each with its
chunk's seconds. A task's exception is a ``<failure>``; a failure the runner found
(a worker that died, a timeout: ``runner.errors.TaskFailed``) an ``<error>``;
tasks that never ran (``on_error: stop``, an interrupt) a ``<skipped>`` testcase
per range. The file is written at the end whatever the run's status, whole or
not at all (a temporary file renamed over it), so CI reads it even after a
failed or interrupted run.
"""

from __future__ import annotations

import os
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from runner.observe import Finished, JobStart, Observer
from runner.redact import redact
from runner.spans import gaps
from runner.work import TaskError

if TYPE_CHECKING:
    from runner.report import RunReport

__all__ = ["JUnitRecorder", "is_error"]

# Characters XML 1.0 cannot hold even escaped (a task's message may carry them).
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def is_error(error: TaskError) -> bool:
    """Whether the failure is the runner's finding (a crash, a timeout), not the task's
    own exception: JUnit's ``<error>`` rather than ``<failure>``."""
    return error.is_a(("runner.errors.TaskFailed",))


@dataclass
class _Suite:
    """One job's (one compare mode's) lines: first task -> (last task, seconds, error)."""

    name: str  # the job's, or "JOB (MODE)" for a compare job's mode
    tasks: int = 0
    job: str = ""  # a testcase's name: JOB[N]
    lines: dict[int, tuple[int, float, TaskError | None]] = field(default_factory=dict)
    job_errors: list[TaskError] = field(default_factory=list)  # a reduce's, a compare's


class JUnitRecorder(Observer):
    """Collects every run's lines (one command may run several configs), then writes
    them as one ``<testsuites>`` document (:meth:`write`)."""

    def __init__(self) -> None:
        self.suites: list[_Suite] = []
        self._current: dict[tuple[str, str | None], _Suite] = {}
        self._tasks: dict[str, int] = {}  # each started job's task count

    def job_started(self, event: JobStart) -> None:
        self._tasks[event.job] = event.tasks

    def _suite(self, job: str, mode: str | None) -> _Suite:
        key = (job, mode)
        if key not in self._current:
            name = job if mode is None else f"{job} ({mode})"
            self._current[key] = _Suite(name, self._tasks.get(job, 0), job)
        return self._current[key]

    def finished(self, event: Finished) -> None:
        suite = self._suite(event.job, event.mode)
        outcome = event.outcome
        end = outcome.first + len(outcome.values)
        failed = {error.task: error for error in outcome.errors}
        for task, error in failed.items():
            suite.lines[task] = (task, outcome.seconds, error)
        for start, stop in gaps(sorted(failed), end, start=outcome.first):
            for task in range(start, stop):  # a retry's success replaces the failure
                if task != start and task in suite.lines:
                    del suite.lines[task]
            suite.lines[start] = (stop - 1, outcome.seconds, None)

    def run_finished(self, report: RunReport) -> None:
        for name in self._tasks:  # a job none of whose tasks ran: all skipped
            if not any(key[0] == name for key in self._current):
                self._suite(name, None)
        for job in report.jobs:
            errors = [error for error in job.errors if error.task < 0]
            if errors:  # in a suite of its own when the job's lines are per mode
                key = (job.name, None)
                self._current.setdefault(key, _Suite(job.name)).job_errors = errors
        suites = [suite for suite in self._current.values()
                  if suite.lines or suite.job_errors or suite.tasks]
        self.suites += suites + [_Suite(name) for name in report.not_run]
        self._current, self._tasks = {}, {}

    def write(self, path: str | os.PathLike[str]) -> None:
        """The document, written whole to ``path`` (OSError if it cannot be)."""
        root = ET.Element("testsuites")
        totals = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
        seconds = 0.0
        for suite in self.suites:
            element = _suite_element(suite)
            root.append(element)
            for key in totals:
                totals[key] += int(element.get(key, "0"))
            seconds += float(element.get("time", "0"))
        root.attrib.update({key: str(value) for key, value in totals.items()})
        root.set("time", f"{seconds:.3f}")
        ET.indent(root)
        data = ET.tostring(root, encoding="utf-8", xml_declaration=True) + b"\n"
        target = Path(path)
        temporary = target.with_name(f".{target.name}.{os.getpid()}.tmp")
        try:
            temporary.write_bytes(data)
            os.replace(temporary, target)
        finally:
            temporary.unlink(missing_ok=True)


def _suite_element(suite: _Suite) -> ET.Element:
    element = ET.Element("testsuite", name=_clean(suite.name))
    counts = dict.fromkeys(("tests", "failures", "errors", "skipped"), 0)
    seconds = 0.0
    for first in sorted(suite.lines):
        last, took, error = suite.lines[first]
        case = _case(element, suite, first, last, took)
        seconds += took
        if error is not None:
            kind = "errors" if is_error(error) else "failures"
            counts[kind] += 1
            _failure(case, "error" if kind == "errors" else "failure", error)
    for start, stop in _not_run(suite):
        case = _case(element, suite, start, stop - 1, 0.0)
        ET.SubElement(case, "skipped", message="not run (on_error: stop, an interrupt, or "
                                               "reused by --resume)")
        counts["skipped"] += 1
    for error in suite.job_errors:
        case = ET.SubElement(element, "testcase", name=_clean(suite.name),
                             classname=_clean(suite.name), time="0.000")
        _failure(case, "failure", error)
        counts["failures"] += 1
    if not suite.lines and not suite.tasks and not suite.job_errors:  # a job not run
        case = ET.SubElement(element, "testcase", name=_clean(suite.name),
                             classname=_clean(suite.name), time="0.000")
        ET.SubElement(case, "skipped", message="job not run")
        counts["skipped"] += 1
    counts["tests"] = len(element)
    element.attrib.update({key: str(value) for key, value in counts.items()})
    element.set("time", f"{seconds:.3f}")
    return element


def _not_run(suite: _Suite) -> list[tuple[int, int]]:
    """The ``[start, stop)`` ranges of the suite's tasks no line covers."""
    ranges, at = [], 0
    for first in sorted(suite.lines):
        if first > at:
            ranges.append((at, first))
        at = max(at, suite.lines[first][0] + 1)
    if suite.tasks > at:
        ranges.append((at, suite.tasks))
    return ranges


def _case(parent: ET.Element, suite: _Suite, first: int, last: int,
          seconds: float) -> ET.Element:
    job = suite.job or suite.name
    name = f"{job}[{first}]" if first == last else f"{job}[{first}-{last}]"
    return ET.SubElement(parent, "testcase", name=_clean(name), classname=_clean(suite.name),
                         time=f"{seconds:.3f}")


def _failure(case: ET.Element, tag: str, error: TaskError) -> None:
    message = _clean(str(redact(error.message)))
    element = ET.SubElement(case, tag, type=_clean(error.type), message=message)
    element.text = _clean(str(redact(error.traceback))) if error.traceback else message


def _clean(text: str) -> str:
    """``text`` as XML can hold it (ElementTree escapes ``<``, ``&``, quotes)."""
    return _NOT_XML.sub("\ufffd", text)
