"""The config as a run reads it: plain frozen records, no pydantic.

``runner.models`` says what a valid config is and validates a file's data
(pydantic); :func:`runner.models.freeze` turns the result into these records,
which the loader returns and everything after it reads. A config validated
before comes from ``runner.configcache`` as these records unpickled, so its
run imports neither pydantic nor the models (about 0.2 s of start-up: README
"Start-up"). Each record's fields are its model's (a test holds them equal);
what a run asks of a config (a job's modes, its worker count, a range's ints,
a location's line in the file) is a method here.
"""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from runner.context import StartMethod
from runner.errors import ConfigIssue
from runner.primitives import (  # the shared types' records, re-exported with the config's
    ArraySpec,
    BarrierSpec,
    EventSpec,
    LockSpec,
    QueueSpec,
    SemaphoreSpec,
    SharedSpec,
    ValueSpec,
)

__all__ = ["ArraySpec", "BarrierSpec", "Config", "DaskSettings", "EventSpec", "FileSource",
           "Job", "JobDefaults", "Loc", "LockSpec", "Origin", "Positions", "QueueSpec",
           "RangeSource", "SemaphoreSpec", "SharedSpec", "TaskSpec", "ValueSpec", "dotted",
           "is_function_ref"]

Loc = tuple[str | int, ...]

FUNCTION_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
FAILURE_NAME_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def is_function_ref(value: object) -> bool:
    """Whether ``value`` reads as ``"package.module:qualname"``."""
    return isinstance(value, str) and FUNCTION_RE.match(value) is not None


def dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


@dataclass(frozen=True)
class RangeSource:
    """``{range: N}`` or ``{range: [start, stop, step]}``: the ints of Python's ``range``."""

    range: int | list[int]

    def as_range(self) -> builtins.range:
        value = self.range
        return builtins.range(value) if isinstance(value, int) else builtins.range(*value)


@dataclass(frozen=True)
class FileSource:
    """``{file: PATH}``: ``.jsonl`` (a JSON value a line), ``.csv`` (a mapping a row), or text."""

    file: str


@dataclass(frozen=True)
class TaskSpec:
    """One call: ``function(*args, **kwargs)``."""

    args: list[Any] = field(default_factory=list)
    kwargs: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class _JobFields:
    """The keys a job and ``defaults`` share (``runner.models`` documents each)."""

    mode: str | None = None
    workers: int | None = None
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    repeat: int | None = None
    tasks: list[TaskSpec] | None = None
    map: list[Any] | RangeSource | FileSource | None = None
    unpack: bool = False
    chunksize: Literal["auto"] | int = "auto"
    reduce: str | None = None
    compare: list[str] | None = None
    timeout: float | None = None
    retries: int = 0
    retry_delay: float = 0.0
    retry_backoff: float = 1.0
    retry_on: list[str] | None = None
    on_error: Literal["continue", "stop"] = "continue"


@dataclass(frozen=True, kw_only=True)
class JobDefaults(_JobFields):
    """``defaults:``: any job key, applied to every job that does not set it."""

    function: str | None = None


@dataclass(frozen=True, kw_only=True)
class Job(_JobFields):
    """One job: a function and the calls to make of it."""

    function: str

    @property
    def run_mode(self) -> str:
        if self.mode is not None:
            return self.mode
        from runner.executors import DEFAULT_MODE  # the registry: a run's, not a check's

        return DEFAULT_MODE

    def worker_count(self) -> int:
        """The ``workers`` asked for (the mode's executor may run fewer at once)."""
        return self.workers or os.cpu_count() or 1

    def modes(self) -> list[str]:
        """The modes this job runs in: its ``compare`` list, or its one mode."""
        return list(self.compare) if self.compare else [self.run_mode]

    def call_sources(self) -> list[str]:
        sources = []
        if self.args is not None or self.kwargs is not None or self.repeat is not None:
            sources.append("args/kwargs/repeat")
        if self.tasks is not None:
            sources.append("tasks")
        if self.map is not None:
            sources.append("map")
        return sources


class Positions:
    """Turns a data path into a ConfigIssue at its line and column in the file. Plain data,
    no YAML, picklable: a config from ``runner.configcache`` keeps one (``Origin``)."""

    def __init__(self, file: str, values: dict[Loc, tuple[int, int]],
                 keys: dict[Loc, tuple[int, int]], origin: dict[Loc, Loc]) -> None:
        self.file, self.values, self.keys, self.origin = file, values, keys, origin

    def at(self, loc: Loc, message: str, *, key: bool = False) -> ConfigIssue:
        label = dotted(loc)
        source = loc
        for depth in range(len(loc), 2, -1):
            if loc[:depth] in self.origin:  # written under defaults, copied into this job
                source = self.origin[loc[:depth]] + loc[depth:]
                label = f"{dotted(source)} (in job {loc[1]})"
                break
        position = None
        if key:
            position = self.keys.get(source)
        for depth in range(len(source), -1, -1):
            if position is not None:
                break
            position = self.values.get(source[:depth])
        line, column = position or (None, None)
        return ConfigIssue(self.file, line, column, label, message)


@dataclass(frozen=True)
class Origin:
    """Where a config came from."""

    source: str | None = None
    # Turns a location into a ConfigIssue with the file's line and column.
    locate: Callable[[Loc, str], ConfigIssue] | None = None
    # What secret-named ${VAR}s expanded to (runner.redact masks them).
    secret_values: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class DaskSettings:
    """``dask:``: which cluster dask-mode jobs run on, and how (README "Distributed mode")."""

    scheduler: str | None = None  # None: $DASK_SCHEDULER_ADDRESS, else an embedded cluster
    workers: int | None = None  # an embedded cluster's size (None: the largest dask job's)
    upload: bool = True  # ship the config folder's job modules to the workers
    connect_timeout: float = 10.0
    lease_timeout: float = 30.0  # a silent holder's lock is freed after this
    dashboard: bool = False


@dataclass(frozen=True, kw_only=True)
class Config:
    """A whole mprun config, validated (:meth:`validate`, or ``runner.load_config``)."""

    name: str | None = None
    description: str | None = None
    start_method: StartMethod | None = None
    defaults: JobDefaults | None = None
    shared: dict[str, SharedSpec] = field(default_factory=dict)
    jobs: dict[str, Job]
    dask: DaskSettings | None = None
    origin: Origin = field(default_factory=Origin, compare=False, repr=False)

    @classmethod
    def validate(cls, data: Any, *, source: str | None = None) -> Config:
        """A Config from plain data, as a config file's YAML reads (``{"jobs": {...}}``),
        checked against the schema; raises pydantic's ``ValidationError``. A run checks
        the rest (refs, map files, imports) as it does a file's."""
        from runner.models import validated

        return validated(data, Origin(source))

    @property
    def source(self) -> str | None:
        """The file this config was loaded from, if any."""
        return self.origin.source

    @property
    def secret_values(self) -> list[str]:
        """The values that ``${VAR}``s with a secret-looking name put into this config."""
        return list(self.origin.secret_values)

    @property
    def folder(self) -> str:
        """The folder map files are relative to and job modules are imported from."""
        source = self.origin.source
        return os.path.dirname(os.path.abspath(source)) if source else os.getcwd()

    def issue_at(self, loc: Loc, message: str) -> ConfigIssue:
        """A ConfigIssue at ``loc``, with a line and column when the config came from a file."""
        if self.origin.locate is not None:
            return self.origin.locate(loc, message)
        return ConfigIssue(self.source or "<config>", None, None, dotted(loc), message)

    def key_line(self, loc: Loc) -> int | None:
        """The line in the config's file where the key at ``loc`` (``("jobs", NAME)``) is
        written; None for a config not read from a file."""
        positions = getattr(self.origin.locate, "__self__", None)
        if isinstance(positions, Positions):
            found = positions.keys.get(loc) or positions.values.get(loc)
            return found[0] if found else None
        return self.issue_at(loc, "").line if self.origin.locate else None

    def display_name(self) -> str:
        if self.name:
            return self.name
        source = self.origin.source
        return os.path.splitext(os.path.basename(source))[0] if source else "config"
