"""Task functions whose results travel but cannot be written as JSON: for
tests/test_results_written.py. Every class pickles, so that process and pool modes
bring the result back to the runner, where it is written."""

from __future__ import annotations

import dataclasses
import datetime
from typing import Any

from tests.travel_tasks import nested


class Detached:
    """A detached ORM object: its ``__repr__`` reads a closed session."""

    def __repr__(self) -> str:
        raise ValueError("instance is not bound to a session")


class ExitingRepr:
    def __repr__(self) -> str:
        raise SystemExit(3)


class Abort(BaseException):
    """A BaseException of a library's own, as KeyboardInterrupt is one."""


class AbortingRepr:
    def __repr__(self) -> str:
        raise Abort("aborted")


class EndlessRepr:
    def __repr__(self) -> str:
        return f"<{self!r}>"  # RecursionError


class Key:
    """A dict key orjson cannot write, whose ``__repr__`` raises."""

    def __hash__(self) -> int:
        return 1

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Key)

    def __repr__(self) -> str:
        raise ValueError("key of a closed session")


class NoCopy:
    def __deepcopy__(self, memo: Any) -> Any:
        raise TypeError("cannot copy a live connection")


@dataclasses.dataclass
class Holder:
    """A dataclass whose ``dataclasses.asdict()`` raises (it deep-copies its fields)."""

    conn: Any


class Moment(datetime.datetime):
    """A datetime subclass whose ``isoformat()`` raises."""

    def isoformat(self, sep: str = "T", timespec: str = "auto") -> str:
        raise ValueError("no time zone database")


class Unsized(list[Any]):
    """A list whose ``__len__`` and ``__iter__`` raise: orjson reads its items in C, but
    the exact path (taken for an int beyond 64 bits) calls them."""

    def __len__(self) -> int:
        raise ValueError("length unknown")

    def __iter__(self) -> Any:
        raise ValueError("cannot iterate")


def _unsized_with_big_int() -> Unsized:
    value = Unsized()
    list.extend(value, [10**30, 1])
    return value


RESULTS: dict[str, Any] = {
    "repr": Detached,
    "repr_exit": ExitingRepr,
    "repr_base": AbortingRepr,
    "repr_recursion": EndlessRepr,
    "key_repr": lambda: {Key(): 1},
    "asdict": lambda: Holder(NoCopy()),
    "isoformat": lambda: Moment(2026, 1, 1),
    "unsized": _unsized_with_big_int,
    "deep": lambda: nested(300),
    "very_deep": lambda: nested(100_000),
}


def result_of(x: int, bad: int = 1, kind: str = "repr") -> Any:
    """``x``, except at ``bad``: a result of ``kind`` that cannot be written as JSON."""
    return RESULTS[kind]() if x == bad else x


def fine_unsized(x: int) -> Any:
    """A list subclass whose ``__len__`` and ``__iter__`` raise, holding plain ints: orjson
    writes it, so every writer must (serial and thread mode: it cannot pickle)."""
    value = Unsized()
    list.extend(value, [x, x + 1])
    return value


def reduce_to_detached(values: list[Any]) -> Any:
    return Detached()


def leave_detached(q: Any) -> int:
    """Leaves an object whose ``__repr__`` raises in a shared queue: the summary drains it."""
    q.put(Detached())
    return 0


class Uncomparable:
    """Compares as a numpy array does: ``==`` gives something whose truth raises."""

    def __eq__(self, other: object) -> bool:
        raise ValueError("the truth value of an array with more than one element is ambiguous")

    __hash__ = object.__hash__

    def __repr__(self) -> str:
        return "Uncomparable()"


def uncomparable(_: Any = None) -> Uncomparable:
    return Uncomparable()
