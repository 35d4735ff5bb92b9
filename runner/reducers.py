"""A job's ``reduce``: the named reducers, or a ``"module:qualname"`` called with the results.

The one table of reducers: the config's validation and its JSON Schema read
the names from here, the scheduler the functions.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from typing import Any

from runner import imports

__all__ = ["REDUCERS", "reduce"]

REDUCERS: dict[str, Callable[[list[Any]], Any]] = {
    "sum": sum,
    "min": min,
    "max": max,
    "count": len,
    "mean": statistics.fmean,
    "list": list,
}


def reduce(how: str, values: list[Any]) -> Any:
    """``values`` reduced as ``how`` says: a name of :data:`REDUCERS`, or "module:qualname"."""
    named = REDUCERS.get(how)
    return named(values) if named is not None else imports.resolve(how)(values)
