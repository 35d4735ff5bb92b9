"""The task functions every benchmark calls, in mprun and in every peer alike.

mprun reaches them by name (``bench.tasks:square``) and the peer scripts in
``bench.peers`` import them, so each side of a comparison runs the very same
code. ``square`` and ``cube_sum`` are the seed tutorial's functions from
``jobs.tutorial``. Stdlib only: worker processes import this module, and its
imports would count in their memory.
"""

from __future__ import annotations

import ctypes
import os
import time
from typing import Any

from jobs.tutorial import cube_sum, square

__all__ = [
    "cube_sum",
    "echo_after_sleep",
    "fill_array",
    "report_pid_and_sleep",
    "row_width",
    "square",
    "sum_list",
    "sum_shared",
]


def echo_after_sleep(x: int, seconds: float = 0.01) -> int:
    """An I/O-bound task: wait ``seconds`` (the GIL is released), return ``x``."""
    time.sleep(seconds)
    return x


def row_width(row: dict[str, str]) -> int:
    """A trivial task for a map file's row: how many fields it has."""
    return len(row)


def _buffer(shared: Any) -> Any:
    """The ctypes array behind a ``multiprocessing.Array`` (locked or not)."""
    return shared.get_obj() if hasattr(shared, "get_obj") else shared


def fill_array(shared: Any, size: int) -> int:
    """Write 0.0, 1.0, ... into a shared ``Array('d', size)`` with one memmove."""
    import array

    values = array.array("d", range(size))
    target = _buffer(shared)
    if ctypes.sizeof(target) < values.itemsize * size:
        raise ValueError(f"shared array holds fewer than {size} doubles")
    ctypes.memmove(target, values.buffer_info()[0], values.itemsize * size)
    return size


def sum_shared(shared: Any) -> float:
    """Sum a shared ``Array('d')`` in place: a view of its memory, no copy."""
    return float(sum(memoryview(_buffer(shared)).cast("B").cast("d")))


def sum_list(data: list[float]) -> float:
    """Sum a list that came as a task argument (pickled and copied into the worker)."""
    return float(sum(data))


def report_pid_and_sleep(path: str, seconds: float) -> int:
    """Write this process's pid to ``path``, then idle so its memory can be sampled."""
    pid = os.getpid()
    temporary = f"{path}.tmp"
    with open(temporary, "w") as handle:
        handle.write(str(pid))
    os.replace(temporary, path)
    time.sleep(seconds)
    return pid
