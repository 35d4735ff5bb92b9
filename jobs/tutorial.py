"""The seed tutorial's functions (shared/seed), as mprun jobs call them.

Each keeps the tutorial's behaviour; where the tutorial hands a result back
through a queue, the job returns it (mprun collects return values in order)
or puts it on a shared queue, as the config chooses.
"""

from __future__ import annotations

import time
from typing import Any


def job(a: Any, d: Any) -> None:
    """#2 Process: the tutorial's ``job(a, d)``."""
    print("aaaaa")


def cube_sum(n: int = 1000) -> int:
    """The tutorial's loop: sum of i + i**2 + i**3 for i in range(n)."""
    res = 0
    for i in range(n):
        res += i + i**2 + i**3
    return res


def cube_sum_to_queue(q: Any, n: int = 1000) -> None:
    """#3 Queue: compute the cube sum and put it on a shared queue, as the tutorial does."""
    q.put(cube_sum(n))


def square(x: int) -> int:
    """#5 Pool: the tutorial's ``job(x)``."""
    return x * x


def show_shared(value1: Any, value2: Any, array: Any) -> list[Any]:
    """#6 Shared memory: read a Value('i'), a Value('d') and an Array('i') from a worker."""
    return [value1.value, value2.value, list(array[:])]


def square_in_place(index: int, array: Any, counter: Any) -> int:
    """Square one element of a shared Array, and count it under the Value's own lock."""
    with array.get_lock():
        array[index] = array[index] ** 2
    with counter.get_lock():
        counter.value += 1
    return int(array[index])


def add_under_lock(v: Any, num: int, lock: Any) -> None:
    """#7 Lock: the tutorial's ``job(v, num, l)``: add ``num`` ten times while holding ``lock``."""
    lock.acquire()
    try:
        for _ in range(10):
            time.sleep(0.1)
            v.value += num
            print(v.value, flush=True)
    finally:
        lock.release()
