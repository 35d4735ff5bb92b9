"""``dumps_compact`` and ``dumps_document`` write exactly what orjson would, had it no
64-bit limit on ints, and write the results beside a huge int once."""

from __future__ import annotations

import collections
import contextlib
import dataclasses
import datetime
import enum
import json
import math
from collections.abc import Callable
from typing import Any
from unittest import mock

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import jsonable
from runner.jsonable import WRITTEN_AS_OPTIONS, dumps_compact, dumps_document, written_as


@dataclasses.dataclass(frozen=True)
class Point:
    x: Any
    y: Any


Pair = collections.namedtuple("Pair", "a b")  # orjson writes it through default


class Big(enum.Enum):
    HUGE = 2**70
    SMALL = 1


# Keys of different kinds never write the same string: text keys are upper case.
keys = (st.text("ABZé", max_size=3) | st.integers() | st.booleans() | st.none()
        | st.floats(allow_nan=False, allow_infinity=False) | st.tuples(st.integers(), st.integers())
        | st.dates())
scalars = (st.none() | st.booleans() | st.floats() | st.text("abc é\n\"\\", max_size=4)
           | st.integers(min_value=-10, max_value=10)
           | st.sampled_from([2**63 - 1, 2**64 - 1, 2**64, -(2**63), -(2**63) - 1, 3**60,
                              -(2**100), 10**30])
           | st.integers() | st.datetimes() | st.dates()
           | st.frozensets(st.integers(min_value=0, max_value=9), max_size=2)
           | st.builds(Point, st.integers(), st.floats()) | st.sampled_from(Big)
           | st.builds(Pair, st.integers(), st.integers()))
documents = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=6) | st.tuples(inner, inner)
    | st.dictionaries(keys, inner, max_size=5),
    max_leaves=40,
)
str_key_documents = st.recursive(
    scalars.filter(lambda value: not isinstance(value, Point | Big | Pair)),
    lambda inner: st.lists(inner, max_size=6) | st.tuples(inner, inner)
    | st.dictionaries(st.text("ABZé", max_size=3), inner, max_size=5),
    max_leaves=40,
)


def unbounded_orjson(obj: Any, default: Callable[[Any], Any], option: int) -> bytes:
    """The reference: orjson's output with each int beyond 64 bits in place of a
    placeholder string, and each key orjson refuses as ``default`` writes it."""
    big: list[int] = []

    def walk(value: Any) -> Any:
        if isinstance(value, int) and not -(2**63) <= value < 2**64:
            big.append(value)
            return f"\x00big{len(big) - 1}\x00"
        if isinstance(value, dict):
            return {key_text(key): walk(item) for key, item in value.items()}
        if isinstance(value, list) or type(value) is tuple:
            return [walk(item) for item in value]
        if isinstance(value, Point) and not option & orjson.OPT_PASSTHROUGH_DATACLASS:
            return {"x": walk(value.x), "y": walk(value.y)}
        if isinstance(value, enum.Enum):
            return walk(value.value)
        return value

    def key_text(key: Any) -> str:
        if isinstance(key, str):
            return key
        try:
            written = orjson.dumps({key: None}, option=orjson.OPT_NON_STR_KEYS | option)
            return str(json.loads(written).popitem()[0])
        except TypeError:
            text = default(key)
            return text if isinstance(text, str) else repr(key)

    data = orjson.dumps(walk(obj), default=lambda value: walk(default(value)),
                        option=orjson.OPT_NON_STR_KEYS | option)
    for index, value in enumerate(big):
        data = data.replace(b'"\\u0000big%d\\u0000"' % index, str(value).encode())
    return data


def reference_document(obj: Any) -> bytes:
    """``dumps_document``'s rule on the reference: orjson indented, unless an int beyond
    64 bits is in it; then re-indented by the standard library, or compact when large."""
    try:
        return orjson.dumps(obj, default=written_as, option=orjson.OPT_INDENT_2
                            | orjson.OPT_NON_STR_KEYS | WRITTEN_AS_OPTIONS) + b"\n"
    except TypeError:
        compact = unbounded_orjson(obj, written_as, WRITTEN_AS_OPTIONS)
    if len(compact) <= jsonable.INDENT_LIMIT_BYTES:
        return json.dumps(json.loads(compact), indent=2).encode() + b"\n"
    return compact + b"\n"


def old_dumps_compact(obj: Any, default: Callable[[Any], Any] = repr, option: int = 0) -> bytes:
    """The implementation before #11 (it bisected refused lists), kept as a second
    reference for documents with string keys."""
    try:
        return orjson.dumps(obj, default=default, option=orjson.OPT_NON_STR_KEYS | option)
    except TypeError:
        pass
    if isinstance(obj, dict):
        parts = [orjson.dumps(key) + b":" + old_dumps_compact(value, default, option)
                 for key, value in obj.items()]
        return b"{" + b",".join(parts) + b"}"
    if isinstance(obj, list | tuple) and len(obj) == 1:
        return b"[" + old_dumps_compact(obj[0], default, option) + b"]"
    if isinstance(obj, list | tuple) and len(obj) > 1:
        middle = len(obj) // 2
        left = old_dumps_compact(obj[:middle], default, option)
        right = old_dumps_compact(obj[middle:], default, option)
        return left[:-1] + b"," + right[1:]
    return json.dumps(jsonable.to_jsonable(obj, default), separators=(",", ":")).encode()


# Tiny blocks and skeletons, so that small documents take every path.
small_sizes = [{}, {"BLOCK_ITEMS": 2, "SKELETON_ITEMS": 1},
               {"BLOCK_ITEMS": 3, "SKELETON_ITEMS": 5, "SKELETON_DEPTH": 1},
               {"INDENT_LIMIT_BYTES": 0, "BLOCK_ITEMS": 2}]


def sized(**sizes: int) -> Any:
    return mock.patch.multiple(jsonable, **sizes) if sizes else contextlib.nullcontext()


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from(small_sizes))
def test_compact_and_document_are_orjsons_output_as_if_ints_had_no_limit(doc, sizes):
    """Small ints, huge ints, floats with NaN and infinities, text, non-string keys,
    tuples, sets, dates and dataclasses: byte for byte the reference, whatever the
    block and skeleton sizes."""
    with sized(**sizes):
        assert dumps_compact(doc, written_as, WRITTEN_AS_OPTIONS) == unbounded_orjson(
            doc, written_as, WRITTEN_AS_OPTIONS)
        assert dumps_compact(doc) == unbounded_orjson(doc, repr, 0)
        assert dumps_document(doc) == reference_document(doc)
        assert dumps_document({"jobs": [{"results": [doc], "reduced": 2**70}]}) == \
            reference_document({"jobs": [{"results": [doc], "reduced": 2**70}]})


@settings(max_examples=300, deadline=None)
@given(str_key_documents, st.sampled_from(small_sizes))
def test_output_is_todays_for_documents_with_string_keys(doc, sizes):
    """Where the old implementation's slow path wrote keys and defaults as orjson does
    (string keys, no dataclass, enum or namedtuple holding a huge int), the bytes did not change."""
    with sized(**sizes):
        assert dumps_compact(doc, written_as, WRITTEN_AS_OPTIONS) == old_dumps_compact(
            doc, written_as, WRITTEN_AS_OPTIONS)


class Counted:
    """Counts how often it is written (``written_as`` writes it as its repr)."""

    def __init__(self) -> None:
        self.writes = 0

    def __repr__(self) -> str:
        self.writes += 1
        return "counted"


def test_a_huge_reduced_value_leaves_the_results_written_once():
    """The report's ``reduced`` beyond 64 bits: the results before it go through
    orjson once, not once per level of the document."""
    marker = Counted()
    results: list[Any] = [*range(100_000), marker]
    data = dumps_document({"run_id": "r", "jobs": [{"results": results, "reduced": 2**70}]})
    assert marker.writes == 1
    assert json.loads(data)["jobs"][0]["reduced"] == 2**70
    assert json.loads(data)["jobs"][0]["results"][-1] == "counted"


def test_a_huge_int_among_results_costs_one_refused_try_then_its_block_only():
    """A huge int deep in the results: a refused try of the whole, then each block
    once (the long results list is never tried whole); only the block holding it goes
    item by item."""
    marker = Counted()
    results: list[Any] = [marker, *range(200_000)]
    results[150_000] = 2**70
    data = dumps_compact({"results": results}, written_as, WRITTEN_AS_OPTIONS)
    assert marker.writes == 2
    assert json.loads(data)["results"][150_000] == 2**70
    assert json.loads(data)["results"][:2] == ["counted", 0]


def test_nan_and_infinities_are_null_beside_huge_ints():
    data = dumps_document({"jobs": [{"results": [math.nan, math.inf], "reduced": -(2**80)}]})
    assert json.loads(data) == {"jobs": [{"results": [None, None], "reduced": -(2**80)}]}


def test_keys_are_written_as_orjson_writes_them_even_beside_a_huge_int():
    """The slow path no longer writes ``True``, ``None`` or an int key through
    ``default``: the journal would call such a line lossy."""
    calls: list[Any] = []

    def default(value: Any) -> Any:
        calls.append(value)
        return repr(value)

    doc = {True: 1, None: 2, 3: 2**70, datetime.date(2020, 1, 2): 4}
    assert dumps_compact(doc, default) == \
        b'{"true":1,"null":2,"3":1180591620717411303424,"2020-01-02":4}'
    assert calls == []
