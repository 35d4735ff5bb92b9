"""What a config means for dask mode, before any cluster is reached: ``--dask`` applied,
and the primitives a dask job cannot have refused.

Data flow::

    checked Config ── scaled_out(--dask, --dask-scheduler) ── Config (process and pool
                      jobs in mode dask; dask.scheduler set) ── check() ── ConfigError, exit 2

Dask keeps a primitive in its scheduler, and every access is a network round
trip (README "Distributed mode"): a barrier has no dask form, a semaphore that
starts at 0 can only be released by a task that did not take it (dask's leases
belong to the taker), and an array travels whole on every access, so past
1 MiB it is refused. A primitive used by a dask job lives in the scheduler,
one used by a process or pool job in this machine's shared memory: one
primitive cannot be both. No ``distributed`` import here: ``mprun validate``
needs none.
"""

from __future__ import annotations

import array
import importlib.util
from collections.abc import Iterator
from dataclasses import replace

from runner.config import ArraySpec, BarrierSpec, Config, DaskSettings, Job, Loc, SemaphoreSpec
from runner.errors import ConfigError

__all__ = ["ARRAY_MAX_BYTES", "MODE", "check", "scaled_out", "settings", "uses_dask"]

MODE = "dask"
# The modes --dask moves to dask: those that run tasks in processes of their own.
SCALED_MODES = ("process", "pool")
# An array a dask job uses travels whole, pickled, on every access.
ARRAY_MAX_BYTES = 1024 * 1024


def scaled_out(config: Config, *, dask: bool = False, scheduler: str | None = None) -> Config:
    """``config`` as ``--dask`` (or ``--dask-scheduler``, which implies it) runs it: each
    process and pool job in mode dask (a ``compare`` job stays as it is), the scheduler
    named on the command line beating the config's."""
    if not dask and scheduler is None:
        return config
    jobs = {name: replace(job, mode=MODE)
            if not job.compare and job.run_mode in SCALED_MODES else job
            for name, job in config.jobs.items()}
    settings_ = config.dask or DaskSettings()
    if scheduler is not None:
        settings_ = replace(settings_, scheduler=scheduler)
    return replace(config, jobs=jobs, dask=settings_)


def settings(config: Config) -> DaskSettings:
    return config.dask or DaskSettings()


def uses_dask(jobs: dict[str, Job]) -> bool:
    return any(MODE in job.modes() for job in jobs.values())


def check(config: Config, *, scaled: bool = False) -> None:
    """Raise one ConfigError for every dask problem of ``config`` (none if no job runs in
    dask mode); ``scaled`` says that ``--dask`` put the jobs there, for the hint."""
    found = list(_problems(config, scaled))
    if found:
        raise ConfigError([config.issue_at(loc, message) for loc, message in found])


def _problems(config: Config, scaled: bool) -> Iterator[tuple[Loc, str]]:
    if not uses_dask(config.jobs):
        return
    if importlib.util.find_spec("distributed") is None:
        yield (("jobs",), "mode dask needs distributed: install the dask extra (pip install "
               "'mprun[dask]', or -e '.[dask]' in a checkout)")
        return
    if config.dask is not None and config.dask.dashboard \
            and importlib.util.find_spec("bokeh") is None:
        yield (("dask", "dashboard"), "dashboard: true needs bokeh installed beside "
               "distributed (pip install bokeh), or set dashboard: false")
    from runner.checks import refs_of

    users: dict[str, list[tuple[str, str]]] = {}  # primitive -> its (job, mode) pairs
    for name, job in config.jobs.items():
        for ref in refs_of(job):
            users.setdefault(ref, []).extend((name, mode) for mode in job.modes())
    how = "--dask runs it in mode dask" if scaled else "mode dask"
    for ref, pairs in users.items():
        dask_jobs = [name for name, mode in pairs if mode == MODE]
        if not dask_jobs:
            continue
        spec = config.shared[ref]
        loc: Loc = ("shared", ref)
        problem = _refused(spec)
        if problem:
            yield loc, (f"{problem}, and job {dask_jobs[0]} uses it in {how}; "
                        f"{_ALTERNATIVE[type(spec)]}")
        local = [(name, mode) for name, mode in pairs if mode in SCALED_MODES]
        if local:
            yield loc, (f"used by job {dask_jobs[0]} in {how} and by job {local[0][0]} in "
                        f"mode {local[0][1]}: a dask job's primitive lives in the dask "
                        "scheduler, a process or pool job's in this machine's shared memory; "
                        "give each job its own primitive, or run both in one mode")


def _refused(spec: object) -> str | None:
    if isinstance(spec, BarrierSpec):
        return "a barrier has no dask form"
    if isinstance(spec, SemaphoreSpec) and spec.init < 1:
        return (f"a semaphore with init {spec.init} cannot be used in dask mode (a dask "
                "semaphore's lease is released only by the task that took it)")
    if isinstance(spec, ArraySpec):
        size = spec.size if spec.init is None else len(spec.init)
        nbytes = (size or 0) * array.array(spec.typecode).itemsize
        if nbytes > ARRAY_MAX_BYTES:
            return (f"an array of {nbytes} bytes is over dask mode's 1 MiB (every access "
                    "carries the whole array through the scheduler)")
    return None


_ALTERNATIVE: dict[type, str] = {
    BarrierSpec: "use an event or a queue to make tasks wait for each other, or run the "
                 "job in mode pool",
    SemaphoreSpec: "start it at init >= 1, or run the job in mode pool",
    ArraySpec: "keep large data in files or task results, or run the job in mode pool",
}
