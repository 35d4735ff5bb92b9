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
import enum
import itertools
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


def dumps_document(obj: Any, *, refused: bool = False) -> bytes:
    """An indented JSON document (the ``--json`` report, ``summary.json``), with its newline.

    A document holding ints beyond 64 bits is written compact when it is large,
    since re-indenting it would cost more than writing it. One found in the
    document's skeleton (a report's ``reduced``), or known to be there
    (``refused``: orjson refused some results when they were checked), is seen
    before orjson is tried, so that the results beside it are written once, not
    once per failed try.
    """
    import orjson

    if not refused and not _skeleton_holds_big_int(obj, SKELETON_DEPTH):
        try:
            return orjson.dumps(obj, default=written_as, option=orjson.OPT_INDENT_2
                                | orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS
                                | WRITTEN_AS_OPTIONS)
        except TypeError as exc:
            _reraise_default(exc)
    parts = _Pieces(written_as, WRITTEN_AS_OPTIONS).written(obj)
    if sum(map(len, parts)) <= INDENT_LIMIT_BYTES:
        return json.dumps(json.loads(b"".join(parts)), indent=2).encode() + b"\n"
    return b"".join([*parts, b"\n"])


# Re-indenting goes through the standard library: fine for a summary, not for 100 MB.
INDENT_LIMIT_BYTES = 1 << 20

# The skeleton: containers of at most SKELETON_ITEMS items, fewer than SKELETON_DEPTH
# levels down (a report, its jobs, each job's fields). Once orjson refused a document,
# the skeleton is walked in Python rather than tried whole again, which would write
# again every result before the int it refuses; below it, a part is tried whole first.
SKELETON_DEPTH = 3
SKELETON_ITEMS = 64
# A refused container longer than this is tried in blocks of this many items, and only
# a refused block item by item: one huge int among a million results costs about 250
# orjson calls, not a bisection that writes the million again per halving; a million
# huge ints cost a Python step each, not a million log-deep bisections.
BLOCK_ITEMS = 4096

# orjson writes ints in [-2**63, 2**64); any other goes through int.__repr__.
_INT_MIN, _INT_END = -(1 << 63), 1 << 64


def dumps_compact(obj: Any, default: Callable[[Any], Any] = repr, option: int = 0) -> bytes:
    """Compact JSON for ``obj``: what orjson would write if it took ints of any size.

    One orjson call; if it refuses (an int beyond 64 bits, a tuple key), only the
    parts that hold the refused value take the slow path (``BLOCK_ITEMS``).
    """
    import orjson

    try:
        return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS | option)
    except TypeError as exc:
        _reraise_default(exc)
    return b"".join(_Pieces(default, option).written(obj))


class _Pieces:
    """A document written part by part: within the skeleton without trying it whole,
    below it each part tried whole first. The parts are joined once, by the caller:
    a 50 MB list of results is copied once, not once per level that holds it."""

    def __init__(self, default: Callable[[Any], Any], option: int) -> None:
        import orjson

        self.default, self.option = default, orjson.OPT_NON_STR_KEYS | option
        self.out: list[bytes | memoryview] = []

    def written(self, obj: Any) -> list[bytes | memoryview]:
        self.write(obj, 0)
        return self.out

    def write(self, obj: Any, depth: int) -> None:
        if isinstance(obj, int) and not _INT_MIN <= obj < _INT_END:
            self.out.append(int.__repr__(obj).encode())
            return
        if not (depth < SKELETON_DEPTH and _in_skeleton(obj)) and not _long(obj) \
                and self._tried(obj):
            return
        if isinstance(obj, dict) or _is_array(obj):
            brackets = b"{}" if isinstance(obj, dict) else b"[]"
            self.out.append(brackets[:1])
            blocks = _dict_blocks(obj) if isinstance(obj, dict) else _list_blocks(obj)
            self._items(blocks, depth) if len(blocks) == 1 else self._blocks(blocks, depth)
            self.out.append(brackets[1:])
        else:
            self.write(_contents(obj, self.default, self.option), depth)

    def _tried(self, obj: Any) -> bool:
        """Whether orjson took ``obj`` whole (its JSON, then, is written)."""
        import orjson

        try:
            self.out.append(orjson.dumps(obj, default=self.default, option=self.option))
        except TypeError as exc:
            _reraise_default(exc)
            return False
        return True

    def _blocks(self, blocks: list[Any], depth: int) -> None:
        for index, block in enumerate(blocks):
            if index:
                self.out.append(b",")
            start = len(self.out)
            self.write(block, depth)
            self.out[start] = memoryview(self.out[start])[1:]  # the block's brackets
            self.out[-1] = memoryview(self.out[-1])[:-1]

    def _items(self, blocks: list[Any], depth: int) -> None:
        (block,) = blocks
        pairs = block.items() if isinstance(block, dict) else ((None, item) for item in block)
        for index, (key, value) in enumerate(pairs):
            if index:
                self.out.append(b",")
            if isinstance(block, dict):
                self.out.append(_key(key, self.default, self.option) + b":")
            self.write(value, depth + 1)


def _contents(obj: Any, default: Callable[[Any], Any], option: int) -> Any:
    """What orjson writes in place of ``obj``, which it refused although it is neither a
    container nor an int: a dataclass's fields, an enum's value, else ``default(obj)``;
    one of those holds a huge int."""
    import orjson

    if dataclasses.is_dataclass(obj) and not option & orjson.OPT_PASSTHROUGH_DATACLASS:
        return {field.name: getattr(obj, field.name) for field in dataclasses.fields(obj)}
    if isinstance(obj, enum.Enum):
        return obj.value
    return default(obj)


def _list_blocks(items: list[Any] | tuple[Any, ...]) -> list[Any]:
    if len(items) <= BLOCK_ITEMS:
        return [items]
    return [items[start:start + BLOCK_ITEMS] for start in range(0, len(items), BLOCK_ITEMS)]


def _dict_blocks(mapping: dict[Any, Any]) -> list[Any]:
    if len(mapping) <= BLOCK_ITEMS:
        return [mapping]
    pairs = iter(mapping.items())
    return [dict(itertools.islice(pairs, BLOCK_ITEMS))
            for _ in range(0, len(mapping), BLOCK_ITEMS)]


def _key(key: Any, default: Callable[[Any], Any], option: int) -> bytes:
    """A key as orjson writes it (``OPT_NON_STR_KEYS``); one it refuses (a tuple, an int
    beyond 64 bits) as the string ``default`` makes of it, else as its ``repr``."""
    import orjson

    if isinstance(key, str):
        return orjson.dumps(key)
    try:
        return orjson.dumps({key: None}, option=orjson.OPT_NON_STR_KEYS | option)[1:-6]
    except TypeError:
        text = default(key)
    return orjson.dumps(text if isinstance(text, str) else repr(key))


def _is_array(obj: Any) -> bool:
    """Whether orjson writes ``obj`` as an array (a tuple subclass goes to ``default``)."""
    return isinstance(obj, list) or type(obj) is tuple


def _long(obj: Any) -> bool:
    """Whether ``obj`` is tried in blocks, never whole: on the slow path a whole try of a
    million results would write them all once more before the blocks do."""
    return (isinstance(obj, dict) or _is_array(obj)) and len(obj) > BLOCK_ITEMS


def _in_skeleton(obj: Any) -> bool:
    return (isinstance(obj, dict) or _is_array(obj)) and len(obj) <= SKELETON_ITEMS


def _skeleton_holds_big_int(obj: Any, depth: int) -> bool:
    """Whether an int orjson refuses is in ``obj``'s skeleton (``SKELETON_DEPTH``)."""
    if isinstance(obj, int):
        return not _INT_MIN <= obj < _INT_END
    if depth <= 0 or not _in_skeleton(obj):
        return False
    items = obj.values() if isinstance(obj, dict) else obj
    return any(_skeleton_holds_big_int(item, depth - 1) for item in items)


def _reraise_default(exc: TypeError) -> None:
    """Raise what ``default`` raised inside orjson (which wraps it as the ``__cause__`` of
    a TypeError), an interrupt included: the slow path would only call it again."""
    if exc.__cause__ is not None:
        raise exc.__cause__
