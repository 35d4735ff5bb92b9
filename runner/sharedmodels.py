"""The shared primitive types' models: what a valid ``shared:`` entry is (pydantic).

Each model validates one type's keys (the seed's typecode table bounds
``init``) and names the record a run reads (:attr:`record`, in
``runner.primitives``, which builds the primitive and shows it in the
summary). :data:`SHARED_MODELS` maps each ``type:`` name to its model, for the
config's union and the loader's messages. Only a config validated afresh
imports this module: a cached config is its records already.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

from runner import primitives
from runner.shared import TYPECODES

__all__ = ["SHARED_MODELS", "ArraySpec", "BarrierSpec", "EventSpec", "LockSpec", "QueueSpec",
           "SemaphoreSpec", "SharedSpec", "ValueSpec"]

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
    """A shared type's keys, validated; :attr:`record` is what a run reads of them."""

    model_config = _STRICT
    record: ClassVar[type[primitives._Primitive]]


class ValueSpec(_Primitive):
    """``multiprocessing.Value(typecode, init, lock=lock)``."""

    record = primitives.ValueSpec
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


class ArraySpec(_Primitive):
    """``multiprocessing.Array(typecode, init or size, lock=lock)``; one-dimensional."""

    record = primitives.ArraySpec
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


class LockSpec(_Primitive):
    """``multiprocessing.Lock()`` or ``RLock()``."""

    record = primitives.LockSpec
    type: Literal["lock", "rlock"]


class SemaphoreSpec(_Primitive):
    """``multiprocessing.Semaphore(init)``."""

    record = primitives.SemaphoreSpec
    type: Literal["semaphore"]
    init: Annotated[int, Field(ge=0)] = 1


class EventSpec(_Primitive):
    """``multiprocessing.Event()``."""

    record = primitives.EventSpec
    type: Literal["event"]


class QueueSpec(_Primitive):
    """``multiprocessing.Queue(maxsize)``."""

    record = primitives.QueueSpec
    type: Literal["queue"]
    maxsize: Annotated[int, Field(ge=0)] | None = None


class BarrierSpec(_Primitive):
    """``multiprocessing.Barrier(parties)``."""

    record = primitives.BarrierSpec
    type: Literal["barrier"]
    parties: Annotated[int, Field(ge=1)]
    # "name: barrier" alone is {type: barrier}, so that its missing parties is named.


_MODELS: tuple[type[_Primitive], ...] = (ValueSpec, ArraySpec, LockSpec, SemaphoreSpec,
                                         EventSpec, QueueSpec, BarrierSpec)
#: ``type:`` name -> the model that validates it
SHARED_MODELS: dict[str, type[_Primitive]] = {
    name: model for model in _MODELS for name in get_args(model.model_fields["type"].annotation)}

SharedSpec = Annotated[
    ValueSpec | ArraySpec | LockSpec | SemaphoreSpec | EventSpec | QueueSpec | BarrierSpec,
    Field(discriminator="type"),
]

