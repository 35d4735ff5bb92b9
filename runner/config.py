"""The config models: what a valid mprun config is. No I/O here.

``runner.loader`` turns YAML into plain data (with ``Ref`` objects for
``!ref``) and validates it with :class:`Config`. Checks that need more than
one field at once are in :func:`problems`, which returns located messages so
that the loader can point at the offending line.
"""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Collection, Iterator
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from runner.shared import TYPECODES, Ref

__all__ = [
    "MODES",
    "REDUCERS",
    "Config",
    "FileSource",
    "Job",
    "JobDefaults",
    "RangeSource",
    "TaskSpec",
    "job_problems",
    "problems",
]

Mode = Literal["serial", "thread", "process", "pool"]
MODES: tuple[str, ...] = ("serial", "thread", "process", "pool")
StartMethod = Literal["fork", "spawn", "forkserver"]
REDUCERS: tuple[str, ...] = ("sum", "min", "max", "count", "mean", "list")
Typecode = Literal["b", "B", "u", "h", "H", "i", "I", "l", "L", "q", "Q", "f", "d"]

_FUNCTION_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
FunctionRef = Annotated[
    str,
    Field(
        pattern=_FUNCTION_RE.pattern,
        description='"package.module:qualname" of an importable callable',
        examples=["jobs.tutorial:square"],
    ),
]

_STRICT = ConfigDict(extra="forbid", frozen=True)


def _check_init(typecode: str, value: Any, where: str = "") -> None:
    """Raise ValueError unless ``value`` fits ``typecode`` (the seed's table)."""
    code = TYPECODES[typecode]
    where = f"{where}: " if where else ""
    if code.kind == "int":
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"{where}{value!r} is not an int; typecode {typecode!r} holds "
                             f"{code.describe()}")
        assert code.low is not None and code.high is not None
        if not code.low <= value <= code.high:
            raise ValueError(f"{where}{value} is out of range for typecode {typecode!r} "
                             f"({code.describe()})")
    elif code.kind == "float":
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise ValueError(f"{where}{value!r} is not a number; typecode {typecode!r} holds "
                             f"{code.describe()}")
    elif not (isinstance(value, str) and len(value) == 1):
        raise ValueError(f"{where}{value!r} is not one character; typecode 'u' holds "
                         f"{code.describe()}")


class ValueSpec(BaseModel):
    """``multiprocessing.Value(typecode, init, lock=lock)``."""

    model_config = _STRICT
    type: Literal["value"]
    typecode: Typecode
    init: int | float | str | None = Field(default=None, description="default: zero")
    lock: bool = True

    @field_validator("init", mode="before")
    @classmethod
    def _init_fits(cls, value: Any, info: ValidationInfo) -> Any:
        # Before pydantic's coercion, which would turn true into 1; reported at init.
        typecode = info.data.get("typecode")
        if value is not None and typecode is not None:
            _check_init(typecode, value)
        return value


class ArraySpec(BaseModel):
    """``multiprocessing.Array(typecode, init or size, lock=lock)``; one-dimensional."""

    model_config = _STRICT
    type: Literal["array"]
    typecode: Typecode
    init: list[Any] | None = Field(default=None, description="a flat list of initial items")
    size: Annotated[int, Field(ge=0)] | None = Field(default=None, description="zero-filled")
    lock: bool = True

    @field_validator("init")
    @classmethod
    def _init_fits(cls, value: list[Any] | None, info: ValidationInfo) -> list[Any] | None:
        typecode = info.data.get("typecode")
        for index, item in enumerate(value or ()):
            if isinstance(item, list | dict):
                raise ValueError(f"init[{index}] is a nested {type(item).__name__}: an array is "
                                 "one-dimensional (multiprocessing raises 'TypeError: an integer "
                                 "is required' for this); flatten it or use several arrays")
            if typecode is not None:
                _check_init(typecode, item, where=f"init[{index}]")
        return value

    @model_validator(mode="after")
    def _init_or_size(self) -> ArraySpec:
        if (self.init is None) == (self.size is None):
            raise ValueError("give exactly one of init (a flat list) or size")
        return self


class LockSpec(BaseModel):
    """``multiprocessing.Lock()`` or ``RLock()``."""

    model_config = _STRICT
    type: Literal["lock", "rlock"]


class SemaphoreSpec(BaseModel):
    """``multiprocessing.Semaphore(init)``."""

    model_config = _STRICT
    type: Literal["semaphore"]
    init: Annotated[int, Field(ge=0)] = 1


class EventSpec(BaseModel):
    """``multiprocessing.Event()``."""

    model_config = _STRICT
    type: Literal["event"]


class QueueSpec(BaseModel):
    """``multiprocessing.Queue(maxsize)``."""

    model_config = _STRICT
    type: Literal["queue"]
    maxsize: Annotated[int, Field(ge=0)] | None = None


class BarrierSpec(BaseModel):
    """``multiprocessing.Barrier(parties)``."""

    model_config = _STRICT
    type: Literal["barrier"]
    parties: Annotated[int, Field(ge=1)]


SharedSpec = Annotated[
    ValueSpec | ArraySpec | LockSpec | SemaphoreSpec | EventSpec | QueueSpec | BarrierSpec,
    Field(discriminator="type"),
]
# "name: lock" is {type: lock}; "name: barrier" too, so that its missing keys are named.
_SHARED_TYPES = ("value", "array", "lock", "rlock", "semaphore", "event", "queue", "barrier")


class RangeSource(BaseModel):
    """``{range: N}`` or ``{range: [start, stop, step]}``: the ints of Python's ``range``."""

    model_config = _STRICT
    range: int | Annotated[list[int], Field(min_length=1, max_length=3)]

    @field_validator("range")
    @classmethod
    def _nonzero_step(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, list) and len(value) == 3 and value[2] == 0:
            raise ValueError("the step (third number) must not be 0")
        return value

    def as_range(self) -> builtins.range:
        value = self.range
        return builtins.range(value) if isinstance(value, int) else builtins.range(*value)


class FileSource(BaseModel):
    """``{file: PATH}``: ``.jsonl`` (a JSON value a line), ``.csv`` (a mapping a row), or text."""

    model_config = _STRICT
    file: Annotated[str, Field(min_length=1)]


def _map_kind(value: Any) -> str | None:
    if isinstance(value, list | RangeSource | FileSource):
        return "list" if isinstance(value, list) else type(value).__name__
    if isinstance(value, dict):
        for kind, key in (("RangeSource", "range"), ("FileSource", "file")):
            if key in value:
                return kind
    return None


MapSource = Annotated[
    Annotated[list[Any], Tag("list")]
    | Annotated[RangeSource, Tag("RangeSource")]
    | Annotated[FileSource, Tag("FileSource")],
    Discriminator(
        _map_kind,
        custom_error_type="map_source",
        custom_error_message="expected a list, {range: N}, {range: [start, stop, step]} "
                             "or {file: PATH}",
    ),
]


class TaskSpec(BaseModel):
    """One call: ``function(*args, **kwargs)``."""

    model_config = _STRICT
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class _JobFields(BaseModel):
    """The keys a job and ``defaults`` share."""

    model_config = _STRICT
    mode: Mode | None = Field(default=None, description="default: pool")
    workers: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="at most this many tasks at once; default: the CPU count")
    args: list[Any] | None = None
    kwargs: dict[str, Any] | None = None
    repeat: Annotated[int, Field(ge=0)] | None = None
    tasks: list[TaskSpec] | None = None
    map: MapSource | None = None
    unpack: bool = False
    chunksize: Literal["auto"] | Annotated[int, Field(ge=1)] = "auto"
    reduce: str | None = Field(
        default=None, description=f"one of {', '.join(REDUCERS)}, or \"module:qualname\"")
    compare: Annotated[list[Mode], Field(min_length=1)] | None = None
    timeout: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="seconds a task may run (process and pool modes)")
    retries: Annotated[int, Field(ge=0)] = Field(
        default=0, description="extra attempts for a task that fails (raises or its worker dies)")
    retry_delay: Annotated[float, Field(ge=0)] = Field(
        default=0.0, description="seconds to wait before the first retry")
    retry_backoff: Annotated[float, Field(ge=1)] = Field(
        default=1.0, description="each further retry waits this many times longer")
    on_error: Literal["continue", "stop"] = Field(
        default="continue", description="stop: end the run at the first task that fails for good")

    @field_validator("reduce")
    @classmethod
    def _reducer(cls, value: str | None) -> str | None:
        if value is not None and value not in REDUCERS and not _FUNCTION_RE.match(value):
            raise ValueError(f"{value!r} is not one of {', '.join(REDUCERS)}, "
                             "nor a \"module:qualname\"")
        return value

    @field_validator("compare")
    @classmethod
    def _distinct(cls, value: list[str] | None) -> list[str] | None:
        if value is not None and len(set(value)) != len(value):
            raise ValueError("each mode may appear once")
        return value


class JobDefaults(_JobFields):
    """``defaults:``: any job key, applied to every job that does not set it."""

    function: FunctionRef | None = None


class Job(_JobFields):
    """One job: a function and the calls to make of it."""

    function: FunctionRef

    @property
    def run_mode(self) -> str:
        return self.mode or "pool"

    def worker_count(self) -> int:
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


def _shorthand(value: Any) -> Any:
    """``name: lock`` means ``name: {type: lock}``."""
    return {"type": value} if isinstance(value, str) else value


class Config(BaseModel):
    """A whole mprun config file."""

    model_config = _STRICT
    name: str | None = Field(default=None, description="default: the file's stem")
    description: str | None = None
    start_method: StartMethod | None = Field(
        default=None, description="default: forkserver on Linux, spawn elsewhere")
    defaults: JobDefaults | None = None
    shared: dict[str, SharedSpec] = Field(default_factory=dict)
    jobs: Annotated[dict[str, Job], Field(min_length=1)]
    _source: str | None = PrivateAttr(default=None)
    # Set by the loader: turns a location into a located ConfigIssue.
    _locate: Any = PrivateAttr(default=None)
    # Set by the loader: what secret-named ${VAR}s expanded to (runner.redact masks them).
    _secret_values: list[str] = PrivateAttr(default_factory=list)

    @property
    def source(self) -> str | None:
        """The file this config was loaded from, if any."""
        return self._source

    @property
    def secret_values(self) -> list[str]:
        """The values that ``${VAR}``s with a secret-looking name put into this config."""
        return list(self._secret_values)

    def display_name(self) -> str:
        if self.name:
            return self.name
        return os.path.splitext(os.path.basename(self._source))[0] if self._source else "config"

    @field_validator("shared", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: _shorthand(item) if item in _SHARED_TYPES else item
                    for key, item in value.items()}
        return value


Loc = tuple[str | int, ...]


def _refs(value: Any, loc: Loc) -> Iterator[tuple[Loc, Ref]]:
    if isinstance(value, Ref):
        yield loc, value
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _refs(item, (*loc, index))
    elif isinstance(value, dict):
        for key, item in value.items():
            yield from _refs(item, (*loc, key))


def problems(config: Config) -> list[tuple[Loc, str]]:
    """Checks across fields: call sources, refs, ``unpack``. Each with where it applies."""
    found: list[tuple[Loc, str]] = []
    for job_name, job in config.jobs.items():
        found += job_problems(job_name, job, config.shared)
    return found


def job_problems(job_name: str, job: Job, shared: Collection[str]) -> list[tuple[Loc, str]]:
    """:func:`problems` for one job, given the names declared under ``shared``."""
    found: list[tuple[Loc, str]] = []
    names = sorted(shared)
    here: Loc = ("jobs", job_name)
    sources = job.call_sources()
    if len(sources) > 1:
        if "map" in sources and sources == ["args/kwargs/repeat", "map"]:
            if job.repeat is not None:
                found.append(((*here, "repeat"), "repeat cannot be combined with map"))
        else:
            found.append((here, "give one call source, not " + " and ".join(sources)))
    if job.unpack and job.map is None:
        found.append(((*here, "unpack"), "unpack applies to map items only"))
    if job.chunksize != "auto" and job.map is None:
        found.append(((*here, "chunksize"), "chunksize applies to map jobs only"))
    in_runner = [mode for mode in job.modes() if mode in ("serial", "thread")]
    if job.timeout is not None and in_runner:
        found.append(((*here, "timeout"), f"timeout needs mode process or pool, not "
                      f"{' or '.join(in_runner)}: a task running in the runner's own process "
                      "or one of its threads cannot be stopped from outside"))
    for loc, ref in _refs(
        {"args": job.args, "kwargs": job.kwargs,
         "tasks": [{"args": t.args, "kwargs": t.kwargs} for t in job.tasks or []],
         "map": job.map if isinstance(job.map, list) else None},
        here,
    ):
        if ref.name not in shared:
            known = ", ".join(names) if names else "none are declared"
            found.append((loc, f"!ref {ref.name}: no shared primitive of that name "
                               f"(shared: {known})"))
    return found

