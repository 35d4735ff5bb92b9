"""The config models: what a valid mprun config is (pydantic). No I/O here.

``runner.validation`` turns YAML into plain data (with ``Ref`` objects for
``!ref``) and validates it with :class:`Config`; :func:`freeze` then turns the
models into the records a run reads (``runner.config``: plain frozen
dataclasses, no pydantic), and ``runner.checks`` checks on those what one
field cannot say alone (call sources, refs, map files, imports).

Why two layers: pydantic and these models cost about 0.2 s to import and
build, most of ``mprun validate``'s time. A config validated before comes from
``runner.configcache`` as its records, and such a run never imports this
module. Each model names its record (:attr:`record`); a test holds their fields
equal. The tables a config is checked against live in their own rooms: modes
in ``runner.executors``, shared types in ``runner.sharedmodels``, reducers in
``runner.reducers``, start methods in ``runner.context``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

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

from runner import config as records
from runner.config import FAILURE_NAME_RE, FUNCTION_RE, Origin, is_function_ref
from runner.context import StartMethod
from runner.executors import DEFAULT_MODE, modes
from runner.primitives import expand_shorthand
from runner.reducers import REDUCERS
from runner.sharedmodels import SharedSpec

__all__ = ["Config", "DaskSettings", "FileSource", "Job", "JobDefaults", "RangeSource",
           "TaskSpec", "freeze", "validated"]

FunctionRef = Annotated[
    str,
    Field(
        pattern=FUNCTION_RE.pattern,
        description='"package.module:qualname" of an importable callable',
        examples=["jobs.tutorial:square"],
    ),
]


def _failure_name(value: str) -> str:
    if not FAILURE_NAME_RE.match(value):
        raise ValueError(f"{value!r} is not a class name (ValueError, WorkerCrashed) or a "
                         "dotted path (requests.exceptions.HTTPError)")
    return value


# A failure type in ``retry_on``: a class name, or the end of a "module.qualname".
FailureName = Annotated[
    str,
    AfterValidator(_failure_name),
    Field(json_schema_extra={"pattern": FAILURE_NAME_RE.pattern},
          examples=["OSError", "WorkerCrashed", "TaskTimeout"]),
]


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


class _Model(BaseModel):
    """A config model; :attr:`record` is the ``runner.config`` record a run reads."""

    model_config = _STRICT
    record: ClassVar[type[Any]]


class RangeSource(_Model):
    """``{range: N}`` or ``{range: [start, stop, step]}``: the ints of Python's ``range``."""

    record = records.RangeSource
    range: int | Annotated[list[int], Field(min_length=1, max_length=3)]

    @field_validator("range")
    @classmethod
    def _nonzero_step(cls, value: int | list[int]) -> int | list[int]:
        if isinstance(value, list) and len(value) == 3 and value[2] == 0:
            raise ValueError("the step (third number) must not be 0")
        return value


class FileSource(_Model):
    """``{file: PATH}``: ``.jsonl`` (a JSON value a line), ``.csv`` (a mapping a row), or text."""

    record = records.FileSource
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


class TaskSpec(_Model):
    """One call: ``function(*args, **kwargs)``."""

    record = records.TaskSpec
    args: list[Any] = Field(default_factory=list)
    kwargs: dict[str, Any] = Field(default_factory=dict)


class _JobFields(_Model):
    """The keys a job and ``defaults`` share."""

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

    record = records.JobDefaults
    function: FunctionRef | None = None


class Job(_JobFields):
    """One job: a function and the calls to make of it."""

    record = records.Job
    function: FunctionRef


class DaskSettings(_Model):
    """``dask:``: the cluster that dask-mode jobs run on."""

    record = records.DaskSettings
    scheduler: Annotated[str, Field(min_length=1)] | None = Field(
        default=None, description="tcp://HOST:PORT; default: $DASK_SCHEDULER_ADDRESS, else "
                                  "an embedded cluster on 127.0.0.1")
    workers: Annotated[int, Field(ge=1)] | None = Field(
        default=None, description="the embedded cluster's worker processes; default: the "
                                  "largest dask job's workers")
    upload: bool = Field(default=True,
                         description="ship the config folder's job modules to the workers")
    connect_timeout: Annotated[float, Field(gt=0)] = Field(
        default=10.0, description="seconds to reach the scheduler")
    lease_timeout: Annotated[float, Field(gt=0)] = Field(
        default=30.0, description="seconds after which a silent lock holder loses the lock")
    dashboard: bool = Field(default=False,
                            description="serve the dashboard on a random port (needs bokeh)")


class Config(_Model):
    """A whole mprun config file."""

    record = records.Config
    name: str | None = Field(default=None, description="default: the file's stem")
    description: str | None = None
    start_method: StartMethod | None = Field(
        default=None, description="default: forkserver on Linux, spawn elsewhere")
    defaults: JobDefaults | None = None
    shared: dict[str, SharedSpec] = Field(default_factory=dict)
    jobs: Annotated[dict[str, Job], Field(min_length=1)]
    dask: DaskSettings | None = None
    _origin: Origin = PrivateAttr(default_factory=Origin)

    @model_validator(mode="after")
    def _take_origin(self, info: ValidationInfo) -> Config:
        origin = (info.context or {}).get("origin")
        if isinstance(origin, Origin):
            self._origin = origin
        return self

    @field_validator("shared", mode="before")
    @classmethod
    def _expand_shorthand(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {key: expand_shorthand(item) for key, item in value.items()}
        return value


def validated(data: Any, origin: Origin | None = None) -> records.Config:
    """``data`` (a config file's YAML, as plain data) validated, as the run's records;
    raises pydantic's ``ValidationError``."""
    config: records.Config = freeze(
        Config.model_validate(data, context={"origin": origin or Origin()}))
    return config


def freeze(model: Any) -> Any:
    """``model`` as its ``runner.config`` record (its models within too)."""
    values = {name: _frozen(getattr(model, name)) for name in type(model).model_fields}
    if isinstance(model, Config):
        values["origin"] = model._origin
    return type(model).record(**values)


def _frozen(value: Any) -> Any:
    # Models sit only in model fields, dicts of models (jobs, shared) and lists of them
    # (tasks); args and map lists, however long, hold data and are kept as they are.
    if isinstance(value, BaseModel):
        return freeze(value)
    if isinstance(value, dict) and value and isinstance(next(iter(value.values())), BaseModel):
        return {key: freeze(item) for key, item in value.items()}
    if isinstance(value, list) and value and isinstance(value[0], BaseModel):
        return [freeze(item) for item in value]
    return value
