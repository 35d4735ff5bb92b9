"""Shared primitive types as a run reads them: one record a type, each building its
primitive and saying what the summary shows of it.

Each ``shared:`` entry of a validated config is one of the records below
(``runner.sharedmodels`` validates the file's keys, pydantic, and freezes them
into these). A record builds the primitive from the run's multiprocessing
context (:meth:`build`) and says what the summary shows of it at the end
(:meth:`summary`; :data:`OMITTED` for locks and such). :data:`SHARED_TYPES`
maps each ``type:`` name to its record; ``runner.shared.build`` / ``snapshot``
call them. A new primitive type is one record here and one model there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from runner.shared import OMITTED, array_state, default_init, drain

__all__ = ["OMITTED", "SHARED_TYPES", "ArraySpec", "BarrierSpec", "EventSpec", "LockSpec",
           "QueueSpec", "SemaphoreSpec", "SharedSpec", "ValueSpec", "expand_shorthand"]


@dataclass(frozen=True)
class _Primitive:
    """What every shared type's record does: build it, and show it in the summary."""

    def build(self, ctx: Any) -> Any:
        raise NotImplementedError

    def summary(self, obj: Any) -> Any:
        """What the run's summary shows of ``obj`` at the end (:data:`OMITTED`: nothing)."""
        return OMITTED


@dataclass(frozen=True, kw_only=True)
class ValueSpec(_Primitive):
    """``multiprocessing.Value(typecode, init, lock=lock)``."""

    type: Literal["value"] = "value"
    typecode: str
    init: int | float | str | None = None  # None: zero
    lock: bool = True

    def build(self, ctx: Any) -> Any:
        init = default_init(self.typecode) if self.init is None else self.init
        return ctx.Value(self.typecode, init, lock=self.lock)

    def summary(self, obj: Any) -> Any:
        return obj.value


@dataclass(frozen=True, kw_only=True)
class ArraySpec(_Primitive):
    """``multiprocessing.Array(typecode, init or size, lock=lock)``; one-dimensional."""

    type: Literal["array"] = "array"
    typecode: str
    init: list[Any] | None = None
    size: int | None = None
    lock: bool = True

    def build(self, ctx: Any) -> Any:
        return ctx.Array(self.typecode, self.init if self.init is not None else self.size,
                         lock=self.lock)

    def summary(self, obj: Any) -> Any:
        return array_state(self.typecode, obj)  # past 100,000 items, a file (ArrayFile)


@dataclass(frozen=True, kw_only=True)
class LockSpec(_Primitive):
    """``multiprocessing.Lock()`` or ``RLock()``."""

    type: Literal["lock", "rlock"] = "lock"

    def build(self, ctx: Any) -> Any:
        return ctx.Lock() if self.type == "lock" else ctx.RLock()


@dataclass(frozen=True, kw_only=True)
class SemaphoreSpec(_Primitive):
    """``multiprocessing.Semaphore(init)``."""

    type: Literal["semaphore"] = "semaphore"
    init: int = 1

    def build(self, ctx: Any) -> Any:
        return ctx.Semaphore(self.init)


@dataclass(frozen=True, kw_only=True)
class EventSpec(_Primitive):
    """``multiprocessing.Event()``."""

    type: Literal["event"] = "event"

    def build(self, ctx: Any) -> Any:
        return ctx.Event()

    def summary(self, obj: Any) -> Any:
        return obj.is_set()


@dataclass(frozen=True, kw_only=True)
class QueueSpec(_Primitive):
    """``multiprocessing.Queue(maxsize)``."""

    type: Literal["queue"] = "queue"
    maxsize: int | None = None

    def build(self, ctx: Any) -> Any:
        return ctx.Queue(self.maxsize or 0)

    def summary(self, obj: Any) -> Any:
        return drain(obj)  # the items left in it, in order


@dataclass(frozen=True, kw_only=True)
class BarrierSpec(_Primitive):
    """``multiprocessing.Barrier(parties)``."""

    type: Literal["barrier"] = "barrier"
    parties: int

    def build(self, ctx: Any) -> Any:
        return ctx.Barrier(self.parties)


SharedSpec = ValueSpec | ArraySpec | LockSpec | SemaphoreSpec | EventSpec | QueueSpec | BarrierSpec

#: ``type:`` name -> the record that builds and summarises it
SHARED_TYPES: dict[str, type[_Primitive]] = {
    "value": ValueSpec, "array": ArraySpec, "lock": LockSpec, "rlock": LockSpec,
    "semaphore": SemaphoreSpec, "event": EventSpec, "queue": QueueSpec, "barrier": BarrierSpec}


def expand_shorthand(value: Any) -> Any:
    """``name: lock`` means ``name: {type: lock}`` (for every type, so that a type with
    required keys names them as missing)."""
    return {"type": value} if isinstance(value, str) and value in SHARED_TYPES else value
