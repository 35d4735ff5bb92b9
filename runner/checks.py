"""What a config is checked for beyond each field's own schema, in one pass.

Data flow::

    YAML data ──> models.Config ── schema errors ─────────────────────────┐
        └── each job, valid or not ── problems(): ─────────────────────────┤──> one ConfigError
              call sources, unpack, chunksize, timeout vs mode, retry_on vs  │   (runner.loader)
              retries (the config's records)                               │
              !ref names, map files, function and reduce imports, pickling   │
                                        (the raw data, where a job is not)  ┘

A job that fails its schema is still checked for everything its raw data can
tell (its refs, its map file, its function's import), so that one run shows
every problem of a broken config. Each problem is ``(loc, message)``; the
caller locates it in the file. Mode rules come from the mode's executor class.
"""

from __future__ import annotations

import pickle
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner import imports
from runner.config import Config, FileSource, Job, Loc, is_function_ref
from runner.errors import ConfigError, JobImportError
from runner.files import FileRefused, check_regular
from runner.shared import Ref

__all__ = ["Checked", "check", "outside", "raise_problems", "refs_of"]

# How many items of a job's list are test-pickled for a mode that pickles tasks.
PICKLE_SAMPLE = 1000


@dataclass
class Checked:
    """What :func:`check` found, and the imports still to check (:meth:`imports`): apart,
    so that slow imports of job modules can overlap other start-up work, and so that a
    config whose only problem is an import raises :class:`JobImportError`."""

    found: list[tuple[Loc, str]]
    folder: Path
    jobs: dict[str, tuple[Job | None, Any]] = field(default_factory=dict)

    def imports(self) -> list[tuple[Loc, str]]:
        """Import every job's function and reduce function; say which cannot be used."""
        imports.add_paths(imports.search_paths(str(self.folder)))
        return [problem for name, (job, raw) in self.jobs.items()
                for problem in _imports(("jobs", name), job, raw)]


def check(data: Any, config: Config | None, folder: Path) -> Checked:
    """Every problem of the config beyond its schema, imports aside: ``config`` when it
    validated, else the raw ``data`` (job by job, each job's model where that job
    validates alone)."""
    if config is not None:
        shared: Collection[str] = config.shared
        jobs: dict[str, tuple[Job | None, Any]] = {
            name: (job, None) for name, job in config.jobs.items()}
    else:
        raw_jobs = data.get("jobs") if isinstance(data, dict) else None
        raw_shared = data.get("shared") if isinstance(data, dict) else None
        shared = {name for name in raw_shared if isinstance(name, str)} \
            if isinstance(raw_shared, dict) else set()
        jobs = {name: (_alone(raw), raw) for name, raw in raw_jobs.items()
                if isinstance(name, str) and isinstance(raw, dict)} \
            if isinstance(raw_jobs, dict) else {}
    checked = Checked([], folder, jobs)
    inherited = _default_retry_on(data, config)
    checked.found += _unused_default_retry_on(inherited, jobs)
    for name, (job, raw) in jobs.items():
        here: Loc = ("jobs", name)
        if job is not None:
            checked.found += _fields(here, job, inherited)
        checked.found += _refs(here, job, raw, shared)
        checked.found += _map_file(here, job, raw, folder)
        if job is not None:
            checked.found += _picklable(here, job)
    return checked


def outside(config: Config, folder: Path) -> Checked:
    """What :func:`check` finds of the world outside ``config``, the imports still to
    check: for a config that passed every other check before (``runner.configcache``:
    what those read is all in its key), so that a hit loads no mode's executor."""
    jobs: dict[str, tuple[Job | None, Any]] = {name: (job, None)
                                               for name, job in config.jobs.items()}
    found = [problem for name, job in config.jobs.items()
             for problem in _map_file(("jobs", name), job, None, folder)]
    return Checked(found, folder, jobs)


def raise_problems(config: Config, *, check_imports: bool = True) -> None:
    """Raise one ConfigError (JobImportError if imports are all that is wrong) for every
    problem of ``config``, located in its file; a Config built in Python is checked so too."""
    checked = check(None, config, Path(config.folder))
    found, failed_imports = checked.found, checked.imports() if check_imports else []
    if found or failed_imports:
        error = JobImportError if not found else ConfigError
        raise error([config.issue_at(loc, message) for loc, message in found + failed_imports])


def _alone(raw: dict[Any, Any]) -> Job | None:
    """The job if it validates on its own (the config as a whole did not)."""
    from pydantic import ValidationError

    from runner import models

    try:
        job: Job = models.freeze(models.Job.model_validate(raw))
    except ValidationError:
        return None  # its errors are reported already
    return job


def _default_retry_on(data: Any, config: Config | None) -> list[Any] | None:
    """The ``retry_on`` written under ``defaults``, if any (as valid or raw data)."""
    if config is not None:
        return config.defaults.retry_on if config.defaults is not None else None
    defaults = data.get("defaults") if isinstance(data, dict) else None
    value = defaults.get("retry_on") if isinstance(defaults, dict) else None
    return value if isinstance(value, list) else None


def _unused_default_retry_on(inherited: list[Any] | None,
                             jobs: dict[str, tuple[Job | None, Any]]) -> list[tuple[Loc, str]]:
    """A ``retry_on`` under ``defaults`` that no job retries with. (One that some jobs
    take and others do not use, with ``retries: 0``, is fine: those jobs opt out.)"""
    takers = [job for job, _ in jobs.values() if job is not None and job.retry_on == inherited]
    if inherited is None or not takers or any(job.retries > 0 for job in takers):
        return []
    return [(("defaults", "retry_on"), "retry_on applies only with retries > 0, and no job "
                                       "that takes it retries; set retries (under defaults "
                                       "or in the jobs)")]


def _fields(here: Loc, job: Job, inherited: list[Any] | None = None) -> list[tuple[Loc, str]]:
    """Rules across a job's fields, and the rules its modes' executors set.

    ``inherited`` is the ``retry_on`` under ``defaults``: a job that has it and does
    not retry is not an error of its own (see :func:`_unused_default_retry_on`).
    """
    from runner.executors import executor_for, modes

    found: list[tuple[Loc, str]] = []
    if job.retry_on is not None and job.retries == 0 and job.retry_on != inherited:
        found.append(((*here, "retry_on"), "retry_on applies only with retries > 0 (nothing "
                                            "is retried with retries: 0); set retries"))
    sources = job.call_sources()
    if len(sources) > 1:
        if sources == ["args/kwargs/repeat", "map"]:
            if job.repeat is not None:
                found.append(((*here, "repeat"), "repeat cannot be combined with map"))
        else:
            found.append((here, "give one call source, not " + " and ".join(sources)))
    if job.unpack and job.map is None:
        found.append(((*here, "unpack"), "unpack applies to map items only"))
    if job.chunksize != "auto" and job.map is None:
        found.append(((*here, "chunksize"), "chunksize applies to map jobs only"))
    unstoppable = [mode for mode in job.modes() if not executor_for(mode).enforces_timeout]
    if job.timeout is not None and unstoppable:
        able = [mode for mode in modes() if executor_for(mode).enforces_timeout]
        found.append(((*here, "timeout"), f"timeout needs mode {' or '.join(able)}, not "
                      f"{' or '.join(unstoppable)}: a task running in the runner's own process "
                      "or one of its threads cannot be stopped from outside"))
    return found


def _call_data(job: Job | None, raw: Any) -> dict[str, Any]:
    """Where a job's calls hold values: args, kwargs, each task's, a map list."""
    if job is not None:
        return {"args": job.args, "kwargs": job.kwargs,
                "tasks": [{"args": t.args, "kwargs": t.kwargs} for t in job.tasks or []],
                "map": job.map if isinstance(job.map, list) else None}
    return {key: raw.get(key) for key in ("args", "kwargs", "tasks")} | {
        "map": raw.get("map") if isinstance(raw.get("map"), list) else None}


def refs_of(job: Job) -> set[str]:
    """The names of the shared primitives ``job``'s calls use."""
    return {ref.name for _loc, ref in _walk_refs(_call_data(job, None), ())}


def _walk_refs(value: Any, loc: Loc) -> Iterator[tuple[Loc, Ref]]:
    if isinstance(value, Ref):
        yield loc, value
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _walk_refs(item, (*loc, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _walk_refs(item, (*loc, key))


def _refs(here: Loc, job: Job | None, raw: Any,
          shared: Collection[str]) -> list[tuple[Loc, str]]:
    known = ", ".join(sorted(shared)) if shared else "none are declared"
    return [(loc, f"!ref {ref.name}: no shared primitive of that name (shared: {known})")
            for loc, ref in _walk_refs(_call_data(job, raw), here) if ref.name not in shared]


def _map_file(here: Loc, job: Job | None, raw: Any, folder: Path) -> list[tuple[Loc, str]]:
    if job is not None:
        name = job.map.file if isinstance(job.map, FileSource) else None
    else:
        source = raw.get("map")  # a file source as the model would read it: no "range" key
        name = source.get("file") if isinstance(source, dict) and "range" not in source \
            else None
    if not isinstance(name, str) or not name:
        return []
    path = folder / name
    try:
        check_regular(path)  # a FIFO or a device is refused unopened: reading it never ends
    except FileRefused as exc:
        message = f"no such file {str(path)!r} (a map file is relative to the config's " \
            "folder)" if exc.missing else f"the map file {str(path)!r}: {exc}"
        return [((*here, "map", "file"), message)]
    return []


def _imports(here: Loc, job: Job | None, raw: Any) -> list[tuple[Loc, str]]:
    """Every function (and reduce function) that cannot be imported or called."""
    found: list[tuple[Loc, str]] = []
    for key in ("function", "reduce"):
        ref = getattr(job, key) if job is not None else raw.get(key)
        if is_function_ref(ref):
            problem = imports.describe_import_error(ref)
            if problem:
                found.append(((*here, key), problem))
    return found


def _picklable(here: Loc, job: Job) -> list[tuple[Loc, str]]:
    """Arguments that cannot reach a worker process are the job's error, before anything
    runs. YAML cannot express such values; a Config built in Python (a lambda) can."""
    from runner.executors import executor_for

    if not any(executor_for(mode).pickles_tasks for mode in job.modes()):
        return []
    calls = _call_data(job, None)
    if isinstance(calls["map"], list):
        calls["map"] = calls["map"][:PICKLE_SAMPLE]
    try:
        pickle.dumps(calls)
    except Exception as exc:  # any pickling failure is reported
        return [(here, f"its arguments cannot be sent to a worker process "
                       f"({type(exc).__name__}: {exc}); use mode serial or thread, or pass "
                       "importable values")]
    return []
