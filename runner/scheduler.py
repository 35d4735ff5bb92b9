"""Runs jobs through executors; everything that is the same for every mode.

Data flow for one job::

    Plan ── chunks ──> executor (its mode's class) ── started / outcomes, any order ──┐
                        borrows the run's backend                                     │
    Observers <── Started(job, first, count, pid, time) / Finished(vetted outcome) ───┘
      Tally (results in task order, failures, counts), Journal (results.jsonl), the CLI ...
    then retry rounds (each failed task that ``retry_on`` names again, as a chunk of
    its own), reduce, compare, and the JobReport.

Each outcome is vetted first (``runner.vet``): a result that cannot be written as
JSON fails its own task before the tally or the journal sees it.

The scheduler never asks which mode it runs: the executor class says how many
workers it takes and whether map items travel in chunks, and the run's
:class:`~runner.executors.Backends` lends it what the mode opened for the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from multiprocessing.connection import wait
from typing import Any

from runner import log
from runner.config import Job
from runner.errors import Interrupted, MapFileChanged, ResultError, ResultsDiffer
from runner.executors import Backends, Executor, executor_for
from runner.observe import Finished, JobStart, Observers, Started, Tally
from runner.plan import Plan, auto_chunksize
from runner.reducers import REDUCERS, reduce
from runner.report import CompareEntry, JobReport, job_status
from runner.runfiles import RunFiles
from runner.signals import Stop
from runner.vet import problem, vetted
from runner.work import Chunk, TaskError

__all__ = ["Scheduler", "chunksize_for"]


@dataclass
class _ModeRun:
    """One mode's run of a job."""

    tally: Tally
    seconds: float
    workers: int
    interrupted: Interrupted | None = None
    # Why the job's tasks could not all be handed out (a map file that changed).
    problems: list[TaskError] = field(default_factory=list)


def chunksize_for(cls: type[Executor], job: Job, plan: Plan, workers: int) -> int:
    """How many consecutive tasks go to a worker at once. A ``timeout`` does not change
    it: it is enforced per task inside a chunk (``runner.executors.timeouts``), unless the
    mode cannot time items inside a chunk (dask): then each task is its own chunk."""
    if plan.call.kind != "map" or not cls.chunks_map_items:
        return 1
    if job.timeout is not None and not cls.times_items_in_chunks:
        return 1
    if job.chunksize != "auto":
        return job.chunksize
    return auto_chunksize(plan.to_run, workers)


class Scheduler:
    """Runs one job at a time; remembers an interrupt or a stop so the caller can end."""

    def __init__(self, *, backends: Backends, observers: Observers,
                 files: RunFiles | None = None) -> None:
        self.backends = backends
        self.observers = observers
        self.stop = backends.scope.stop
        self.files = files or RunFiles()
        self.interrupted: Interrupted | None = None
        # A job with on_error: stop failed, or the run's files cannot be written: run no more.
        self.stopped = False

    @property
    def done(self) -> bool:
        """Whether the run must start no further job."""
        return (self.interrupted is not None or self.stopped or self.stop.requested
                or self.files.error is not None)

    def run_job(self, name: str, job: Job, plan: Plan) -> JobReport:
        modes = job.modes()
        cls = executor_for(modes[0])
        self.observers.job_started(JobStart(name, modes[0], cls.workers_for(job.worker_count()),
                                            len(plan), plan.to_run))
        runs = []
        for mode in modes:
            run = self._run_mode(name, job, plan, mode, tag=mode if len(modes) > 1 else None)
            runs.append(run)
            self.interrupted = self.interrupted or run.interrupted
            if self.interrupted is not None or self.stopped:
                break
        report = self._job_report(name, job, plan, modes, runs)
        self.observers.job_finished(report)
        return report

    def _run_mode(self, name: str, job: Job, plan: Plan, mode: str,
                  tag: str | None) -> _ModeRun:
        cls = executor_for(mode)
        tally = Tally(len(plan), plan.reused)
        observers = Observers([tally, *self.observers.observers])

        def started(chunk: Chunk, pid: int) -> None:
            observers.started(Started(name, chunk.first, len(chunk.items), pid, time.time(),
                                      chunk.attempt, tag))

        setup = self.backends.setup(cls, job.worker_count(), started, fresh=tag is not None)
        began = time.perf_counter()
        interrupted, retries_cut = None, False
        problems: list[TaskError] = []
        feed = self._feed(name, problems)
        try:
            with cls(setup) as executor:
                chunks = feed(plan.chunks(chunksize_for(cls, job, plan, setup.workers)))
                retries_cut = self._attempts(executor, chunks, name=name, job=job, plan=plan,
                                             observers=observers, tally=tally, tag=tag,
                                             feed=feed)
        except Interrupted as exc:
            interrupted = exc
        if self.stop.requested:
            self.stop.settle()  # nothing runs any more: the grace period is over
            if interrupted is None and (tally.completed < len(plan) or retries_cut):
                # Stopped by a signal, and every running task ended within the grace
                # period. (A job whose every task ran, retries included, is whole: only
                # the run is interrupted.)
                interrupted = Interrupted(self.stop.signum or 0)
        return _ModeRun(tally, time.perf_counter() - began, setup.workers, interrupted,
                        problems)

    def _feed(self, name: str, problems: list[TaskError]
              ) -> Callable[[Iterable[Chunk]], Iterator[Chunk]]:
        """The chunks an executor pulls, ended early if a map file changed since it was
        checked: the chunks already out finish, none more starts, the run stops, and the
        job fails with that error (``problems``) instead of running other items."""
        def feed(chunks: Iterable[Chunk]) -> Iterator[Chunk]:
            try:
                yield from chunks
            except MapFileChanged as exc:
                log.logger(job=name).error("map file changed", error=str(exc))
                problems.append(TaskError.of(-1, exc))
                self.stopped = True
        return feed

    def _attempts(self, executor: Executor, chunks: Iterable[Chunk], *, name: str, job: Job,
                  plan: Plan, observers: Observers, tally: Tally, tag: str | None,
                  feed: Callable[[Iterable[Chunk]], Iterator[Chunk]]) -> bool:
        """Run ``chunks``, then a retry round per attempt left while tasks fail.

        Only failures that ``retry_on`` names are retried; any other failure is final
        on the attempt it happened (and stops the run at once under ``on_error: stop``).
        Returns whether a stop came while failed tasks still had attempts left.
        """
        def final(error: TaskError) -> bool:  # no attempt left, or not a failure to retry
            return error.attempts > job.retries or (
                job.retry_on is not None and not error.is_a(job.retry_on))

        for attempt in range(1, job.retries + 2):
            last_try = attempt > job.retries
            for answer in executor.run(chunks):
                # Before anything counts or writes it; the journal reuses the JSON.
                outcome, encoded, refused = vetted(answer, name, attempt)
                observers.finished(Finished(name, outcome, attempt, tag, encoded, refused))
                if self.files.error is not None or (job.on_error == "stop" and outcome.errors and (
                        last_try or any(map(final, outcome.errors)))):
                    self.stopped = True
                    break
            if self.stopped:  # on_error: stop, or the files failed: what still runs is cut short
                executor.close(cancel=True)
            # Failures of earlier rounds that were final stay final: only the rest go on.
            again = sorted(task for task, error in tally.failed.items() if not final(error))
            if self.stop.requested:
                return bool(again)
            if self.stopped or last_try or not again:
                return False
            chunks = feed(self._retry_round(name, job, plan, again, attempt))
        return False

    def _retry_round(self, name: str, job: Job, plan: Plan, tasks: list[int],
                     attempt: int) -> Iterator[Chunk]:
        """Wait out the retry delay, then one chunk per failed task, as attempt + 1, each
        item read as its chunk is asked for (a map file's, from its segment)."""
        delay = job.retry_delay * job.retry_backoff ** (attempt - 1)
        log.logger(job=name).info("retrying failed tasks", tasks=len(tasks),
                                  attempt=attempt + 1, delay=delay)
        if delay:
            wait([self.stop.fileno()], delay)  # a stop request ends the wait
        return (Chunk(plan.call, task, plan.items[task:task + 1], attempt + 1) for task in tasks)

    def _job_report(self, name: str, job: Job, plan: Plan, modes: list[str],
                    runs: list[_ModeRun]) -> JobReport:
        first = runs[0]
        compare = _compare(modes, runs) if len(modes) > 1 else None
        errors = first.tally.errors
        failed_count = len(errors)
        errors += first.problems
        if compare:
            errors += [TaskError.of(-1, ResultsDiffer(
                f"mode {entry.mode} gave different results from {modes[0]} "
                f"({len(run.tally.failed)} failed tasks)"))
                for entry, run in zip(compare[1:], runs[1:], strict=False)
                if not entry.same_results]
        reduced = None
        try:
            reduced = self._reduce(job, first.tally, self.stop)
        except Interrupted as exc:  # --grace 0: the first signal came during the reduce
            self.interrupted = self.interrupted or exc
        except Exception as exc:
            errors.append(TaskError(-1, type(exc).__qualname__, f"reduce failed: {exc}"))
        # The run's files failed during this job: its results are not all on disk.
        cut_short = self.files.error is not None
        unwritable = None if reduced is None else problem(reduced)
        if unwritable is not None:  # a reducer of its own returned it
            errors.append(TaskError.of(-1, ResultError(f"reduce failed: {unwritable}")))
            reduced = None
        return JobReport(
            name=name, mode=modes[0], workers=first.workers,
            status=job_status(interrupted=self.interrupted is not None,
                              failed=bool(errors) or cut_short),
            tasks=len(plan), ok=first.tally.completed - failed_count, failed=failed_count,
            not_run=len(plan) - first.tally.completed, reused=len(plan.reused),
            seconds=sum(run.seconds for run in runs), results=first.tally.results,
            reduced=reduced, errors=errors, compare=compare,
            refused=first.tally.refused, encoded_results=first.tally.encoded_results(),
        )

    @staticmethod
    def _reduce(job: Job, tally: Tally, stop: Stop) -> Any:
        if job.reduce is None:
            return None
        if tally.failed:
            values = [value for index, value in enumerate(tally.results)
                      if index not in tally.failed]
        elif job.reduce in REDUCERS:  # the common case: no copy of a million results
            values = tally.results
        else:  # a reducer of its own may sort or empty its list: the results stay as they came
            values = list(tally.results)
        if not values:
            return None
        with stop.job_code():
            return reduce(job.reduce, values)


def _compare(modes: list[str], runs: list[_ModeRun]) -> list[CompareEntry]:
    first = runs[0]
    return [CompareEntry(mode, run.seconds, first.seconds / run.seconds if run.seconds else 0.0,
                         _same(run.tally.results, first.tally.results) and not run.tally.failed)
            for mode, run in zip(modes, runs, strict=False)]


def _same(results: list[Any], first: list[Any]) -> bool:
    """Whether two modes gave equal results; a comparison that raises (numpy arrays:
    "the truth value of an array is ambiguous") is a difference, not the runner's end."""
    try:
        return bool(results == first)
    except Interrupted:
        raise
    except BaseException:
        return False
