"""JSON for results: what JSON cannot hold appears as its ``repr``.

orjson does the common case in C. It refuses ints beyond 64 bits (the seed's
cube sums reach 10^23); those documents take the exact, slower path through
the standard library. NaN and infinities are written as null on both paths.
"""

from __future__ import annotations

import json
import math
from typing import Any

__all__ = ["dumps_document", "dumps_line", "to_jsonable"]

_PLAIN = (str, int, bool, type(None))


def to_jsonable(value: Any) -> Any:
    """``value`` as plain JSON data: lists, string-keyed dicts, finite numbers, strings."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, list | tuple):
        return [to_jsonable(item) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: to_jsonable(item) for key, item in value.items()}
    return repr(value)


def dumps_line(obj: Any) -> bytes:
    """One compact JSON line, with its newline."""
    import orjson

    try:
        return orjson.dumps(obj, default=repr, option=orjson.OPT_NON_STR_KEYS) + b"\n"
    except TypeError:
        return json.dumps(to_jsonable(obj), separators=(",", ":")).encode() + b"\n"


def dumps_document(obj: Any) -> bytes:
    """An indented JSON document (the ``--json`` report, ``summary.json``), with its newline."""
    import orjson

    try:
        return orjson.dumps(
            obj, default=repr, option=orjson.OPT_INDENT_2 | orjson.OPT_NON_STR_KEYS) + b"\n"
    except TypeError:
        return json.dumps(to_jsonable(obj), indent=2).encode() + b"\n"
