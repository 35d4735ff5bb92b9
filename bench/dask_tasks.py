"""The task functions of the dask rows (``bench.workloads.dask``), in mprun and in the bare
``distributed`` scripts alike.

``time_primitives`` is what an mprun dask job runs: handed each shared primitive by
``!ref`` (``bench/configs/dask_primitives.yaml``), it times ``k`` accesses of each from
inside its dask worker and returns the seconds per access. ``time_bare_primitives``
does the same with distributed's own objects, created in the worker, for the bare
script (``bench.dask_peers``). Stdlib only at import: mprun's dask workers import this
module, and ``distributed`` is imported inside the one function that needs it.
"""

from __future__ import annotations

import pickle
import time
from collections.abc import Callable
from typing import Any

# The accesses timed, in order; each is one call of the closure ``_accesses`` builds.
ACCESSES = ("value read", "value write", "lock acquire+release", "rlock acquire+release",
            "semaphore acquire+release", "event is_set", "queue put+get", "array read")


def square_chunk(start: int, stop: int) -> bytes:
    """``square(x)`` for each x in ``range(start, stop)``, the list pickled: one dask task's
    share of a map in a bare script that chunks by hand, as ``Pool.map`` and mprun do.
    Pickled because distributed walks a returned list item by item (about 65 µs per item
    on the 2-core bench machine: 65 s for 1,000,000 squares), which mprun avoids the same
    way (``runner.daskworker``)."""
    from bench.tasks import square

    return pickle.dumps([square(x) for x in range(start, stop)], pickle.HIGHEST_PROTOCOL)


def _timed(k: int, access: Callable[[int], object]) -> float:
    """Seconds per call of ``access`` over ``k`` calls, after one untimed call (the
    first builds the process's dask object for the primitive)."""
    access(-1)
    started = time.perf_counter()
    for i in range(k):
        access(i)
    return (time.perf_counter() - started) / k


def _lock_cycle(lock: Any) -> Callable[[int], object]:
    def cycle(_: int) -> None:
        lock.acquire()
        lock.release()
    return cycle


def time_primitives(k: int, value: Any, array: Any, lock: Any, rlock: Any, semaphore: Any,
                    event: Any, queue: Any) -> dict[str, float]:
    """Seconds per access of each of mprun's shared primitives, ``k`` accesses each, timed
    in this process (a dask worker's thread, for a dask job)."""

    def write(i: int) -> None:
        value.value = i

    def put_get(i: int) -> None:
        queue.put(i)
        got = queue.get()
        if got != i:
            raise RuntimeError(f"queue gave back {got!r}, not {i!r}")

    accesses: dict[str, Callable[[int], object]] = {
        "value read": lambda _: value.value,
        "value write": write,
        "lock acquire+release": _lock_cycle(lock),
        "rlock acquire+release": _lock_cycle(rlock),
        "semaphore acquire+release": _lock_cycle(semaphore),
        "event is_set": lambda _: event.is_set(),
        "queue put+get": put_get,
        "array read": lambda _: array[0],
    }
    times = {name: _timed(k, accesses[name]) for name in ACCESSES}
    value.value = k  # the answer the bench checks in summary.json
    return times


def time_bare_primitives(k: int, tag: str) -> dict[str, float]:
    """The same accesses with distributed's own objects, made here (in a dask worker) as
    a hand-written script would: a ``Variable`` for a value (pickled, as mprun keeps it)
    and an array (a pickled list of 1,000 doubles, read whole under a ``Lock``), a
    ``Lock`` for both locks (distributed has no reentrant one), a ``Semaphore``, an
    ``Event``, a ``Queue``."""
    import distributed

    client = distributed.get_client()
    value = distributed.Variable(f"{tag}-value", client=client)
    value.set(pickle.dumps(0))
    items = distributed.Variable(f"{tag}-array", client=client)
    items.set(pickle.dumps([0.0] * 1000))
    array_lock = distributed.Lock(f"{tag}-array-lock")
    lock = distributed.Lock(f"{tag}-lock")
    semaphore = distributed.Semaphore(1, f"{tag}-semaphore")
    event = distributed.Event(f"{tag}-event", client=client)
    queue = distributed.Queue(f"{tag}-queue", client=client)

    def write(i: int) -> None:
        value.set(pickle.dumps(i))

    def put_get(i: int) -> None:
        queue.put(pickle.dumps(i))
        got = pickle.loads(queue.get())
        if got != i:
            raise RuntimeError(f"queue gave back {got!r}, not {i!r}")

    def read_array(_: int) -> float:
        with array_lock:
            return float(pickle.loads(items.get())[0])

    accesses: dict[str, Callable[[int], object]] = {
        "value read": lambda _: pickle.loads(value.get()),
        "value write": write,
        "lock acquire+release": _lock_cycle(lock),
        "rlock acquire+release": _lock_cycle(lock),
        "semaphore acquire+release": _lock_cycle(semaphore),
        "event is_set": lambda _: event.is_set(),
        "queue put+get": put_get,
        "array read": read_array,
    }
    times = {name: _timed(k, accesses[name]) for name in ACCESSES}
    for variable in (value, items):
        variable.delete()
    semaphore.close()
    return times
