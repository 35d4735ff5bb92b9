"""Shared primitives (runner.shared): the typecode table, build, Ref resolution, snapshot.

These run in the test process against each start method's context; that the
primitives reach worker processes in every mode is tests/test_executors.py's.
"""

from __future__ import annotations

import array
import ctypes
import multiprocessing
import multiprocessing.sharedctypes
import pickle
import queue
import time
from multiprocessing.reduction import ForkingPickler
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.models import freeze
from runner.shared import (
    TYPECODES,
    Ref,
    build,
    contains_ref,
    default_init,
    drain,
    resolve,
    snapshot,
)
from runner.sharedmodels import SHARED_MODELS

pytestmark = pytest.mark.timeout(60)

INT_CODES = [code for code, info in TYPECODES.items() if info.kind == "int"]


def spec(type: str, **fields: Any) -> Any:
    """The shared type's record (runner.primitives), which build() and snapshot() use,
    validated by its model (runner.sharedmodels) as a config's is."""
    return freeze(SHARED_MODELS[type].model_validate({"type": type, **fields}))


# -- the typecode table ----------------------------------------------------------


def test_the_typecode_table_is_the_seeds() -> None:
    """b B u h H i I l L q Q f d, in the seed tutorial's order."""
    assert list(TYPECODES) == list("bBuhHiIlLqQfd")
    assert {code: info.kind for code, info in TYPECODES.items()} == {
        **dict.fromkeys("bBhHiIlLqQ", "int"), "u": "char", "f": "float", "d": "float"}


@pytest.mark.parametrize("code", INT_CODES)
def test_integer_ranges_are_this_platforms_c_ranges(code: str) -> None:
    """The range checked at load time is exactly what the C type holds: ctypes wraps
    silently beyond it, so the table must not be off by one."""
    info = TYPECODES[code]
    bits = array.array(code).itemsize * 8
    assert info.low is not None and info.high is not None
    assert info.high - info.low == 2**bits - 1
    assert info.low == (-(2 ** (bits - 1)) if code.islower() else 0)
    c_type = multiprocessing.sharedctypes.typecode_to_type[code]  # type: ignore[attr-defined]
    assert ctypes.sizeof(c_type) * 8 == bits
    assert c_type(info.high).value == info.high
    assert c_type(info.low).value == info.low
    assert c_type(info.high + 1).value != info.high + 1  # why the range is checked at all


def test_describe_names_the_c_type_and_what_fits() -> None:
    assert TYPECODES["b"].describe() == "signed char, an int from -128 to 127"
    assert TYPECODES["B"].describe() == "unsigned char, an int from 0 to 255"
    assert TYPECODES["d"].describe() == "double, a number"
    assert TYPECODES["u"].describe() == "Py_UNICODE, one character"


@pytest.mark.parametrize("code", list(TYPECODES))
def test_default_init_is_zero_of_the_right_kind(code: str) -> None:
    kind = TYPECODES[code].kind
    expected = {"int": 0, "float": 0.0, "char": "\0"}[kind]
    value = default_init(code)
    assert value == expected and type(value) is type(expected)


# -- Ref -------------------------------------------------------------------------


def test_a_ref_is_a_small_hashable_picklable_placeholder() -> None:
    """Refs travel inside task arguments through pipes: they must pickle as themselves."""
    ref = Ref("counter")
    assert repr(ref) == "!ref counter"
    assert ref == Ref("counter") and ref != Ref("lock")
    assert {ref: 1}[Ref("counter")] == 1
    assert pickle.loads(pickle.dumps(ref)) == ref
    assert pickle.loads(bytes(ForkingPickler.dumps([ref, (ref,)]))) == [ref, (ref,)]
    with pytest.raises(AttributeError):
        ref.name = "other"  # type: ignore[misc]


# -- build -----------------------------------------------------------------------


def test_build_makes_each_primitive_from_the_given_context(start_method: str) -> None:
    """Every shared type is built by the run's context, with its keys applied."""
    ctx = multiprocessing.get_context(start_method)
    specs = {
        "v": spec("value", typecode="i"),
        "v_init": spec("value", typecode="d", init=2.5),
        "v_raw": spec("value", typecode="q", init=7, lock=False),
        "u": spec("value", typecode="u"),
        "a_size": spec("array", typecode="h", size=3),
        "a_init": spec("array", typecode="B", init=[1, 2, 255]),
        "a_raw": spec("array", typecode="i", init=[4], lock=False),
        "lock": spec("lock"),
        "rlock": spec("rlock"),
        "sem": spec("semaphore", init=2),
        "event": spec("event"),
        "q": spec("queue", maxsize=2),
        "q_unbounded": spec("queue"),
        "barrier": spec("barrier", parties=3),
    }
    built = build(specs, ctx)
    assert list(built) == list(specs)
    assert built["v"].value == 0 and hasattr(built["v"], "get_lock")
    assert built["v_init"].value == 2.5
    assert built["v_raw"].value == 7 and not hasattr(built["v_raw"], "get_lock")
    assert built["u"].value == "\0"
    assert built["a_size"][:] == [0, 0, 0] and hasattr(built["a_size"], "get_lock")
    assert built["a_init"][:] == [1, 2, 255]
    assert built["a_raw"][:] == [4] and not hasattr(built["a_raw"], "get_lock")
    assert type(built["lock"]) is type(ctx.Lock())
    assert type(built["rlock"]) is type(ctx.RLock())
    sem = built["sem"]
    assert sem.acquire(block=False) and sem.acquire(block=False)
    assert not sem.acquire(block=False), "a semaphore of 2 admits two holders"
    assert not built["event"].is_set()
    q = built["q"]
    q.put(1)
    q.put(2)
    with pytest.raises(queue.Full):
        q.put(3, timeout=0.01)
    assert drain(q) == [1, 2]
    assert built["barrier"].parties == 3
    assert drain(built["q_unbounded"]) == []


# -- resolve and contains_ref --------------------------------------------------------


def test_resolve_replaces_refs_at_any_depth_and_keeps_containers() -> None:
    counter, lock = object(), object()
    shared = {"counter": counter, "lock": lock}
    value = [Ref("counter"), (1, Ref("lock")), {"k": [Ref("counter")], "n": None}, "counter"]
    resolved = resolve(value, shared)
    assert resolved[0] is counter
    assert isinstance(resolved[1], tuple) and resolved[1][1] is lock
    assert resolved[2]["k"][0] is counter and resolved[2]["n"] is None
    assert resolved[3] == "counter", "a string that names a primitive is not a ref"
    assert value[0] == Ref("counter"), "the input is left alone"


def test_resolve_of_an_unknown_name_raises_key_error() -> None:
    with pytest.raises(KeyError):
        resolve([Ref("missing")], {})


_leaves = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False),
                    st.text(max_size=5))
_plain = st.recursive(
    _leaves,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=3), inner, max_size=4)),
    max_leaves=20,
)
_with_refs = st.recursive(
    st.one_of(_leaves, st.sampled_from([Ref("a"), Ref("b")])),
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.tuples(inner, inner),
                            st.dictionaries(st.text(max_size=3), inner, max_size=4)),
    max_leaves=20,
)


def _has_ref(value: Any) -> bool:
    if isinstance(value, Ref):
        return True
    if isinstance(value, list | tuple):
        return any(map(_has_ref, value))
    if isinstance(value, dict):
        return any(map(_has_ref, value.values()))
    return False


@given(_plain)
def test_resolve_leaves_values_without_refs_equal(value: Any) -> None:
    assert not contains_ref(value)
    assert resolve(value, {}) == value


@given(_with_refs)
def test_contains_ref_finds_every_ref_and_resolve_removes_them(value: Any) -> None:
    assert contains_ref(value) == _has_ref(value)
    resolved = resolve(value, {"a": "A-object", "b": "B-object"})
    assert not contains_ref(resolved)


# -- drain and snapshot ------------------------------------------------------------


def test_drain_returns_items_still_in_the_feeder_buffer_in_order(start_method: str) -> None:
    """Items put a moment ago may not be readable yet; drain still gets all, in order."""
    q = multiprocessing.get_context(start_method).Queue()
    for item in range(200):
        q.put(item)
    assert drain(q) == list(range(200))
    started = time.perf_counter()
    assert drain(q) == []
    assert time.perf_counter() - started < 1, "an empty queue drains within the settle time"


def test_snapshot_shows_what_the_summary_shows(start_method: str) -> None:
    """value -> number, array -> list, event -> bool, queue -> the items left, in order;
    lock, rlock, semaphore and barrier are omitted."""
    ctx = multiprocessing.get_context(start_method)
    specs = {
        "v": spec("value", typecode="d", init=0.5),
        "c": spec("value", typecode="u", init="x"),
        "a": spec("array", typecode="i", init=[1, 2]),
        "s": spec("array", typecode="u", init=["h", "i"]),
        "e": spec("event"),
        "q": spec("queue"),
        "lock": spec("lock"),
        "rlock": spec("rlock"),
        "sem": spec("semaphore", init=1),
        "barrier": spec("barrier", parties=2),
    }
    built = build(specs, ctx)
    built["v"].value += 1
    built["a"][1] = 5
    built["e"].set()
    for item in ["first", {"k": [1]}, None]:
        built["q"].put(item)
    state = snapshot(specs, built)
    assert state == {"v": 1.5, "c": "x", "a": [1, 5], "s": ["h", "i"], "e": True,
                     "q": ["first", {"k": [1]}, None]}
    assert snapshot(specs, built)["q"] == [], "the summary drains the queue"
