"""The config models: what a valid mprun config is. No I/O here.

``runner.loader`` turns YAML into plain data (with ``Ref`` objects for
``!ref``) and validates it with :class:`Config`; ``runner.checks`` then checks
what one field cannot say alone (call sources, refs, map files, imports).
The tables a config is checked against live in their own rooms: modes in
``runner.executors``, shared types in ``runner.primitives``, reducers in
``runner.reducers``, start methods in ``runner.context``.
"""

from __future__ import annotations

import builtins
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    PrivateAttr,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from runner.context import StartMethod
from runner.errors import ConfigIssue
from runner.executors import DEFAULT_MODE, modes
from runner.primitives import (  # the shared types' models, re-exported with the config's
    ArraySpec,
    BarrierSpec,
    EventSpec,
    LockSpec,
    QueueSpec,
    SemaphoreSpec,
    SharedSpec,
    ValueSpec,
    expand_shorthand,
)
from runner.reducers import REDUCERS

__all__ = [
    "ArraySpec",
    "BarrierSpec",
    "Config",
    "EventSpec",
    "FileSource",
    "Job",
    "JobDefaults",
    "Loc",
    "LockSpec",
    "Origin",
    "QueueSpec",
    "RangeSource",
    "SemaphoreSpec",
    "TaskSpec",
    "ValueSpec",
    "dotted",
]

Loc = tuple[str | int, ...]

_FUNCTION_RE = re.compile(r"^[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*:[A-Za-z_][\w]*(\.[A-Za-z_][\w]*)*$")
FunctionRef = Annotated[
    str,
    Field(
        pattern=_FUNCTION_RE.pattern,
        description='"package.module:qualname" of an importable callable',
        examples=["jobs.tutorial:square"],
    ),
]


_FAILURE_NAME_RE = re.compile(r"^[A-Za-z_]\w*(\.[A-Za-z_]\w*)*$")


def _failure_name(value: str) -> str:
    if not _FAILURE_NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a class name (ValueError, WorkerCrashed) or a "
                         "dotted path (requests.exceptions.HTTPError)")
    return value


# A failure type in ``retry_on``: a class name, or the end of a "module.qualname".
FailureName = Annotated[
    str,
    AfterValidator(_failure_name),
    Field(json_schema_extra={"pattern": _FAILURE_NAME_RE.pattern},
          examples=["OSError", "WorkerCrashed", "TaskTimeout"]),
]


def is_function_ref(value: object) -> bool:
    """Whether ``value`` reads as ``"package.module:qualname"``."""
    return isinstance(value, str) and _FUNCTION_RE.match(value) is not None


def _known_mode(value: Any) -> Any:
    known = modes()
    if not isinstance(value, str) or value not in known:
        raise ValueError(f"{value!r} is not one of {', '.join(known)}")
    return value


def _modes_schema(schema: dict[str, Any]) -> None:
    schema.update(type="string", enum=list(modes()))


# One of runner.executors' registered modes (read when a config is validated).
Mode = Annotated[str, BeforeValidator(_known_mode), Field(json_schema_extra=_modes_schema)]

_STRICT = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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
    mode: Mode | None = Field(default=None, description=f"default: {DEFAULT_MODE}")
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
    retry_on: Annotated[list[FailureName], Field(min_length=1)] | None = Field(
        default=None,
        description="retry only these failure types (needs retries): exception class names, "
                    "matched with their bases (OSError covers ConnectionError), dotted paths, "
                    "or the runner's WorkerCrashed, TaskTimeout, WorkerStartFailed, "
                    "ArgumentsError, ResultError (TaskFailed: all five); default: every failure")
    on_error: Literal["continue", "stop"] = Field(
        default="continue", description="stop: end the run at the first task that fails for good")

    @field_validator("reduce")
    @classmethod
    def _reducer(cls, value: str | None) -> str | None:
        if value is not None and value not in REDUCERS and not is_function_ref(value):
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
        return self.mode or DEFAULT_MODE

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


@dataclass(frozen=True)
class Origin:
    """Where a config came from; the loader passes it to :meth:`Config.model_validate`
    as ``context={"origin": ...}``."""

    source: str | None = None
    # Turns a location into a ConfigIssue with the file's line and column.
    locate: Callable[[Loc, str], ConfigIssue] | None = None
    # What secret-named ${VAR}s expanded to (runner.redact masks them).
    secret_values: tuple[str, ...] = ()


def dotted(loc: Loc) -> str:
    return ".".join(str(part) for part in loc)


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
    _origin: Origin = PrivateAttr(default_factory=Origin)

    @model_validator(mode="after")
    def _take_origin(self, info: ValidationInfo) -> Config:
        origin = (info.context or {}).get("origin")
        if isinstance(origin, Origin):
            self._origin = origin
        return self

    @property
    def source(self) -> str | None:
        """The file this config was loaded from, if any."""
        return self._origin.source

    @property
    def secret_values(self) -> list[str]:
        """The values that ``${VAR}``s with a secret-looking name put into this config."""
        return list(self._origin.secret_values)

    @property
    def folder(self) -> str:
        """The folder map files are relative to and job modules are imported from."""
        source = self._origin.source
        return os.path.dirname(os.path.abspath(source)) if source else os.getcwd()

    def issue_at(self, loc: Loc, message: str) -> ConfigIssue:
        """A ConfigIssue at ``loc``, with a line and column when the config came from a file."""
        if self._origin.locate is not None:
            return self._origin.locate(loc, message)
        return ConfigIssue(self.source or "<config>", None, None, dotted(loc), message)

    def display_name(self) -> str:
        if self.name:
            return self.name
        source = self._origin.source
        return os.path.splitext(os.path.basename(source))[0] if source else "config"

    @field_validator("shared", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: expand_shorthand(item) for key, item in value.items()}
        return value
