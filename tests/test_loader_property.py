"""Property: load_config returns a Config or raises ConfigError, never anything else.

Whatever a user (or a fuzzer) writes in a config file, mprun must answer with
located config errors (exit 2), not a traceback. Documents come from four
sources: arbitrary text, arbitrary bytes, arbitrary nested data dumped with
yaml.safe_dump, job-like mappings built from plausible and implausible values
(with real ``!ref`` tags), and random edits of a valid config.

Function imports: arbitrary text could name any importable module
("antigravity:x" opens a browser), so the free-form strategies and the edits
load with ``check_functions=False``; the job-like strategy only names functions from
tests.tasks (or missing ones) and loads with the import check on.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from runner.config import Config
from runner.errors import ConfigError, ConfigIssue
from runner.loader import load_config
from runner.shared import Ref

PROPERTY = settings(max_examples=200, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """One file, rewritten for every example (function-scoped tmp_path does not fit @given)."""
    saved = list(sys.path)
    folder = tmp_path_factory.mktemp("property")
    (folder / "items.txt").write_text("a\nb\n")
    yield folder / "config.yaml"
    sys.path[:] = saved


def outcome(path: Path, *, check_functions: bool) -> Config | None:
    """Load ``path``; assert the only failure is a well-formed ConfigError."""
    try:
        config = load_config(path, check_functions=check_functions)
    except ConfigError as exc:
        assert exc.issues, "a ConfigError names at least one issue"
        for issue in exc.issues:
            assert isinstance(issue, ConfigIssue)
            assert issue.file == str(path)
            assert issue.line is None or issue.line >= 1
            assert issue.column is None or issue.column >= 1
            assert isinstance(issue.message, str) and issue.message
            str(issue)  # renders
        return None
    assert isinstance(config, Config)
    return config


# --------------------------------------------------------------------------- free text


@PROPERTY
@given(st.text())
def test_any_text(target: Path, text: str) -> None:
    target.write_text(text, encoding="utf-8")
    outcome(target, check_functions=False)


@PROPERTY
@given(st.binary())
def test_any_bytes(target: Path, data: bytes) -> None:
    target.write_bytes(data)
    outcome(target, check_functions=False)


YAML_PIECES = st.sampled_from([
    "jobs:", "\n", "  ", "    ", "- ", ": ", "a", "function: tests.tasks:echo", "{", "}", "[",
    "]", ", ", "&x ", "*x", "<<: ", "!ref ", "!!python/name:os.getcwd ", "!!int ", "!!str ",
    "? ", "---\n", "...\n", "${MPRUN_PROP_UNSET}", "${HOME:-x}", "$${", "'", '"', "#", "|",
    ">", "~", "0x_", "2020-13-45", "1e5", ".nan", "true", "-1", "shared:", "defaults:",
    "mode: ", "map: ", "range: ", "typecode: ", "init: ", "type: ", "\t", "\x00", "\ufeff",
])


@PROPERTY
@given(st.lists(YAML_PIECES, max_size=40).map("".join))
def test_text_made_of_yaml_syntax(target: Path, text: str) -> None:
    """Text from YAML punctuation and mprun words reaches the deeper layers more often."""
    target.write_text(text, encoding="utf-8")
    outcome(target, check_functions=False)


# --------------------------------------------------------------------------- random data


SCALARS = (st.none() | st.booleans() | st.integers() | st.floats()
           | st.text(max_size=20) | st.dates())
DATA = st.recursive(
    SCALARS,
    lambda inner: st.lists(inner, max_size=5)
    | st.dictionaries(st.text(max_size=10) | st.integers(), inner, max_size=5),
    max_leaves=12,
)


@PROPERTY
@given(DATA)
def test_any_data_dumped_as_yaml(target: Path, data: Any) -> None:
    target.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    outcome(target, check_functions=False)


@PROPERTY
@given(st.dictionaries(st.sampled_from(["name", "description", "start_method", "defaults",
                                        "shared", "jobs", "other"]), DATA, max_size=4))
def test_any_data_under_config_keys(target: Path, data: dict[str, Any]) -> None:
    target.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    outcome(target, check_functions=False)


# --------------------------------------------------------------------------- job-like configs


class _Dumper(yaml.SafeDumper):
    """safe_dump plus ``!ref NAME`` for Ref values."""


_Dumper.add_representer(Ref, lambda dumper, ref: dumper.represent_scalar("!ref", ref.name))

SHARED_NAMES = ["counter", "lock", "q", "arr", "gate"]
ODD = st.none() | st.booleans() | st.integers(-3, 3) | st.text(max_size=5) | st.just([])
ARG = (st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8) | st.none()
       | st.sampled_from([*SHARED_NAMES, "nope"]).map(Ref))
ARGS = st.lists(ARG, max_size=4)
KWARGS = st.dictionaries(st.text(max_size=5) | st.integers(), ARG, max_size=3)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return strategy | ODD


MAP = maybe(
    st.lists(ARG | ARGS | KWARGS, max_size=4)
    | st.fixed_dictionaries({"range": st.integers(-5, 20)
                             | st.lists(st.integers(-5, 20), max_size=4)})
    | st.fixed_dictionaries({"file": st.sampled_from(["items.txt", "missing.txt", "", ".",
                                                      "../x", "a\x00b"])})
    | st.dictionaries(st.sampled_from(["range", "file", "other"]), ODD, max_size=2)
)

JOB = st.fixed_dictionaries({}, optional={
    "function": maybe(st.sampled_from(["tests.tasks:echo", "tests.tasks:square",
                                       "tests.tasks:NOT_CALLABLE", "tests.tasks:nope",
                                       "mprun_prop_missing_module:f", "not a ref"])),
    "mode": maybe(st.sampled_from(["serial", "thread", "process", "pool", "cluster"])),
    "workers": maybe(st.integers(-2, 10)),
    "args": maybe(ARGS),
    "kwargs": maybe(KWARGS),
    "repeat": maybe(st.integers(-2, 5)),
    "tasks": maybe(st.lists(st.fixed_dictionaries({}, optional={
        "args": maybe(ARGS), "kwargs": maybe(KWARGS), "kwarg": ODD}), max_size=3)),
    "map": MAP,
    "unpack": maybe(st.booleans()),
    "chunksize": maybe(st.sampled_from(["auto", 0, 1, 7])),
    "reduce": maybe(st.sampled_from(["sum", "mean", "median", "tests.tasks:add",
                                     "tests.tasks:nope"])),
    "compare": maybe(st.lists(st.sampled_from(["serial", "thread", "process", "pool",
                                               "cluster"]), max_size=4)),
    "timeout": ODD,
})

TYPECODE = st.sampled_from([*"bBuhHiIlLqQfd", "z"])
INIT = st.integers(-(2**65), 2**65) | st.floats() | st.text(max_size=2) | st.booleans()
SHARED_SPEC = maybe(
    st.sampled_from(["lock", "rlock", "event", "queue", "semaphore", "barrier", "value",
                     "array", "clock"])
    | st.fixed_dictionaries({"type": st.just("value"), "typecode": TYPECODE},
                            optional={"init": INIT, "lock": ODD})
    | st.fixed_dictionaries({"type": st.just("array"), "typecode": TYPECODE},
                            optional={"init": st.lists(INIT | st.lists(INIT, max_size=2),
                                                       max_size=4),
                                      "size": st.integers(-2, 5)})
    | st.fixed_dictionaries({"type": st.sampled_from(["semaphore", "queue", "barrier",
                                                      "lock", "nope"])},
                            optional={"init": ODD, "maxsize": ODD, "parties": ODD})
)
CONFIG = st.fixed_dictionaries(
    {"jobs": maybe(st.dictionaries(st.sampled_from(["a", "b", "c", "add"]), JOB, max_size=3))},
    optional={
        "name": maybe(st.text(max_size=8)),
        "start_method": maybe(st.sampled_from(["fork", "spawn", "forkserver", "threads"])),
        "defaults": maybe(JOB),
        "shared": maybe(st.dictionaries(st.sampled_from(SHARED_NAMES), SHARED_SPEC,
                                        max_size=4)),
        "nmae": ODD,
    },
)


@PROPERTY
@given(CONFIG)
def test_job_like_configs(target: Path, data: dict[str, Any]) -> None:
    """Plausible configs, valid or not, with !ref tags and real function imports."""
    target.write_text(yaml.dump(data, Dumper=_Dumper, allow_unicode=True), encoding="utf-8")
    config = outcome(target, check_functions=True)
    if config is not None:  # what loaded is what was written
        assert set(config.jobs) == set(data["jobs"])


# ------------------------------------------------------------------ edits of a valid config


VALID = """\
name: demo
defaults: &common
  workers: ${MPRUN_PROP_W:-2}
shared:
  counter: {type: value, typecode: i, init: 0}
  lock: lock
  arr: {type: array, typecode: d, size: 3}
jobs:
  add:
    <<: *common
    function: tests.tasks:add
    mode: thread
    tasks:
      - args: [!ref counter, 1, !ref lock]
      - kwargs: {a: 1, b: 2}
  squares:
    function: tests.tasks:square
    map: {range: [0, 10, 2]}
    chunksize: 2
    reduce: sum
  lines:
    function: tests.tasks:echo
    map: {file: items.txt}
    compare: [serial, thread]
"""


def test_the_valid_config_is_valid(target: Path) -> None:
    target.write_text(VALID)
    assert outcome(target, check_functions=True) is not None


EDIT = st.tuples(st.integers(0, len(VALID)), st.integers(0, 12),
                 st.text(max_size=6) | YAML_PIECES)


@PROPERTY
@given(st.lists(EDIT, min_size=1, max_size=4))
def test_edits_of_a_valid_config(target: Path, edits: list[tuple[int, int, str]]) -> None:
    """Delete a few characters here, insert some there: still Config or ConfigError."""
    text = VALID
    for where, deleted, inserted in edits:
        at = min(where, len(text))
        text = text[:at] + inserted + text[at + deleted:]
    target.write_text(text, encoding="utf-8")
    outcome(target, check_functions=False)  # an edit could name any module
