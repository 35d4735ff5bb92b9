"""JSON for results: what JSON cannot hold appears as its ``repr``.

orjson does the common case in C. It refuses ints beyond 64 bits (the seed's
cube sums reach 10^23); those documents take the exact, slower path through
the standard library. NaN and infinities are written as null on both paths.

Results are written the same way everywhere (the journal, ``summary.json`` and
``--json``, the human summary): through :func:`written_as` with
:data:`WRITTEN_AS_OPTIONS`. ``runner.vet`` checks each result once with them.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import math
from collections.abc import Callable
from typing import Any

__all__ = ["WRITTEN_AS_OPTIONS", "dumps_compact", "dumps_document", "dumps_line",
           "to_jsonable", "written_as", "written_by"]

# orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS (orjson is imported
# only when something is written): dates and dataclasses go to written_as, which writes
# them as orjson would, but also for a subclass orjson refuses.
WRITTEN_AS_OPTIONS = (1 << 9) | (1 << 11)


def written_as(value: Any) -> Any:
    """What a value JSON cannot hold is written as: a date or time as its ``isoformat()``,
    a dataclass as ``dataclasses.asdict()``, anything else as its ``repr``."""
    step = written_by(value)
    if step == "isoformat()":
        return value.isoformat()
    if step == "dataclasses.asdict()":
        return dataclasses.asdict(value)
    return repr(value)


def written_by(value: Any) -> str:
    """The step :func:`written_as` takes for ``value``, as a message names it:
    ``isoformat()``, ``dataclasses.asdict()`` or ``__repr__``."""
    if isinstance(value, datetime.date | datetime.time):
        return "isoformat()"
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return "dataclasses.asdict()"
    return "__repr__"


_PLAIN = (str, int, bool, type(None))


def to_jsonable(value: Any, default: Callable[[Any], Any] = repr) -> Any:
    """``value`` as plain JSON data: lists, string-keyed dicts, finite numbers, strings;
    anything else as ``default(value)``."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [to_jsonable(item, default) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: to_jsonable(item, default) for key, item in value.items()}
    return default(value)


def dumps_line(obj: Any, default: Callable[[Any], Any] = repr, option: int = 0) -> bytes:
    """One compact JSON line, with its newline; ``option``: more orjson options."""
    return dumps_compact(obj, default, option) + b"\n"


def dumps_document(obj: Any) -> bytes:
    """An indented JSON document (the ``--json`` report, ``summary.json``), with its newline.

    A document holding ints beyond 64 bits is written compact when it is large,
    since re-indenting it would cost more than writing it.
    """
    import orjson

    try:
        return orjson.dumps(obj, default=written_as, option=orjson.OPT_INDENT_2
                            | orjson.OPT_NON_STR_KEYS | WRITTEN_AS_OPTIONS) + b"\n"
    except TypeError as exc:
        _reraise_default(exc)
        compact = dumps_compact(obj, written_as, WRITTEN_AS_OPTIONS)
    if len(compact) <= INDENT_LIMIT_BYTES:
        return json.dumps(json.loads(compact), indent=2).encode() + b"\n"
    return compact + b"\n"


# Re-indenting goes through the standard library: fine for a summary, not for 100 MB.
INDENT_LIMIT_BYTES = 1 << 20


def dumps_compact(obj: Any, default: Callable[[Any], Any] = repr, option: int = 0) -> bytes:
    """Compact JSON for ``obj``; only the parts orjson refuses take the slow path.

    A container orjson refuses is split (a mapping by key, a list in halves), so
    one huge int among a million results costs a few dozen orjson calls, not a
    Python-level walk of the million.
    """
    import orjson

    try:
        return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS | option)
    except TypeError as exc:
        _reraise_default(exc)
    if isinstance(obj, dict):
        parts = [orjson.dumps(key if isinstance(key, str) else default(key)) + b":" +
                 dumps_compact(value, default, option) for key, value in obj.items()]
        return b"{" + b",".join(parts) + b"}"
    if isinstance(obj, list | tuple) and len(obj) == 1:
        return b"[" + dumps_compact(obj[0], default, option) + b"]"
    if isinstance(obj, list | tuple) and len(obj) > 1:
        middle = len(obj) // 2
        left = dumps_compact(obj[:middle], default, option)
        right = dumps_compact(obj[middle:], default, option)
        return left[:-1] + b"," + right[1:]
    return json.dumps(to_jsonable(obj, default), separators=(",", ":")).encode()


def _reraise_default(exc: TypeError) -> None:
    """Raise what ``default`` raised inside orjson (which wraps it as the ``__cause__`` of
    a TypeError), an interrupt included: the slow path would only call it again."""
    if exc.__cause__ is not None:
        raise exc.__cause__
