"""Task functions for the dask-mode tests (imported by name in dask workers)."""

from __future__ import annotations

import os
import queue
import sys
import threading
import time
from typing import Any

import runner
from tests import tasks


def square(x: int) -> int:
    runner.get_logger().info("squaring", x=x)
    return x * x


def shout(x: int) -> int:
    print(f"printed by task {x}")
    return x


def count_calls(counter: Any, lock: Any) -> int:
    with lock:
        counter.value += 1
        return int(counter.value)


def die_on(x: int, bad: int = 1, how: str = "kill") -> int:
    """``tests.tasks.die_on``, and ``how: sysexit``: a SystemExit, which must not kill a
    dask worker."""
    if x == bad and how == "sysexit":
        sys.exit(7)
    return tasks.die_on(x, bad=bad, how=how)


def sleep_on(x: int, bad: int = 1, seconds: float = 60.0) -> int:
    if x == bad:
        time.sleep(seconds)
    return x


def flaky(x: int, marker: str) -> int:
    """Fails on the first attempt (no marker file yet), succeeds on the second."""
    path = f"{marker}-{x}"
    if not os.path.exists(path):
        with open(path, "w"):
            pass
        raise ConnectionError(f"attempt 1 of task {x} fails")
    return x


def primitives(value: Any, floats: Any, arr: Any, lock: Any, rlock: Any, sem: Any,
               event: Any, q: Any, small: Any) -> dict[str, Any]:
    """Every primitive's multiprocessing API, used from a dask worker."""
    seen: dict[str, Any] = {}
    with value.get_lock():
        value.value += 5
    seen["value"] = value.value
    try:
        value.value = 1.5  # an 'i' value takes no float, as a ctypes int does not
    except TypeError:
        seen["float_into_int"] = "TypeError"
    floats.value = 2  # an int into 'd' is a float
    seen["int_into_double"] = type(floats.value).__name__
    arr[0] = 7
    arr[1:3] = [8, 9]
    with arr.get_lock():  # the array's lock is reentrant: its own accesses take it again
        arr[3] = arr[0] + 1
    seen["array"] = list(arr[:])
    seen["array_len"] = len(arr)
    with lock:
        seen["lock_blocked"] = lock.acquire(False)
    with rlock, rlock:
        seen["rlock"] = "reentrant"
    with sem:
        seen["sem_second"] = sem.acquire(timeout=0.2)
    seen["event_before"] = event.is_set()
    event.set()
    seen["event_wait"] = event.wait(1)
    q.put([1, [2, 3]])
    q.put({"k": [4]})
    seen["qsize"] = q.qsize()
    seen["empty"] = q.empty()
    seen["got"] = q.get(timeout=5)
    seen["got_type"] = type(seen["got"]).__name__
    try:
        small.get_nowait()
    except queue.Empty:
        seen["get_nowait_empty"] = "Empty"
    try:
        small.get(timeout=0.2)
    except queue.Empty:
        seen["get_timeout_empty"] = "Empty"
    small.put_nowait("one")
    seen["full"] = small.full()
    try:
        small.put("two", timeout=0.2)
    except queue.Full:
        seen["put_full"] = "Full"
    try:
        small.put_nowait("three")
    except queue.Full:
        seen["put_nowait_full"] = "Full"
    return seen


def hold_rlock_in_threads(rlock: Any) -> list[str]:
    """An rlock is reentrant per thread: another thread of the same task waits for it."""
    order: list[str] = []
    with rlock:
        def other() -> None:
            got = rlock.acquire(timeout=0.3)
            order.append(f"other thread got it while held: {got}")
            if got:
                rlock.release()
        thread = threading.Thread(target=other)
        thread.start()
        thread.join()
        with rlock:
            order.append("same thread again")
    return order


def add_under_lock(x: int, total: Any, lock: Any) -> int:
    with lock:
        total.value += x
    return x


def fail_first(x: int) -> int:
    """Task 0 fails at once; the others take a while, and say that they ran."""
    runner.get_logger().info("ran", x=x)
    if x == 0:
        raise ValueError("task 0 fails")
    time.sleep(1.0)
    return x
