"""Shared multiprocessing primitives: built once per run, reachable from every mode.

Data flow::

    config.shared (runner.primitives models)
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
from dataclasses import dataclass
from typing import Any

__all__ = ["OMITTED", "TYPECODES", "Ref", "build", "resolve", "snapshot"]

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

    ``specs`` maps names to ``runner.primitives`` models, which know how to build
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


def snapshot(specs: dict[str, Any], built: dict[str, Any]) -> dict[str, Any]:
    """The final shared state as the summary shows it (see DESIGN.md's table): what each
    model's ``summary()`` reads, primitives it omits left out."""
    state: dict[str, Any] = {}
    for name, spec in specs.items():
        shown = spec.summary(built[name])
        if shown is not OMITTED:
            state[name] = shown
    return state
