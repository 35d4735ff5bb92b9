"""The journal writes a chunk's values from the JSON the results vet already made
(``runner.vet.vetted``): byte for byte the line it would make itself."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from runner.journal import Journal
from runner.vet import vetted
from runner.work import Outcome, TaskError

PLAIN = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8)
    | st.floats(allow_nan=False, allow_infinity=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner,
                                                                max_size=4),
    max_leaves=12)
ODD = st.sampled_from([math.nan, math.inf, (1, 2), {1: "int key"}, {1, 2}, 2**70, 1j])


def _written(job: str, outcome: Outcome, mode: str | None, encoded: bytes | None) -> bytes:
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "results.jsonl"
        journal = Journal(str(path))
        journal.record(job, outcome, attempt=2, mode=mode, encoded=encoded)
        journal.close()
        return path.read_bytes()


@settings(max_examples=200, deadline=None)
@given(job=st.text(min_size=1, max_size=6), values=st.lists(PLAIN | ODD, min_size=1, max_size=5),
       first=st.integers(0, 10**9), seconds=st.floats(0, 1e4), pid=st.integers(1, 2**22),
       mode=st.none() | st.sampled_from(["pool", "thread"]), fail=st.booleans())
def test_the_reused_json_gives_the_same_line(job: str, values: list[Any], first: int,
                                             seconds: float, pid: int, mode: str | None,
                                             fail: bool) -> None:
    errors = [TaskError.of(first, ValueError("no"))] if fail else []
    outcome = Outcome(first, list(values), errors, seconds, pid)
    checked, encoded, _ = vetted(outcome, job)
    assert checked is outcome
    if encoded is not None:
        assert _written(job, outcome, mode, encoded) == _written(job, outcome, mode, None)


def test_values_that_need_converting_are_not_reused() -> None:
    """A set or a complex is written by ``written_as`` (and the line marked lossy): the
    journal then encodes the line itself."""
    for value in ({1, 2}, 1j):
        assert vetted(Outcome(0, [1, value], [], 0.0, 1), "job")[1] is None
    assert vetted(Outcome(0, [1, 2, "x"], [], 0.0, 1), "job")[1] == b'[1,2,"x"]'


def test_a_refusal_is_told_apart_from_a_conversion() -> None:
    """orjson refusing a value (an int beyond 64 bits) is what lets summary.json skip its
    own refused try; a value ``written_as`` converts is not a refusal."""
    assert vetted(Outcome(0, [1, 2**70], [], 0.0, 1), "job")[2] is True
    for value in ({1, 2}, 1j, "x", 2**63):
        assert vetted(Outcome(0, [1, value], [], 0.0, 1), "job")[2] is False
