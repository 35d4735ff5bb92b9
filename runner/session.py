"""``runner.run()``: one run of one config, from checks to ``summary.json``.

The story of a run, in the order this module tells it::

    run()        the config, checked in one pass (nothing runs if it is invalid)
                 └─ the jobs selected (--only); their backends prepared (the fork
                    server starts); the jobs planned (map files checked, and held
                    open until the run ends)
    lock         one run of a config at a time (runner.runlock); --resume matched
    _Run.execute the run folder, its logging and journal, the shared primitives
                 └─ the backends its modes need, opened once (runner.executors)
                    └─ each job through the Scheduler, under the signal policy
                 the report: status and exit code (runner.report.run_status),
                 summary.json; then logging, journal and backends are closed

Everything that can make a config invalid is checked before the run folder
exists or any job starts, so an invalid config leaves nothing behind and
exits 2. Nothing the run opened outlives ``run()``: a second run in the same
process writes only into its own folder.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import secrets
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import checks, daskconfig, log, runlock, signals, workdir
from runner import context as mp_context
from runner.config import Config, Job
from runner.durations import DEFAULT_DURATIONS, Durations
from runner.errors import Interrupted, RunFilesError, UsageError
from runner.executors import Backends, Executor, RunScope, executor_for
from runner.imports import search_paths
from runner.journal import Journal
from runner.jsonable import dumps_document
from runner.loader import load_config
from runner.observe import JobStart, Observer, Observers
from runner.plan import Plan, plan_job
from runner.redact import is_secret
from runner.report import JobReport, RunReport, files_failed, run_status
from runner.runfiles import RunFiles, cannot_write, write_whole
from runner.scheduler import Scheduler
from runner.shared import array_file_name, snapshot
from runner.worker import WorkerInit

if TYPE_CHECKING:
    from runner.resume import Resumed

__all__ = ["DEFAULT_GRACE", "run", "select_jobs"]

# Seconds running tasks get to finish after the first SIGINT/SIGTERM. Under
# `docker stop` (SIGKILL 10 s after SIGTERM) this leaves time to write the summary.
DEFAULT_GRACE = 5.0


# Run ids are the UTC second and RUN_ID_HEX random hex digits: short to type, and
# unique because the run's folder is created exclusively, with a fresh suffix on a
# clash (runs of different configs share one log folder and one second). Past
# RUN_ID_RETRIES clashes in a row the suffix is twice as long.
RUN_ID_HEX = 4
RUN_ID_RETRIES = 8


def new_run_id(digits: int = RUN_ID_HEX) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex((digits + 1) // 2)[:digits]}"


@dataclass(frozen=True)
class RunOptions:
    """How a run writes and stops, as ``run()``'s keywords say."""

    log_dir: str | os.PathLike[str] | None = "logs"
    log_level: str = "info"
    stdout_to_stderr: bool = False
    grace: float = DEFAULT_GRACE


def run(
    target: str | os.PathLike[str] | Config,
    *,
    only: Sequence[str] | None = None,
    log_dir: str | os.PathLike[str] | None = "logs",
    log_level: str = "info",
    start_method: str | None = None,
    observers: Sequence[Observer] = (),
    stdout_to_stderr: bool = False,
    wait: float = 0.0,
    grace: float = DEFAULT_GRACE,
    resume: str | None = None,
    force: bool = False,
    dask: bool = False,
    dask_scheduler: str | None = None,
    durations: int = DEFAULT_DURATIONS,
) -> RunReport:
    """Run a config (a path or a loaded :class:`Config`) and return its report.

    Raises, with nothing run: :class:`ConfigError` for an invalid config;
    :class:`RunLocked` when another run of the same config file, under the same
    ``log_dir``, still goes after ``wait`` seconds; :class:`ResumeRefused` when
    ``resume`` (an earlier run's folder under ``log_dir``, or ``latest``, whose
    successes are reused) names a run whose tasks differ, unless ``force``.
    :class:`RunFilesError` when the log folder cannot be written (a file, read-only,
    full) before any task ran; after that, such a failure starts no more tasks and is
    in the report (``error``, ``exit_code`` 74). ``log_dir`` is made absolute at once.
    Task failures do not raise: they are in the report (``exit_code`` 1). The
    first SIGINT/SIGTERM starts no more tasks and gives running ones ``grace``
    seconds (0: none); a second signal, or the end of the grace, stops them:
    status ``interrupted``, exit code 130/143. ``observers`` are told of every
    job, chunk and stop as it happens (``runner.observe``). ``dask`` runs process and
    pool jobs in mode dask (on ``dask_scheduler``); ``durations``: ``runner.durations``.
    """
    started = time.perf_counter()
    # Before any job module is imported or task runs: a task's os.chdir() moves nothing.
    log_dir = workdir.settle(target.source if isinstance(target, Config) else target, log_dir)
    config = _scaled(target, only, start_method, dask=dask, scheduler=dask_scheduler)
    selected = select_jobs(config, only)
    context = _context(config, start_method)
    watch = Observers([Durations(durations), *observers])  # first: see runner.durations
    on_wait = partial(watch.waiting_for_lock, config=config.source, wait=wait)
    with _planned(config, selected) as planned, runlock.locked(
            log_dir, config.source, wait=wait, on_wait=on_wait) as lock:
        # Under the lock: the run resumed cannot still be adding results.
        resumed, plans = _resumed(log_dir, resume, config, planned, force)
        options = RunOptions(log_dir, log_level, stdout_to_stderr, grace)
        # A run's seconds do not count the time it waited for the lock.
        return _Run(config, selected, plans, context=context, observers=watch, options=options,
                    resumed=resumed).execute(lock, started=started + lock.waited)


@contextlib.contextmanager
def _planned(config: Config, selected: dict[str, Job]) -> Iterator[dict[str, Plan]]:
    """The selected jobs' plans (their map files checked, and kept open for the run: see
    ``runner.mapfile``), closed when the run ends, or as soon as one cannot be made."""
    with contextlib.ExitStack() as held:
        plans = {}
        for name, job in selected.items():
            plans[name] = plan_job(name, job, Path(config.folder))
            held.callback(plans[name].close)
        yield plans


def _resumed(log_dir: Path | None, resume: str | None, config: Config, plans: dict[str, Plan],
             force: bool) -> tuple[Resumed | None, dict[str, Plan]]:
    """The run ``resume`` names (``runner.resume.match``) and the plans with its results
    to reuse; (None, the plans) without ``resume``."""
    if resume is None:
        return None, plans
    from runner import resume as resuming

    resumed = resuming.match(log_dir, resume, config, plans, force=force)
    return resumed, {name: replace(plan, reused=resumed.reused.get(name, {}))
                     for name, plan in plans.items()}


def _scaled(target: str | os.PathLike[str] | Config, only: Sequence[str] | None,
            start_method: str | None, *, dask: bool, scheduler: str | None) -> Config:
    """The config checked (:func:`_checked`) as ``--dask`` runs it, and checked for what
    dask mode refuses."""
    scale = partial(daskconfig.scaled_out, dask=dask, scheduler=scheduler)
    config = scale(_checked(target, only, start_method, scale))
    daskconfig.check(config, scaled=dask or scheduler is not None)
    return config


def _checked(target: str | os.PathLike[str] | Config, only: Sequence[str] | None,
             start_method: str | None, scale: Callable[[Config], Config]) -> Config:
    """The config, checked in one pass; its backends prepared (for the modes ``scale``
    gives its jobs) as soon as only the job modules' imports are left to check, so that
    the fork server starts meanwhile."""

    def prepare(config: Config) -> None:
        jobs = {name: job for name, job in scale(config).jobs.items()
                if not only or name in only}
        Backends.prepare(_executor_classes(jobs), _context(config, start_method),
                         sorted({job.function for job in jobs.values()}))

    if not isinstance(target, Config):
        return load_config(target, before_imports=prepare)
    checks.raise_problems(target)
    prepare(target)
    return target


def _context(config: Config, start_method: str | None) -> Any:
    """The multiprocessing context: ``--start-method``, else the config's, else the default."""
    return mp_context.get_context(start_method or config.start_method)


def _executor_classes(jobs: dict[str, Job]) -> set[type[Executor]]:
    return {executor_for(mode) for job in jobs.values() for mode in job.modes()}


class _Run:
    """One run, under the config's lock: its folder, logging, jobs and report."""

    def __init__(self, config: Config, selected: dict[str, Job], plans: dict[str, Plan], *,
                 context: Any, observers: Observers, options: RunOptions,
                 resumed: Resumed | None) -> None:
        self.config, self.selected, self.plans = config, selected, plans
        self.context, self.observers, self.options = context, observers, options
        self.resumed = resumed
        self.run_id = new_run_id()
        self.run_dir: Path | None = None
        self.files = RunFiles()  # the first of the run's files that could not be written
        self.array_files: set[str] = set()  # the shared-NAME.bin names taken

    def execute(self, lock: runlock.RunLock, *, started: float) -> RunReport:
        shared: dict[str, Any] = {}  # filled once the run's folder exists
        scope = RunScope(self.context, self._worker_init(shared), signals.Stop(),
                         self.config, self.selected)
        backends = Backends(scope)
        try:
            # First: a backend that cannot be used (a cluster out of reach) is exit 2,
            # with no run folder made and nothing run.
            backends.open(_executor_classes(self.selected))
            signals.run_begins()  # a signal from here on ends the run with its summary
            self.run_id, self.run_dir = _make_run_dir(self.options.log_dir, self.run_id,
                                                      self.config)
            scope.init = self._worker_init(shared)
            lock.describe(self.run_id, self.config.source or self.config.display_name())
            return self._in_folder(backends, shared, started)
        finally:
            backends.close()
            scope.stop.close()

    def _in_folder(self, backends: Backends, shared: dict[str, Any],
                   started: float) -> RunReport:
        """The run, once its folder exists: its logging and journal, its jobs, and the
        report; the backends are closed before the report is written."""
        with self._logging() as logger, contextlib.closing(
                Journal(self._path("results.jsonl"), self.files.failed)) as journal:
            logger.info("run started", config=self.config.source, jobs=list(self.selected),
                        start_method=self.context.get_start_method())
            self._record_tasks(journal)
            self.files.check()  # nothing has run yet: the error alone, no report
            self.observers.run_started(self.run_id, self._path(""))
            # The journal first: what an observer of the caller's sees is on disk already.
            observers = Observers([journal, _RunLog()]).extended(*self.observers.observers)
            try:
                shared.update(backends.build_shared(self.config.shared, self._users()))
                scheduler = Scheduler(backends=backends, observers=observers,
                                      files=self.files)
                reports, signum, final_shared = self._jobs(scheduler, shared)
                described = backends.describe()
            finally:
                backends.close()
            report = self._report(reports, final_shared, signum, time.perf_counter() - started)
            report.backends = described
            logger.info("run finished", status=report.status, exit_code=report.exit_code,
                        seconds=round(report.seconds, 4))
            self._finish(report, observers)
        return report

    def _users(self) -> dict[str, set[type[Executor]]]:
        """Which modes' executors use each shared primitive."""
        users: dict[str, set[type[Executor]]] = {}
        for job in self.selected.values():
            for ref in checks.refs_of(job):
                users.setdefault(ref, set()).update(executor_for(mode) for mode in job.modes())
        return users

    def _finish(self, report: RunReport, observers: Observers) -> None:
        """Tell the observers, and write ``summary.json`` (whole, or not at all). A run
        whose files failed ends ``failed`` with exit 74, its report built from memory."""
        if self.files.error is not None:
            files_failed(report, self.files.error)
        observers.run_finished(report)
        if self.run_dir is None:
            return
        try:
            document = dumps_document(report.as_dict(fragments=True), refused=report.refused)
            write_whole(self.run_dir / "summary.json", document)
            report.document = document  # the CLI's --json prints these bytes
        except RunFilesError as error:
            self.files.failed(error)
            files_failed(report, error)

    def _jobs(self, scheduler: Scheduler, shared: dict[str, Any]
              ) -> tuple[list[JobReport], int | None, dict[str, Any]]:
        """Run the selected jobs in order, under the signal policy (``runner.signals``);
        return their reports, the signal that stopped the run (if one did) and the final
        shared state."""
        stop, grace = scheduler.stop, self.options.grace
        reports: list[JobReport] = []
        with signals.interrupts(stop, grace, lambda signum: self.observers.stopping(signum,
                                                                                    grace)):
            try:
                try:
                    for name, job in self.selected.items():
                        reports.append(scheduler.run_job(name, job, self.plans[name]))
                        if scheduler.done:
                            break
                finally:
                    stop.settle()  # from here on a signal is noted only
            except Interrupted as exc:
                scheduler.interrupted = scheduler.interrupted or exc
            signum = scheduler.interrupted.signum if scheduler.interrupted else stop.signum
            if signum is not None:
                log.logger().warning("interrupted", signal=signum, grace=grace)
            final_shared = snapshot(self.config.shared, shared, self._write_array)
        return reports, signum, final_shared

    def _write_array(self, name: str, data: memoryview) -> str | None:
        """Write a large shared array's raw bytes to ``shared-NAME.bin`` in the run folder
        and return that name; None (nothing written) without a folder, for a secret name,
        or when the file cannot be written (the run's files failed: exit 74)."""
        if self.run_dir is None or is_secret(name):
            return None
        filename = array_file_name(name)
        for number in itertools.count(2):  # "a b" and "a_b" are two names, two files
            if filename not in self.array_files:
                break
            filename = f"{array_file_name(name)[:-4]}-{number}.bin"
        self.array_files.add(filename)
        try:
            write_whole(self.run_dir / filename, data)
        except RunFilesError as error:
            self.files.failed(error)
            return None
        return filename

    def _report(self, reports: list[JobReport], shared: dict[str, Any], signum: int | None,
                seconds: float) -> RunReport:
        status, exit_code = run_status(reports, signum)
        done = {job.name for job in reports}
        report = RunReport(run_id=self.run_id,
                           config=self.config.source or self.config.display_name(),
                           status=status, exit_code=exit_code, seconds=seconds,
                           log_dir=self._path(""), jobs=reports, shared=shared,
                           not_run=[name for name in self.selected if name not in done])
        if self.resumed is not None:
            report.resumed_from, report.resume_notes = self.resumed.run_id, self.resumed.notes
        return report

    @contextlib.contextmanager
    def _logging(self) -> Iterator[Any]:
        """The runner's logging for this run, undone when it ends (``runner.log``)."""
        with log.configured(path=self._path("runner.jsonl"), run_id=self.run_id,
                            process="runner", level=self.options.log_level,
                            on_error=self.files.failed):
            yield log.logger()

    def _record_tasks(self, journal: Journal) -> None:
        """What ``--resume`` needs: this run's tasks, and results taken over from the run
        it resumes (first, so that a run stopped early still has them all)."""
        if self.run_dir:
            from runner.resume import MANIFEST, write_manifest

            try:
                write_manifest(self.run_dir / MANIFEST, self.run_id, self.config, self.plans)
            except OSError as exc:
                self.files.failed(cannot_write(self.run_dir / MANIFEST, exc))
        if self.resumed is not None:
            log.logger().info("resuming", run=self.resumed.run_id, changes=self.resumed.notes,
                              reused={name: len(plan.reused)
                                      for name, plan in self.plans.items()})
            for name, plan in self.plans.items():
                journal.reused(name, plan.reused, self.resumed.run_id)

    def _worker_init(self, shared: dict[str, Any]) -> WorkerInit:
        return WorkerInit(run_id=self.run_id, log_dir=self._path(""),
                          log_level=self.options.log_level,
                          sys_path=search_paths(self.config.folder), shared=shared,
                          functions=sorted({job.function for job in self.selected.values()}),
                          stdout_to_stderr=self.options.stdout_to_stderr,
                          secret_values=self.config.secret_values)

    def _path(self, name: str) -> str | None:
        """A file of the run folder (``""``: the folder itself); None without one."""
        if self.run_dir is None:
            return None
        return str(self.run_dir / name) if name else str(self.run_dir)


class _RunLog(Observer):
    """The runner's own log lines for each job's start and end."""

    def job_started(self, event: JobStart) -> None:
        log.logger(job=event.job).info("job started", mode=event.mode, tasks=event.tasks)

    def job_finished(self, report: JobReport) -> None:
        log.logger(job=report.name).info("job finished", status=report.status, ok=report.ok,
                                         failed=report.failed, seconds=round(report.seconds, 4))


def select_jobs(config: Config, only: Sequence[str] | None) -> dict[str, Job]:
    """The jobs ``--only`` names (all, without it); UsageError for an unknown name."""
    if not only:
        return dict(config.jobs)
    unknown = [name for name in only if name not in config.jobs]
    if unknown:
        raise UsageError(f"--only: no job named {', '.join(map(repr, unknown))} in "
                         f"{config.source or 'the config'} (jobs: {', '.join(config.jobs)})")
    return {name: job for name, job in config.jobs.items() if name in only}


def _make_run_dir(log_dir: str | os.PathLike[str] | None, run_id: str, config: Config
                  ) -> tuple[str, Path | None]:
    """Create the run's folder under ``log_dir``, never one that exists already: on a clash
    ``run_id`` is replaced by a fresh one. Point ``latest`` and ``latest-NAME`` (the
    config's newest run, ``runner.resume.latest_link``) at it. Return the run id and the
    folder; RunFilesError if it cannot be made."""
    from runner.resume import latest_link

    if log_dir is None:
        return run_id, None
    root = Path(log_dir)
    for attempt in itertools.count(1):
        run_dir = root / run_id
        try:
            run_dir.mkdir(parents=True)
            break
        except FileExistsError:
            run_id = new_run_id(RUN_ID_HEX if attempt < RUN_ID_RETRIES else 2 * RUN_ID_HEX)
        except OSError as exc:  # a full disk, a read-only folder, a file in the way
            raise cannot_write(run_dir, exc) from None
    for link in ("latest", latest_link(config)):
        temporary = root / f".{link}-{run_id}"
        try:
            temporary.symlink_to(run_id, target_is_directory=True)
            os.replace(temporary, root / link)  # atomic: readers never see it missing
        except OSError:
            temporary.unlink(missing_ok=True)
    return run_id, run_dir
