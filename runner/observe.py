"""Observers: everything that watches a run, fed by the scheduler and the session.

Data flow::

    executor ── chunk started (setup.started) ──> scheduler ── Started ──┐
    executor ── Outcome ────────────────────────> scheduler ── Finished ─┤
    session  ── run / job / lock / stop events ──────────────────────────┤
                                                                         ▼
                  Observers: [Tally (the job's counts and results), Journal
                  (results.jsonl), the CLI's progress lines, ...]

Events come per chunk, never per task: a chunk of 10,000 map items is one
``Started`` and one ``Finished``. Every method is called in the runner's
main thread, except :meth:`Observer.stopping`, which runs inside a signal
handler and may only do what is safe there (``os.write``, no locks, no
``print``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from runner.work import Outcome, TaskError

if TYPE_CHECKING:
    from runner.report import JobReport, RunReport

__all__ = ["Finished", "JobStart", "Observer", "Observers", "Started", "Tally"]


@dataclass(frozen=True, slots=True)
class JobStart:
    """A job is about to run: in ``mode``, ``workers`` at once, ``tasks`` in all."""

    job: str
    mode: str
    workers: int
    tasks: int
    to_run: int  # tasks not taken over from an earlier run (--resume)


@dataclass(frozen=True, slots=True)
class Started:
    """Tasks ``first .. first + count - 1`` of ``job`` began to run in process ``pid``."""

    job: str
    first: int
    count: int
    pid: int
    time: float  # time.time()
    attempt: int = 1
    mode: str | None = None  # set for the modes of a compare job


@dataclass(frozen=True, slots=True)
class Finished:
    """The chunk that began at ``outcome.first`` answered (values, failures or both)."""

    job: str
    outcome: Outcome
    attempt: int = 1
    mode: str | None = None  # set for the modes of a compare job
    encoded: bytes | None = None  # the values' JSON, when plain (runner.vet.vetted)
    refused: bool = False  # orjson refused the values (runner.vet.vetted)


class Observer:
    """Base class: override the events you watch; the others do nothing."""

    def waiting_for_lock(self, holder: dict[str, Any], config: str | None,
                         wait: float) -> None:
        """Another run of the config holds its lock; this one waits up to ``wait`` s."""

    def run_started(self, run_id: str, run_dir: str | None) -> None:
        """The run has its id and folder; its first job is next."""

    def job_started(self, event: JobStart) -> None:
        """A job (every mode of a compare job) is about to run."""

    def started(self, event: Started) -> None:
        """A chunk began to run."""

    def finished(self, event: Finished) -> None:
        """A chunk answered."""

    def job_finished(self, report: JobReport) -> None:
        """A job ended; ``report`` is what the summary will show of it."""

    def stopping(self, signum: int, grace: float) -> None:
        """The first SIGINT/SIGTERM came: called *in the signal handler*."""

    def run_finished(self, report: RunReport) -> None:
        """The run's report is complete (``summary.json`` is written next)."""


class Observers(Observer):
    """Several observers as one: each event goes to each, in order."""

    def __init__(self, observers: Iterable[Observer] = ()) -> None:
        self.observers = list(observers)

    def extended(self, *more: Observer) -> Observers:
        """These observers, then ``more``."""
        return Observers([*self.observers, *more])

    def waiting_for_lock(self, holder: dict[str, Any], config: str | None,
                         wait: float) -> None:
        for observer in self.observers:
            observer.waiting_for_lock(holder, config, wait)

    def run_started(self, run_id: str, run_dir: str | None) -> None:
        for observer in self.observers:
            observer.run_started(run_id, run_dir)

    def job_started(self, event: JobStart) -> None:
        for observer in self.observers:
            observer.job_started(event)

    def started(self, event: Started) -> None:
        for observer in self.observers:
            observer.started(event)

    def finished(self, event: Finished) -> None:
        for observer in self.observers:
            observer.finished(event)

    def job_finished(self, report: JobReport) -> None:
        for observer in self.observers:
            observer.job_finished(report)

    def stopping(self, signum: int, grace: float) -> None:
        for observer in self.observers:
            observer.stopping(signum, grace)

    def run_finished(self, report: RunReport) -> None:
        for observer in self.observers:
            observer.run_finished(report)


class Tally(Observer):
    """One mode's run of one job, as the summary counts it: the results in task order,
    the failures still standing, and how many tasks answered."""

    def __init__(self, total: int, reused: dict[int, Any]) -> None:
        self.results: list[Any] = [None] * total
        for task, value in reused.items():
            self.results[task] = value
        self.failed: dict[int, TaskError] = {}
        self.completed = len(reused)  # tasks that answered (ok or failed), reused included
        self.refused = False  # whether orjson refused some chunk's values
        # A whole chunk's first task -> its count and its values' JSON (runner.vet's).
        self._encoded: dict[int, tuple[int, bytes]] = {}

    def finished(self, event: Finished) -> None:
        outcome = event.outcome
        end = outcome.first + len(outcome.values)
        self.results[outcome.first:end] = outcome.values
        self.refused = self.refused or event.refused
        if event.encoded is not None and outcome.values and not outcome.errors:
            self._encoded[outcome.first] = (len(outcome.values), event.encoded)
        if event.attempt == 1:
            self.completed += len(outcome.values)
        else:  # a retried task that succeeds is no longer failed
            for task in range(outcome.first, end):
                self.failed.pop(task, None)
        for error in outcome.errors:
            self.failed[error.task] = error

    def encoded_results(self) -> bytes | None:
        """:attr:`results` as JSON, joined from the chunks' own JSON (the bytes the journal
        wrote), when those chunks hold every task in order; else None (a task failed,
        was reused from an earlier run or never ran: the results are written afresh).
        Asked once, when the job ends: the chunks' bytes are let go."""
        encoded, self._encoded = self._encoded, {}
        parts: list[memoryview] = []
        at = 0
        for first in sorted(encoded):
            count, data = encoded[first]
            if first != at:
                return None
            parts.append(memoryview(data)[1:-1])  # the chunk's array, without brackets
            at += count
        if at != len(self.results):
            return None
        return b"[" + b",".join(parts) + b"]"

    @property
    def errors(self) -> list[TaskError]:
        """The failures still standing, in task order."""
        return [self.failed[task] for task in sorted(self.failed)]
