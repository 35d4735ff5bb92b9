"""Task functions whose results cannot travel, or that fork: for tests/test_results_travel.py."""

from __future__ import annotations

import os
from typing import Any


class HttpError(Exception):
    """An exception with a custom __init__: it pickles, but unpickling calls
    HttpError(message) and fails (a common pattern in HTTP client libraries)."""

    def __init__(self, status: int, url: str) -> None:
        super().__init__(f"{status} {url}")
        self.status, self.url = status, url


class ExitOnUnpickle:
    """Pickles fine; unpickling raises SystemExit(3)."""

    def __reduce__(self) -> Any:
        return (_exit_3, ())


def _exit_3() -> None:
    raise SystemExit(3)


class ExitOnPickle:
    """Pickling raises SystemExit(3), in the worker."""

    def __reduce__(self) -> Any:
        raise SystemExit(3)


def nested(depth: int) -> Any:
    value: Any = 0
    for _ in range(depth):
        value = [value]
    return value


def result_of(x: int, bad: int = 1, kind: str = "http") -> Any:
    """``x``, except at ``bad``: a result of ``kind`` that cannot travel back."""
    if x != bad:
        return x
    if kind == "http":
        return HttpError(500, "https://example.invalid/x")
    if kind == "exit_on_unpickle":
        return ExitOnUnpickle()
    if kind == "exit_on_pickle":
        return ExitOnPickle()
    return nested(100_000)


def fork_and_return(x: int, at: int = 1) -> Any:
    """At item ``at``, fork; the child returns from the task as the parent does. The
    parent waits for the child and returns its exit status, so a child that went on
    running mprun's loop would keep the parent waiting."""
    if x != at:
        return x
    pid = os.fork()
    if pid == 0:
        return "child"
    _, status = os.waitpid(pid, 0)
    return ["parent", os.waitstatus_to_exitcode(status)]
