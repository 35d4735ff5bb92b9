"""Shared multiprocessing primitives: built once per run, reachable from every mode.

Data flow::

    config.shared (runner.primitives records)
                  ──build()──> {name: ctx.Value | ctx.Array | ctx.Lock | ...}
                                 │ serial / thread: used in place
                                 │ process / pool: handed to each worker at start-up
                                 ▼ (inheritance or Process args; never task arguments)
    task args [Ref("counter"), 1] ──resolve()──> [<Synchronized i 0>, 1]

multiprocessing refuses Values and Locks as pool task arguments ("should only
be shared between processes through inheritance"), so tasks carry ``Ref``
placeholders and each process swaps them for its own handle.

This module is imported by every worker: stdlib only, no pydantic.
"""

from __future__ import annotations

import array
import queue as queue_mod
import re
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

__all__ = ["ARRAY_FILE_ITEMS", "ARRAY_HEAD", "OMITTED", "TYPECODES", "ArrayFile", "Ref",
           "array_file_name", "array_state", "build", "resolve", "snapshot"]

# What a primitive's summary() returns when the summary does not show it (a lock).
OMITTED: Any = object()


@dataclass(frozen=True, slots=True)
class Ref:
    """Stands for the shared primitive ``name`` (written ``!ref name`` in YAML)."""

    name: str

    def __repr__(self) -> str:
        return f"!ref {self.name}"


@dataclass(frozen=True)
class Typecode:
    code: str
    c_type: str
    kind: str  # "int", "float" or "char"
    low: int | None = None
    high: int | None = None

    def describe(self) -> str:
        if self.kind == "int":
            return f"{self.c_type}, an int from {self.low} to {self.high}"
        if self.kind == "float":
            return f"{self.c_type}, a number"
        return f"{self.c_type}, one character"


def _int_code(code: str, c_type: str) -> Typecode:
    bits = array.array(code).itemsize * 8
    signed = code.islower()
    low, high = (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1) if signed else (0, 2**bits - 1)
    return Typecode(code, c_type, "int", low, high)


# The seed tutorial's table; sizes are this platform's, as ctypes will use them.
TYPECODES: dict[str, Typecode] = {
    "b": _int_code("b", "signed char"),
    "B": _int_code("B", "unsigned char"),
    "u": Typecode("u", "Py_UNICODE", "char"),
    "h": _int_code("h", "signed short"),
    "H": _int_code("H", "unsigned short"),
    "i": _int_code("i", "signed int"),
    "I": _int_code("I", "unsigned int"),
    "l": _int_code("l", "signed long"),
    "L": _int_code("L", "unsigned long"),
    "q": _int_code("q", "signed long long"),
    "Q": _int_code("Q", "unsigned long long"),
    "f": Typecode("f", "float", "float"),
    "d": Typecode("d", "double", "float"),
}


def default_init(typecode: str) -> int | float | str:
    kind = TYPECODES[typecode].kind
    return "\0" if kind == "char" else 0.0 if kind == "float" else 0


def build(specs: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """Create each declared primitive from the multiprocessing context ``ctx``.

    ``specs`` maps names to ``runner.primitives`` records, which know how to build
    their type.
    """
    return {name: spec.build(ctx) for name, spec in specs.items()}


def resolve(value: Any, shared: dict[str, Any]) -> Any:
    """Return ``value`` with every :class:`Ref` inside it replaced by its primitive."""
    if isinstance(value, Ref):
        return shared[value.name]
    if isinstance(value, list):
        return [resolve(item, shared) for item in value]
    if isinstance(value, tuple):
        return tuple(resolve(item, shared) for item in value)
    if isinstance(value, dict):
        return {key: resolve(item, shared) for key, item in value.items()}
    return value


def contains_ref(value: Any) -> bool:
    if isinstance(value, Ref):
        return True
    if isinstance(value, list | tuple):
        return any(contains_ref(item) for item in value)
    if isinstance(value, dict):
        return any(contains_ref(item) for item in value.values())
    return False


def drain(q: Any, *, settle: float = 0.05) -> list[Any]:
    """Take every item left in a multiprocessing queue, in order.

    ``settle`` is how long to wait for items still in a feeder thread's buffer:
    ``empty()`` alone can miss an item that is written but not yet readable.
    """
    items: list[Any] = []
    while True:
        try:
            items.append(q.get(timeout=settle))
        except queue_mod.Empty:
            return items


# Past this many items an array's final state is a file of its raw bytes, not a list:
# a list of 10**7 floats costs the runner some 400 MB (and its JSON as much again) to
# show what 80 MB of shared memory hold. Below it a list is small and easy to read.
ARRAY_FILE_ITEMS = 100_000
# How many of a large array's first items the summary shows (its ``head``).
ARRAY_HEAD = 10


@dataclass(frozen=True)
class ArrayFile:
    """A large array's final state: ``length`` items of ``typecode``, the first of them in
    ``head``, and their raw bytes in ``file`` (a name in the run folder; None when the run
    has no folder, the name is secret, or the file could not be written).

    ``data`` is a byte view of the array's shared memory until the file is written
    (:func:`snapshot` drops it), so that nothing is copied before then.
    """

    file: str | None
    typecode: str
    length: int
    head: list[Any]
    data: memoryview | None = field(default=None, repr=False, compare=False)

    def as_dict(self) -> dict[str, Any]:
        """What ``summary.json`` and ``--json`` hold for it."""
        return {"file": self.file, "typecode": self.typecode, "length": self.length,
                "head": list(self.head)}


def array_state(typecode: str, obj: Any) -> list[Any] | ArrayFile:
    """An array's final state: its items as a list, or past :data:`ARRAY_FILE_ITEMS` an
    :class:`ArrayFile` viewing its memory, no item converted but the head's."""
    if hasattr(obj, "snapshot"):  # one that lives elsewhere (a dask scheduler): a copy
        obj = obj.snapshot()
    raw = obj.get_obj() if hasattr(obj, "get_obj") else obj  # with a lock, or without
    length = len(raw)
    if length <= ARRAY_FILE_ITEMS:
        return list(obj[:])
    # Unlocked: the jobs are over, and a worker killed holding the lock must not hang this.
    return ArrayFile(None, typecode, length, list(raw[:ARRAY_HEAD]),
                     memoryview(raw).cast("B"))


_UNSAFE = re.compile(r"[^A-Za-z0-9._-]")


def array_file_name(name: str) -> str:
    """``shared-NAME.bin``, NAME with every character but letters, digits, ``.``, ``_``
    and ``-`` replaced by ``_``."""
    return f"shared-{_UNSAFE.sub('_', name)}.bin"


#: Writes a large array's bytes (name, bytes) and returns its file's name, or None.
WriteArray = Callable[[str, memoryview], str | None]


def snapshot(specs: dict[str, Any], built: dict[str, Any],
             write: WriteArray | None = None) -> dict[str, Any]:
    """The final shared state as the summary shows it (see DESIGN.md's table): what each
    record's ``summary()`` reads, primitives it omits left out. A large array's bytes go
    to ``write`` (none without it: ``file`` is None)."""
    state: dict[str, Any] = {}
    for name, spec in specs.items():
        try:
            shown = spec.summary(built[name])
        except Exception as exc:  # one kept elsewhere (a dask scheduler) that went away
            shown = {"unreadable": f"{type(exc).__name__}: {exc}"}
        if isinstance(shown, ArrayFile) and shown.data is not None:
            written = write(name, shown.data) if write is not None else None
            shown = replace(shown, file=written, data=None)
        if shown is not OMITTED:
            state[name] = shown
    return state
