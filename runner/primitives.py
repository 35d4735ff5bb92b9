"""Shared primitive types: one table from a type name to its model, builder and summary.

Each ``shared:`` entry is one of the models below. A model validates its
keys (the seed's typecode table bounds ``init``), builds the primitive from
the run's multiprocessing context (:meth:`build`) and says what the summary
shows of it at the end (:meth:`summary`; :data:`OMITTED` for locks and
such). :data:`SHARED_TYPES` maps each ``type:`` name to its model: the config,
the loader's messages and ``runner.shared.build`` / ``snapshot`` all read it,
so a new primitive type is one model here.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from runner.shared import OMITTED, TYPECODES, array_state, default_init, drain

__all__ = ["OMITTED", "SHARED_TYPES", "ArraySpec", "BarrierSpec", "EventSpec", "LockSpec",
           "QueueSpec", "SemaphoreSpec", "SharedSpec", "ValueSpec"]

Typecode = Literal["b", "B", "u", "h", "H", "i", "I", "l", "L", "q", "Q", "f", "d"]
_STRICT = ConfigDict(extra="forbid", frozen=True, defer_build=True)


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


class _Primitive(BaseModel):
    """What every shared type's model does: build it, and show it in the summary."""

    model_config = _STRICT

    def build(self, ctx: Any) -> Any:
        raise NotImplementedError

    def summary(self, obj: Any) -> Any:
        """What the run's summary shows of ``obj`` at the end (:data:`OMITTED`: nothing)."""
        return OMITTED


class ValueSpec(_Primitive):
    """``multiprocessing.Value(typecode, init, lock=lock)``."""

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

    def build(self, ctx: Any) -> Any:
        init = default_init(self.typecode) if self.init is None else self.init
        return ctx.Value(self.typecode, init, lock=self.lock)

    def summary(self, obj: Any) -> Any:
        return obj.value


class ArraySpec(_Primitive):
    """``multiprocessing.Array(typecode, init or size, lock=lock)``; one-dimensional."""

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

    def build(self, ctx: Any) -> Any:
        return ctx.Array(self.typecode, self.init if self.init is not None else self.size,
                         lock=self.lock)

    def summary(self, obj: Any) -> Any:
        return array_state(self.typecode, obj)  # past 100,000 items, a file (ArrayFile)


class LockSpec(_Primitive):
    """``multiprocessing.Lock()`` or ``RLock()``."""

    type: Literal["lock", "rlock"]

    def build(self, ctx: Any) -> Any:
        return ctx.Lock() if self.type == "lock" else ctx.RLock()


class SemaphoreSpec(_Primitive):
    """``multiprocessing.Semaphore(init)``."""

    type: Literal["semaphore"]
    init: Annotated[int, Field(ge=0)] = 1

    def build(self, ctx: Any) -> Any:
        return ctx.Semaphore(self.init)


class EventSpec(_Primitive):
    """``multiprocessing.Event()``."""

    type: Literal["event"]

    def build(self, ctx: Any) -> Any:
        return ctx.Event()

    def summary(self, obj: Any) -> Any:
        return obj.is_set()


class QueueSpec(_Primitive):
    """``multiprocessing.Queue(maxsize)``."""

    type: Literal["queue"]
    maxsize: Annotated[int, Field(ge=0)] | None = None

    def build(self, ctx: Any) -> Any:
        return ctx.Queue(self.maxsize or 0)

    def summary(self, obj: Any) -> Any:
        return drain(obj)  # the items left in it, in order


class BarrierSpec(_Primitive):
    """``multiprocessing.Barrier(parties)``."""

    type: Literal["barrier"]
    parties: Annotated[int, Field(ge=1)]
    # "name: barrier" alone is {type: barrier}, so that its missing parties is named.

    def build(self, ctx: Any) -> Any:
        return ctx.Barrier(self.parties)


_MODELS: tuple[type[_Primitive], ...] = (ValueSpec, ArraySpec, LockSpec, SemaphoreSpec,
                                         EventSpec, QueueSpec, BarrierSpec)
#: ``type:`` name -> the model that validates, builds and summarises it
SHARED_TYPES: dict[str, type[_Primitive]] = {
    name: model for model in _MODELS for name in get_args(model.model_fields["type"].annotation)}

SharedSpec = Annotated[
    ValueSpec | ArraySpec | LockSpec | SemaphoreSpec | EventSpec | QueueSpec | BarrierSpec,
    Field(discriminator="type"),
]


def expand_shorthand(value: Any) -> Any:
    """``name: lock`` means ``name: {type: lock}`` (for every type, so that a type with
    required keys names them as missing)."""
    return {"type": value} if isinstance(value, str) and value in SHARED_TYPES else value
