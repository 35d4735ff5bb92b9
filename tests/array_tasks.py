"""Task functions for tests/test_shared_arrays.py: fill and read shared arrays in place."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# What item i of a filled array holds, per kind of typecode.
LETTERS = "abcdefghijklmnopqrstuvwxyz"


def _raw(shared: Any) -> Any:
    """The ctypes array behind a multiprocessing Array (with a lock or without)."""
    return shared.get_obj() if hasattr(shared, "get_obj") else shared


def pattern(typecode: str, length: int, start: int = 0, stop: int | None = None) -> list[Any]:
    """Items ``start`` to ``stop`` of the pattern :func:`fill_part` writes."""
    indexes = range(start, length if stop is None else stop)
    if typecode == "u":
        return [LETTERS[i % 26] for i in indexes]
    if typecode in "fd":
        return [i * 0.5 for i in indexes]
    return [i % 100 for i in indexes]


def fill_part(shared: Any, typecode: str, part: int = 0, parts: int = 1) -> int:
    """Write the pattern into part ``part`` of ``parts`` of the array, in place; return
    how many items were written."""
    raw = _raw(shared)
    start, stop = len(raw) * part // parts, len(raw) * (part + 1) // parts
    raw[start:stop] = pattern(typecode, len(raw), start, stop)
    return stop - start


def sum_part(shared: Any, part: int, parts: int) -> float:
    """Sum part ``part`` of ``parts`` of a shared ``Array('d')``, through a view of its
    memory (no copy)."""
    view = memoryview(_raw(shared)).cast("B").cast("d")
    start, stop = len(view) * part // parts, len(view) * (part + 1) // parts
    return float(sum(view[start:stop]))


def block_array_file(log_dir: str, name: str) -> None:
    """Put a folder where the run will write ``shared-NAME.bin``: it cannot be written."""
    (Path(log_dir) / "latest" / f"shared-{name}.bin").mkdir()
