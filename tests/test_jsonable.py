"""JSON for results: fast with orjson, exact for what orjson refuses."""

from __future__ import annotations

import json

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.jsonable import (
    BLOCK_ITEMS,
    INDENT_LIMIT_BYTES,
    WRITTEN_AS_OPTIONS,
    dumps_document,
    dumps_line,
    to_jsonable,
)

values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text()
    | st.frozensets(st.integers(), max_size=3),
    lambda inner: st.lists(inner, max_size=5) | st.tuples(inner, inner)
    | st.dictionaries(st.text(max_size=5), inner, max_size=5),
    max_leaves=30,
)


@given(values)
def test_lines_and_documents_read_back_as_to_jsonable(value):
    """Whatever a task returns, the JSON written reads back as its plain-data form:
    ints of any size exact, NaN and infinities null, the rest its repr."""
    expected = to_jsonable(value)
    assert json.loads(dumps_line(value)) == expected
    assert json.loads(dumps_document({"results": [value]})) == {"results": [expected]}


def test_one_huge_int_among_many_results_keeps_both_exact():
    results = list(range(100_000))
    results[54_321] = 2**70
    doc = {"jobs": [{"results": results, "reduced": 3**60}]}
    data = dumps_document(doc)
    assert len(data) > INDENT_LIMIT_BYTES  # large: written compact
    assert json.loads(data) == doc


def test_small_documents_are_indented_even_with_huge_ints():
    data = dumps_document({"reduced": 2**80, "results": [1]})
    assert data.startswith(b"{\n  ")
    assert json.loads(data) == {"reduced": 2**80, "results": [1]}


def test_non_string_keys_become_strings():
    assert json.loads(dumps_line({1: "a", 2**70: "b"})) == {"1": "a", str(2**70): "b"}


def test_what_a_default_raises_comes_out_once_not_on_the_slow_path_again():
    """orjson wraps it in a TypeError; the slow path (for big ints) would call it again."""
    calls = []

    def default(value):
        calls.append(value)
        raise SystemExit(3)

    with pytest.raises(SystemExit):
        dumps_line([2**70, object()], default)
    assert len(calls) == 1


def test_written_as_options_are_orjsons_passthrough_options():
    assert WRITTEN_AS_OPTIONS == orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS


def _orjson_inputs(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every object orjson.dumps is handed from now on."""
    seen: list[object] = []
    real = orjson.dumps

    def spy(obj: object, *args: object, **kwargs: object) -> bytes:
        seen.append(obj)
        return real(obj, *args, **kwargs)

    monkeypatch.setattr(orjson, "dumps", spy)
    return seen


@pytest.mark.parametrize("where", [0, 54_321, 99_999])
def test_a_huge_int_known_to_be_there_costs_no_pass_over_the_results(
        monkeypatch: pytest.MonkeyPatch, where: int) -> None:
    """With ``refused`` (orjson refused a result when it was checked), neither the whole
    document nor the whole results list is handed to orjson: only blocks, and the one
    holding the huge int item by item. The bytes are those of the path that finds out."""
    results = list(range(100_000))
    results[where] = 2**70
    doc = {"jobs": [{"results": results, "reduced": 1}]}
    expected = dumps_document(doc)
    seen = _orjson_inputs(monkeypatch)
    assert dumps_document(doc, refused=True) == expected
    assert all(obj is not doc and obj is not results for obj in seen)
    assert max(len(obj) for obj in seen if isinstance(obj, list)) <= BLOCK_ITEMS


def test_a_huge_int_found_late_costs_one_failed_pass_not_two(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Unknown beforehand (a resumed result, say): one refused try of the whole document,
    then the results in blocks; the results list is never tried whole again."""
    results = list(range(100_000))
    results[-1] = 2**70
    doc = {"jobs": [{"results": results}]}
    seen = _orjson_inputs(monkeypatch)
    assert json.loads(dumps_document(doc)) == doc
    assert [obj for obj in seen if obj is doc] == [doc]
    assert not any(obj is results for obj in seen)
