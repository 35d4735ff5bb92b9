"""Shared primitives that live in the Dask scheduler, with multiprocessing's API.

Data flow::

    the runner (DaskBackend.build_shared) ── one object per primitive, named
      "mprun-RUN-NAME" in the scheduler ──> task arguments (pickled: the name only)
    a task on any worker ── value.value += ..., lock.acquire(), q.get() ──> the scheduler
    the runner, at the end ── summary() reads them; delete() frees the scheduler's state

Each object here is a handle: pickling keeps only its name and shape, and each
process binds it to its own connection (a worker's client in a task, the
runner's client in serial and thread jobs). ``distributed`` keeps Queue and
Variable values as msgpack, which turns lists into tuples; values go in
pickled, so a list stays a list. Dask has no reentrant lock: an rlock is a
dask Lock held by a process plus a per-thread count. A value's and an array's
lock is such an rlock, as multiprocessing's default lock is.

A dask Lock is a lease: its holder's process refreshes it, and a holder silent
for ``lease_timeout`` (frozen, partitioned, GIL held by C code) loses it. That
is how a dead holder's lock is freed, and the README says what it costs.
"""

from __future__ import annotations

import array
import contextlib
import ctypes
import pickle
import queue as queue_mod
import threading
from typing import Any, ClassVar

__all__ = ["DaskArray", "DaskEvent", "DaskLock", "DaskQueue", "DaskRLock", "DaskSemaphore",
           "DaskValue", "bind", "build", "coerce", "delete"]

# How long a "nowait" call waits in the scheduler: dask's queue has no non-blocking get,
# and a zero timeout there times out even when an item is waiting.
NOWAIT_SECONDS = 0.001

_CTYPES: dict[str, Any] = {
    "b": ctypes.c_byte, "B": ctypes.c_ubyte, "u": ctypes.c_wchar, "h": ctypes.c_short,
    "H": ctypes.c_ushort, "i": ctypes.c_int, "I": ctypes.c_uint, "l": ctypes.c_long,
    "L": ctypes.c_ulong, "q": ctypes.c_longlong, "Q": ctypes.c_ulonglong,
    "f": ctypes.c_float, "d": ctypes.c_double,
}

# The runner's client (set while a dask run is open): serial and thread jobs use it.
# In a dask worker it stays None and each object finds the worker's own client.
_runner_client: Any = None
# One dask object per scheduler name and process: a lock's lease belongs to the
# instance that took it, so every task of a process must use the same one.
_objects: dict[tuple[str, str], Any] = {}
_objects_lock = threading.Lock()


def bind(client: Any) -> None:
    """Use ``client`` for this process's primitives (None: forget it and the objects)."""
    global _runner_client
    _runner_client = client
    with _objects_lock:
        _objects.clear()


def _client() -> Any:
    if _runner_client is not None:
        return _runner_client
    from distributed import get_client

    return get_client()


def _object(kind: str, name: str, **options: Any) -> Any:
    """This process's dask object of ``kind`` named ``name``."""
    with _objects_lock:
        found = _objects.get((kind, name))
        if found is None:
            found = _objects[(kind, name)] = _make(kind, name, options)
        return found


def _make(kind: str, name: str, options: dict[str, Any]) -> Any:
    import distributed

    client = _client()
    if kind in ("lock", "semaphore"):
        # Neither takes a client: the scheduler and loop are given, or found late.
        rpc, loop = client.scheduler, client.loop
        if kind == "lock":
            return distributed.Lock(name, scheduler_rpc=rpc, loop=loop)
        return distributed.Semaphore(options["init"], name, scheduler_rpc=rpc, loop=loop)
    if kind == "variable":
        return distributed.Variable(name, client=client)
    if kind == "event":
        return distributed.Event(name, client=client)
    return distributed.Queue(name, client=client, maxsize=options.get("maxsize", 0))


def _seconds(block: bool, timeout: float | None) -> float | None:
    if not block:
        return NOWAIT_SECONDS
    return None if timeout is None else max(timeout, NOWAIT_SECONDS)


class _Handle:
    """A primitive by name; what pickles is the name and shape (``_state``)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def _state(self) -> tuple[Any, ...]:
        return (self.name,)

    def __reduce__(self) -> tuple[Any, ...]:
        return (type(self), self._state())

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name}>"

    def delete(self) -> None:
        """Free its state in the scheduler (at the run's end)."""


class DaskLock(_Handle):
    """``multiprocessing.Lock``: ``acquire(block=True, timeout=None)``, ``release()``."""

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        lock = _object("lock", self.name)
        return bool(lock.acquire(timeout=_seconds(block, timeout)))

    def release(self) -> None:
        _object("lock", self.name).release()

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def delete(self) -> None:
        _object("lock", self.name).close()


class DaskRLock(DaskLock):
    """``multiprocessing.RLock``: a thread that holds it may take it again."""

    _held: ClassVar[dict[str, threading.local]] = {}  # per process: name -> per thread

    def _count(self) -> threading.local:
        local = self._held.get(self.name)
        if local is None:
            local = self._held.setdefault(self.name, threading.local())
        return local

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        count = self._count()
        if getattr(count, "n", 0):
            count.n += 1
            return True
        if not super().acquire(block, timeout):
            return False
        count.n = 1
        return True

    def release(self) -> None:
        count = self._count()
        if not getattr(count, "n", 0):
            raise AssertionError("attempt to release recursive lock not owned by thread")
        count.n -= 1
        if not count.n:
            super().release()


class DaskSemaphore(_Handle):
    """``multiprocessing.Semaphore(init)``; released by the task that took it."""

    def __init__(self, name: str, init: int) -> None:
        super().__init__(name)
        self.init = init

    def _state(self) -> tuple[Any, ...]:
        return (self.name, self.init)

    def _semaphore(self) -> Any:
        return _object("semaphore", self.name, init=self.init)

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        return bool(self._semaphore().acquire(timeout=_seconds(block, timeout)))

    def release(self) -> None:
        self._semaphore().release()

    def get_value(self) -> int:
        return self.init - int(self._semaphore().get_value())

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, *_exc: object) -> None:
        self.release()

    def delete(self) -> None:
        self._semaphore().close()


class DaskEvent(_Handle):
    """``multiprocessing.Event``."""

    def _event(self) -> Any:
        return _object("event", self.name)

    def set(self) -> None:
        self._event().set()

    def clear(self) -> None:
        self._event().clear()

    def is_set(self) -> bool:
        return bool(self._event().is_set())

    def wait(self, timeout: float | None = None) -> bool:
        return bool(self._event().wait(timeout))

    def delete(self) -> None:
        self._event().clear()  # the scheduler forgets a cleared event nobody waits on


class DaskValue(_Handle):
    """``multiprocessing.Value(typecode, init)``: ``.value`` reads and writes are atomic
    (``+=`` needs ``get_lock()``, as in multiprocessing); what is written is coerced as
    the typecode's C type would (an int into ``"d"`` is a float; a float into ``"i"`` is
    a TypeError)."""

    def __init__(self, name: str, typecode: str) -> None:
        super().__init__(name)
        self.typecode = typecode

    def _state(self) -> tuple[Any, ...]:
        return (self.name, self.typecode)

    def _variable(self) -> Any:
        return _object("variable", self.name)

    @property
    def value(self) -> Any:
        return pickle.loads(self._variable().get())

    @value.setter
    def value(self, new: Any) -> None:
        self._variable().set(pickle.dumps(coerce(self.typecode, new)))

    def get_lock(self) -> DaskRLock:
        return DaskRLock(self.name + "/lock")

    def delete(self) -> None:
        self._variable().delete()
        self.get_lock().delete()


class DaskArray(_Handle):
    """``multiprocessing.Array(typecode, init)``, kept whole in one dask Variable: every
    access reads (and a write writes back) the whole array, under its lock."""

    def __init__(self, name: str, typecode: str, length: int) -> None:
        super().__init__(name)
        self.typecode, self.length = typecode, length

    def _state(self) -> tuple[Any, ...]:
        return (self.name, self.typecode, self.length)

    def _variable(self) -> Any:
        return _object("variable", self.name)

    def _items(self) -> list[Any]:
        items: list[Any] = pickle.loads(self._variable().get())
        return items

    def get_lock(self) -> DaskRLock:
        return DaskRLock(self.name + "/lock")

    def get_obj(self) -> DaskArray:
        return self

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int | slice) -> Any:
        with self.get_lock():
            return self._items()[index]

    def __setitem__(self, index: int | slice, new: Any) -> None:
        with self.get_lock():
            items = self._items()
            if isinstance(index, slice):
                values = [coerce(self.typecode, item) for item in new]
                if len(range(*index.indices(len(items)))) != len(values):
                    raise ValueError("Can only assign sequence of same size")
                items[index] = values
            else:
                items[index] = coerce(self.typecode, new)
            self._variable().set(pickle.dumps(items))

    def __iter__(self) -> Any:
        return iter(self[:])

    def snapshot(self) -> array.array[Any]:
        """Its items now, as a local ``array.array`` (what the summary reads)."""
        with self.get_lock():
            return array.array(self.typecode, self._items())

    def delete(self) -> None:
        self._variable().delete()
        self.get_lock().delete()


class DaskQueue(_Handle):
    """``multiprocessing.Queue(maxsize)``; items travel pickled, so lists stay lists."""

    def __init__(self, name: str, maxsize: int = 0) -> None:
        super().__init__(name)
        self.maxsize = maxsize

    def _state(self) -> tuple[Any, ...]:
        return (self.name, self.maxsize)

    def _queue(self) -> Any:
        return _object("queue", self.name, maxsize=self.maxsize)

    def put(self, obj: Any, block: bool = True, timeout: float | None = None) -> None:
        try:
            self._queue().put(pickle.dumps(obj), timeout=_seconds(block, timeout))
        except TimeoutError:
            raise queue_mod.Full from None

    def get(self, block: bool = True, timeout: float | None = None) -> Any:
        try:
            data = self._queue().get(timeout=_seconds(block, timeout))
        except TimeoutError:
            raise queue_mod.Empty from None
        return pickle.loads(data)

    def put_nowait(self, obj: Any) -> None:
        self.put(obj, False)

    def get_nowait(self) -> Any:
        return self.get(False)

    def qsize(self) -> int:
        return int(self._queue().qsize())

    def empty(self) -> bool:
        return self.qsize() == 0

    def full(self) -> bool:
        return bool(self.maxsize) and self.qsize() >= self.maxsize

    def delete(self) -> None:
        name = self.name

        def forget(dask_scheduler: Any = None) -> None:
            """Drop the queue whatever its reference count (each task's copy of it counts
            one and never closes). Nested, so that it travels by value: a scheduler
            without mprun installed can run it."""
            extension = dask_scheduler.extensions["queues"]
            extension.queues.pop(name, None)
            extension.client_refcount.pop(name, None)

        _client().run_on_scheduler(forget)


def build(specs: dict[str, Any], run_id: str) -> dict[str, _Handle]:
    """Create each of ``specs`` (``runner.primitives`` records) in the scheduler, named
    for run ``run_id``, with its initial value; a handle for each."""
    from runner.shared import default_init

    built: dict[str, _Handle] = {}
    for name, spec in specs.items():
        full = f"mprun-{run_id}-{name}"
        handle: _Handle
        if spec.type == "value":
            handle = DaskValue(full, spec.typecode)
            handle.value = default_init(spec.typecode) if spec.init is None else spec.init
        elif spec.type == "array":
            items = list(spec.init) if spec.init is not None \
                else [default_init(spec.typecode)] * (spec.size or 0)
            handle = DaskArray(full, spec.typecode, len(items))
            _object("variable", full).set(
                pickle.dumps([coerce(spec.typecode, item) for item in items]))
        elif spec.type == "lock":
            handle = DaskLock(full)
        elif spec.type == "rlock":
            handle = DaskRLock(full)
        elif spec.type == "semaphore":
            handle = DaskSemaphore(full, spec.init)
        elif spec.type == "event":
            handle = DaskEvent(full)
        elif spec.type == "queue":
            handle = DaskQueue(full, spec.maxsize or 0)
        else:  # refused by runner.daskconfig before any run
            raise ValueError(f"shared {name}: type {spec.type} has no dask form")
        built[name] = handle
    return built


def coerce(typecode: str, value: Any) -> Any:
    """``value`` as the C type of ``typecode`` holds it (a TypeError where ctypes raises)."""
    return _CTYPES[typecode](value).value


def delete(objects: list[_Handle]) -> None:
    """Free each primitive's scheduler state; one that cannot be freed does not stop
    the others (the cluster may be gone already)."""
    for obj in objects:
        with contextlib.suppress(Exception):  # best effort at the run's end
            obj.delete()
