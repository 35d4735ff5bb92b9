"""``runner.run()``: one run of one config, from checks to ``summary.json``.

Order matters: everything that can make a config invalid (functions, map
files, ``--only``) is checked before the run folder exists or any job starts,
so an invalid config leaves nothing behind and exits 2. Then the config's run
lock is taken (``runner.runlock``: one run of a config at a time), and held
until the run's report is written.
"""

from __future__ import annotations

import os
import secrets
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner import context as mp_context
from runner import imports, log, runlock, signals
from runner.config import Config, problems
from runner.errors import ConfigError, Interrupted, UsageError
from runner.journal import Journal
from runner.jsonable import dumps_document
from runner.loader import load_config, locate_issue, raise_import_problems, search_paths
from runner.plan import Plan, plan_job
from runner.report import JobReport, RunReport
from runner.scheduler import Scheduler
from runner.shared import build, snapshot
from runner.worker import WorkerInit

if TYPE_CHECKING:
    from runner.resume import Resumed

__all__ = ["DEFAULT_GRACE", "Progress", "run"]

# Seconds running tasks get to finish after the first SIGINT/SIGTERM. Under
# `docker stop` (SIGKILL 10 s after SIGTERM) this leaves time to write the summary.
DEFAULT_GRACE = 5.0

Progress = Callable[[str, dict[str, Any]], None]


def new_run_id() -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{secrets.token_hex(2)}"


def run(
    target: str | os.PathLike[str] | Config,
    *,
    only: Sequence[str] | None = None,
    log_dir: str | os.PathLike[str] | None = "logs",
    log_level: str = "info",
    start_method: str | None = None,
    progress: Progress | None = None,
    stdout_to_stderr: bool = False,
    wait: float = 0.0,
    grace: float = DEFAULT_GRACE,
    resume: str | None = None,
    force: bool = False,
) -> RunReport:
    """Run a config (a path or a loaded :class:`Config`) and return its report.

    Raises :class:`ConfigError` (nothing has run) for an invalid config, and
    :class:`RunLocked` (nothing has run) when another run of the same config
    file, under the same ``log_dir``, is still going after ``wait`` seconds.
    Task failures do not raise: they are in the report, whose ``exit_code``
    is 1. The first SIGINT/SIGTERM starts no more tasks and gives running
    ones ``grace`` seconds to finish (0: stop them at once); a second signal, or
    the end of the grace period, stops them. The run then ends with status
    ``interrupted`` and exit code 130/143.

    ``resume`` names an earlier run (a folder under ``log_dir``, or ``latest``)
    whose successful tasks are not run again (``runner.resume``); it raises
    :class:`~runner.resume.ResumeRefused` (nothing has run) when that run's
    tasks differ from the config's, unless ``force``.
    """
    started = time.perf_counter()
    if isinstance(target, Config):
        config = target
        _raise_problems(config)
    else:
        config = load_config(target, check_functions=False)
    selected = _select(config, only)
    imports.add_paths(search_paths(config))
    context = mp_context.get_context(start_method or config.start_method)
    uses_processes = any(m in ("process", "pool") for job in selected.values()
                         for m in job.modes())
    forkserver = mp_context.warm_forkserver(
        context, sorted({job.function.partition(":")[0] for job in config.jobs.values()})
    ) if uses_processes else None
    raise_import_problems(config)
    base = Path(config.source).parent if config.source else Path.cwd()
    plans = {name: plan_job(name, job, base) for name, job in selected.items()}
    _check_picklable(config, selected, plans)

    def on_wait(holder: dict[str, Any]) -> None:
        if progress:
            progress("waiting for lock", {**holder, "config": config.source, "wait": wait})

    with runlock.locked(log_dir, config.source, wait=wait, on_wait=on_wait) as lock:
        resumed = None
        if resume is not None:  # under the lock: that run cannot still be adding results
            from runner import resume as resuming

            resumed = resuming.match(log_dir, resume, config, plans, force=force)
            plans = {name: replace(plan, reused=resumed.reused.get(name, {}))
                     for name, plan in plans.items()}
        # A run's seconds do not count the time it waited for the lock.
        return _run_config(config, selected, plans, lock=lock, started=started + lock.waited,
                           context=context, forkserver=forkserver, log_dir=log_dir,
                           log_level=log_level, progress=progress,
                           stdout_to_stderr=stdout_to_stderr, grace=grace, resumed=resumed)


def _run_config(config: Config, selected: dict[str, Any], plans: dict[str, Plan], *,
                lock: runlock.RunLock, started: float, context: Any,
                forkserver: threading.Thread | None, log_dir: str | os.PathLike[str] | None,
                log_level: str, progress: Progress | None,
                stdout_to_stderr: bool, grace: float, resumed: Resumed | None) -> RunReport:
    """The run itself, under the config's lock: run folder, logs, jobs, report."""
    run_id = new_run_id()
    lock.describe(run_id, config.source or config.display_name())
    run_dir = _make_run_dir(log_dir, run_id)
    log.configure(path=str(run_dir / "runner.jsonl") if run_dir else None, run_id=run_id,
                  process="runner", level=log_level)
    logger = log.logger()
    logger.info("run started", config=config.source, jobs=list(selected),
                start_method=context.get_start_method())
    if run_dir:
        from runner.resume import MANIFEST, write_manifest

        write_manifest(run_dir / MANIFEST, run_id, config, plans)
    if resumed is not None:
        logger.info("resuming", run=resumed.run_id, changes=resumed.notes,
                    reused={name: len(plan.reused) for name, plan in plans.items()})
    shared = build(config.shared, context)
    init = WorkerInit(run_id=run_id, log_dir=str(run_dir) if run_dir else None,
                      log_level=log_level, sys_path=search_paths(config), shared=shared,
                      functions=sorted({job.function for job in selected.values()}),
                      stdout_to_stderr=stdout_to_stderr,
                      secret_values=config.secret_values)
    journal = Journal(str(run_dir / "results.jsonl") if run_dir else None)
    if resumed is not None:  # first, so that a run stopped early still has them all
        for name, plan in plans.items():
            journal.reused(name, plan.reused, resumed.run_id)
    stop = signals.Stop()
    scheduler = Scheduler(context=context, init=init, journal=journal,
                          before_processes=forkserver.join if forkserver else None, stop=stop)
    reports: list[JobReport] = []

    def on_stop(signum: int) -> None:
        if progress:
            progress("stopping", {"signal": signum, "grace": grace})

    try:
        with signals.interrupts(stop, grace, on_stop):
            try:
                try:
                    _run_jobs(scheduler, selected, plans, reports, progress)
                finally:
                    stop.settle()  # from here on a signal is noted only
            except Interrupted as exc:
                scheduler.interrupted = exc
            if scheduler.interrupted is None and stop.signum is not None:
                scheduler.interrupted = Interrupted(stop.signum)
            if scheduler.interrupted is not None:
                logger.warning("interrupted", signal=scheduler.interrupted.signum,
                               grace=grace)
            final_shared = snapshot(config.shared, shared)
    finally:
        journal.close()
        stop.close()
    report = _report(config, run_id=run_id, run_dir=run_dir, reports=reports,
                     shared=final_shared, scheduler=scheduler, selected=list(selected),
                     seconds=time.perf_counter() - started)
    if resumed is not None:
        report.resumed_from, report.resume_notes = resumed.run_id, resumed.notes
    if run_dir:
        (run_dir / "summary.json").write_bytes(dumps_document(report.as_dict()))
    logger.info("run finished", status=report.status, exit_code=report.exit_code,
                seconds=round(report.seconds, 4))
    return report


def _run_jobs(scheduler: Scheduler, selected: dict[str, Any], plans: dict[str, Plan],
              reports: list[JobReport], progress: Progress | None) -> None:
    for name, job in selected.items():
        if progress:
            progress("job started", {"job": name, "mode": job.run_mode, "tasks": len(plans[name]),
                                     "workers": 1 if job.run_mode == "serial"
                                     else job.worker_count()})
        log.logger(job=name).info("job started", mode=job.run_mode, tasks=len(plans[name]))
        job_report = scheduler.run_job(name, job, plans[name])
        reports.append(job_report)
        log.logger(job=name).info("job finished", status=job_report.status,
                                  ok=job_report.ok, failed=job_report.failed,
                                  seconds=round(job_report.seconds, 4))
        if progress:
            progress("job finished", {"job": name, "status": job_report.status})
        if scheduler.interrupted is not None or scheduler.stopped or scheduler.stop.requested:
            return


def _report(config: Config, *, run_id: str, run_dir: Path | None, reports: list[JobReport],
            shared: dict[str, Any], scheduler: Scheduler, selected: list[str],
            seconds: float) -> RunReport:
    if scheduler.interrupted is not None:
        status, exit_code = "interrupted", scheduler.interrupted.exit_code
    elif any(job.status != "ok" for job in reports):
        status, exit_code = "failed", 1
    else:
        status, exit_code = "ok", 0
    done = {job.name for job in reports}
    return RunReport(run_id=run_id, config=config.source or config.display_name(),
                     status=status, exit_code=exit_code, seconds=seconds,
                     log_dir=str(run_dir) if run_dir else None, jobs=reports, shared=shared,
                     not_run=[name for name in selected if name not in done])


def _select(config: Config, only: Sequence[str] | None) -> dict[str, Any]:
    if not only:
        return dict(config.jobs)
    unknown = [name for name in only if name not in config.jobs]
    if unknown:
        raise UsageError(f"--only: no job named {', '.join(map(repr, unknown))} in "
                         f"{config.source or 'the config'} (jobs: {', '.join(config.jobs)})")
    return {name: job for name, job in config.jobs.items() if name in only}


def _check_picklable(config: Config, selected: dict[str, Any], plans: dict[str, Plan]) -> None:
    """Arguments that cannot reach a worker process are the job's error, before anything runs.

    YAML cannot express such values; a Config built in Python (a lambda in args) can.
    """
    import pickle

    issues = []
    for name, job in selected.items():
        if not any(mode in ("process", "pool") for mode in job.modes()):
            continue
        plan = plans[name]
        try:
            pickle.dumps((plan.call, plan.items[:1000]))
        except Exception as exc:  # any pickling failure is reported
            issues.append(locate_issue(config, ("jobs", name),
                                       f"its arguments cannot be sent to a worker process "
                                       f"({type(exc).__name__}: {exc}); use mode serial or "
                                       "thread, or pass importable values"))
    if issues:
        raise ConfigError(issues)


def _raise_problems(config: Config) -> None:
    found = problems(config)
    if found:
        raise ConfigError([locate_issue(config, loc, message) for loc, message in found])


def _make_run_dir(log_dir: str | os.PathLike[str] | None, run_id: str) -> Path | None:
    if log_dir is None:
        return None
    root = Path(log_dir)
    run_dir = root / run_id
    run_dir.mkdir(parents=True)
    latest = root / "latest"
    temporary = root / f".latest-{run_id}"
    try:
        temporary.symlink_to(run_id, target_is_directory=True)
        os.replace(temporary, latest)  # atomic: readers never see a missing "latest"
    except OSError:
        temporary.unlink(missing_ok=True)
    return run_dir
