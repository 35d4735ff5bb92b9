"""Runs jobs through executors; everything that is the same for every mode.

Data flow for one job::

    Plan ── chunks ──> executor_for(mode) ── outcomes (any order) ──┐
    results[first:first+n] = values  <──────────────────────────────┤
    journal.record(outcome)          <──────────────────────────────┘
    then reduce, compare, and the JobReport.

The scheduler never asks which mode it runs: the executor mapping decides.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from multiprocessing.connection import wait
from typing import Any

from runner import imports, log
from runner.config import Job
from runner.errors import Interrupted
from runner.executors import ExecutorSetup, executor_for
from runner.journal import Journal
from runner.plan import Plan, auto_chunksize
from runner.report import CompareEntry, JobReport
from runner.signals import Stop
from runner.work import Chunk, TaskError
from runner.worker import WorkerInit

__all__ = ["Scheduler"]

_REDUCERS: dict[str, Callable[[list[Any]], Any]] = {
    "sum": sum,
    "min": min,
    "max": max,
    "count": len,
    "mean": statistics.fmean,
    "list": list,
}


@dataclass
class _ModeRun:
    results: list[Any]
    errors: list[TaskError]
    seconds: float
    workers: int
    completed: int
    interrupted: Interrupted | None = None


class Scheduler:
    """Runs one job at a time; remembers an interrupt so the caller can stop."""

    def __init__(self, *, context: Any, init: WorkerInit, journal: Journal,
                 before_processes: Callable[[], None] | None = None,
                 stop: Stop | None = None) -> None:
        self.context = context
        self.init = init
        self.journal = journal
        self.stop = stop if stop is not None else Stop()
        self.interrupted: Interrupted | None = None
        self.stopped = False  # a job with on_error: stop failed: run no more
        self._before_processes = before_processes

    def run_job(self, name: str, job: Job, plan: Plan) -> JobReport:
        modes = job.modes()
        runs = []
        for mode in modes:
            run = self._run_mode(name, job, plan, mode, tag=mode if len(modes) > 1 else None)
            runs.append(run)
            if run.interrupted is not None:
                self.interrupted = run.interrupted
                break
            if self.stopped:
                break
        first = runs[0]
        compare = None
        if len(modes) > 1:
            compare = [CompareEntry(mode, run.seconds,
                                    first.seconds / run.seconds if run.seconds else 0.0,
                                    run.results == first.results and not run.errors)
                       for mode, run in zip(modes, runs, strict=False)]
        errors = list(first.errors)
        failed_count = len(errors)
        status = "ok"
        if self.interrupted is not None:
            status = "interrupted"
        elif errors or (compare and not all(c.same_results for c in compare)):
            status = "failed"
        if compare:
            for entry, run in zip(compare[1:], runs[1:], strict=False):
                if not entry.same_results:
                    errors.append(TaskError(-1, "ResultsDiffer",
                                            f"mode {entry.mode} gave different results from "
                                            f"{modes[0]} ({len(run.errors)} failed tasks)"))
        reduced = None
        try:
            reduced = self._reduce(job, first)
        except Interrupted as exc:  # --grace 0: the first signal came during the reduce
            self.interrupted = self.interrupted or exc
            status = "interrupted"
        except Exception as exc:
            status = "failed" if status == "ok" else status
            errors.append(TaskError(-1, type(exc).__qualname__, f"reduce failed: {exc}"))
        return JobReport(
            name=name, mode=modes[0], workers=first.workers, status=status, tasks=len(plan),
            ok=first.completed - failed_count, failed=failed_count,
            not_run=len(plan) - first.completed, reused=len(plan.reused),
            seconds=sum(run.seconds for run in runs), results=first.results, reduced=reduced,
            errors=errors, compare=compare,
        )

    def _run_mode(self, name: str, job: Job, plan: Plan, mode: str,
                  tag: str | None) -> _ModeRun:
        executor_cls = executor_for(mode)
        workers = 1 if mode == "serial" else job.worker_count()
        if mode in ("process", "pool") and self._before_processes is not None:
            self._before_processes()
        if plan.call.kind != "map" or not executor_cls.chunks_map_items \
                or job.timeout is not None:
            # Process mode is one process per task; a timeout is per task, so it needs
            # the worker to hold one task at a time.
            chunksize = 1
        elif job.chunksize != "auto":
            chunksize = job.chunksize
        else:
            chunksize = auto_chunksize(plan.to_run, workers)
        results: list[Any] = [None] * len(plan)
        for task, value in plan.reused.items():
            results[task] = value
        failed: dict[int, TaskError] = {}
        completed = len(plan.reused)
        started = time.perf_counter()
        interrupted = None
        retries_cut = False  # a stop came while failed tasks still had retries
        setup = ExecutorSetup(workers=workers, context=self.context, init=self.init,
                              stop=self.stop)
        try:
            with executor_cls(setup) as executor:
                chunks: Iterable[Chunk] = plan.chunks(chunksize)
                for attempt in range(1, job.retries + 2):
                    last_try = attempt > job.retries
                    for outcome in executor.run(chunks):
                        end = outcome.first + len(outcome.values)
                        results[outcome.first:end] = outcome.values
                        if attempt == 1:
                            completed += len(outcome.values)
                        else:  # a retried task that succeeds is no longer failed
                            for task in range(outcome.first, end):
                                failed.pop(task, None)
                        for error in outcome.errors:
                            failed[error.task] = error
                        self.journal.record(name, outcome, attempt=attempt, mode=tag)
                        if outcome.errors and last_try and job.on_error == "stop":
                            self.stopped = True
                            break
                    if self.stop.requested:  # failed tasks with attempts left were cut
                        retries_cut = any(error.attempts <= job.retries
                                          for error in failed.values())
                    if self.stopped or last_try or not failed or self.stop.requested:
                        break
                    chunks = self._retry_round(name, job, plan, sorted(failed), attempt)
                if self.stopped:  # on_error: stop: what still runs is cut short
                    executor.close(cancel=True)
        except Interrupted as exc:
            interrupted = exc
        if self.stop.requested:
            self.stop.settle()  # nothing runs any more: the grace period is over
        if interrupted is None and self.stop.signum is not None and (
                completed < len(plan) or retries_cut):
            # Stopped by a signal, and every running task ended within the grace period.
            # (A job whose every task ran, retries included, is whole: only the run is
            # interrupted.)
            interrupted = Interrupted(self.stop.signum)
        errors = [failed[task] for task in sorted(failed)]
        return _ModeRun(results, errors, time.perf_counter() - started, workers, completed,
                        interrupted)

    def _retry_round(self, name: str, job: Job, plan: Plan, tasks: list[int],
                     attempt: int) -> list[Chunk]:
        """Wait out the retry delay, then one chunk per failed task, as attempt + 1."""
        delay = job.retry_delay * job.retry_backoff ** (attempt - 1)
        log.logger(job=name).info("retrying failed tasks", tasks=len(tasks),
                                  attempt=attempt + 1, delay=delay)
        if delay:
            wait([self.stop.fileno()], delay)  # a stop request ends the wait
        return [Chunk(plan.call, task, plan.items[task:task + 1], attempt + 1) for task in tasks]

    def _reduce(self, job: Job, run: _ModeRun) -> Any:
        if job.reduce is None:
            return None
        if run.errors:
            failed = {error.task for error in run.errors}
            values = [value for index, value in enumerate(run.results) if index not in failed]
        else:  # the common case: no copy of a million results
            values = run.results
        if not values:
            return None
        if job.reduce in _REDUCERS:
            return _REDUCERS[job.reduce](values)
        return imports.resolve(job.reduce)(values)
