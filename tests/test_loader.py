"""Config loading and validation: runner.loader.load_config, in-process.

Every error test asserts where the problem is reported (line, dotted path) and
the key words of its message, as a user reads them:
``FILE:LINE:COL: jobs.add.workers: message``.
"""

from __future__ import annotations

import array
import importlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from runner.config import (
    ArraySpec,
    BarrierSpec,
    Config,
    EventSpec,
    FileSource,
    LockSpec,
    QueueSpec,
    RangeSource,
    SemaphoreSpec,
    ValueSpec,
)
from runner.errors import ConfigError, ConfigIssue, JobImportError
from runner.loader import load_config
from runner.shared import Ref
from runner.yamlsource import MAX_DEPTH

WriteConfig = Callable[..., Path]

INT_CODES = "bBhHiIlLqQ"
ALL_CODES = "bBuhHiIlLqQfd"


# --------------------------------------------------------------------------- helpers


@pytest.fixture(autouse=True)
def _isolate_imports(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """load_config puts the config's folder on sys.path: undo that, and forget tmp modules."""
    monkeypatch.setattr(sys, "path", list(sys.path))
    before = set(sys.modules)
    yield
    for name in set(sys.modules) - before:
        module_file = getattr(sys.modules[name], "__file__", None) or ""
        if module_file.startswith(str(tmp_path)):
            del sys.modules[name]


def line_of(path: Path, needle: str, occurrence: int = 1) -> int:
    """The 1-based line of the ``occurrence``-th line of ``path`` containing ``needle``."""
    hits = [number for number, text in enumerate(path.read_text().splitlines(), 1)
            if needle in text]
    assert len(hits) >= occurrence, f"{needle!r} not {occurrence} times in {path}"
    return hits[occurrence - 1]


def issues_of(path: Path, error: type[ConfigError] = ConfigError, **options: bool
              ) -> list[ConfigIssue]:
    with pytest.raises(error) as caught:
        load_config(path, **options)
    issues = caught.value.issues
    assert issues, "a ConfigError always carries at least one issue"
    for issue in issues:
        assert issue.file == str(path)
    return issues


def only_issue(path: Path, error: type[ConfigError] = ConfigError, **options: bool
               ) -> ConfigIssue:
    issues = issues_of(path, error, **options)
    assert len(issues) == 1, "\n".join(map(str, issues))
    return issues[0]


def issue_at(issues: list[ConfigIssue], dotted: str) -> ConfigIssue:
    found = [issue for issue in issues if issue.path == dotted]
    assert len(found) == 1, f"{dotted!r} in:\n" + "\n".join(map(str, issues))
    return found[0]


def check(issue: ConfigIssue, *, line: int | None, path: str, words: tuple[str, ...] = ()
          ) -> None:
    assert (issue.line, issue.path) == (line, path), str(issue)
    for word in words:
        assert word in issue.message, f"{word!r} not in {issue}"


def int_bounds(code: str) -> tuple[int, int]:
    """The range of an integer typecode, from array.array's item size on this platform."""
    bits = array.array(code).itemsize * 8
    if code.islower():
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def config_with_shared(write_config: WriteConfig, spec: str) -> Path:
    return write_config(f"""\
        shared:
          s: {spec}
        jobs:
          a:
            function: tests.tasks:echo
        """)


# --------------------------------------------------------------------------- a valid config


def test_valid_config_loads_into_models(write_config: WriteConfig) -> None:
    """The DESIGN's example config loads; refs become Ref objects and defaults apply."""
    path = write_config("""\
        name: lock-demo
        description: two processes add to one counter under a lock
        start_method: forkserver
        defaults:
          workers: 2
        shared:
          counter: {type: value, typecode: i, init: 0}
          lock: {type: lock}
        jobs:
          add:
            function: tests.tasks:add
            mode: process
            tasks:
              - args: [!ref counter, 1, !ref lock]
              - args: [!ref counter, 3, !ref lock]
        """)
    config = load_config(path)
    assert isinstance(config, Config)
    assert config.name == "lock-demo"
    assert config.start_method == "forkserver"
    assert config.source == str(path)
    job = config.jobs["add"]
    assert job.mode == "process" and job.workers == 2
    assert job.tasks is not None
    assert [task.args for task in job.tasks] == [[Ref("counter"), 1, Ref("lock")],
                                                [Ref("counter"), 3, Ref("lock")]]
    assert isinstance(config.shared["counter"], ValueSpec)
    assert isinstance(config.shared["lock"], LockSpec)


def test_issue_str_is_file_line_column_path_message(write_config: WriteConfig) -> None:
    """str(issue) reads FILE:LINE:COL: dotted.path: message, and ConfigError joins them."""
    path = write_config("""\
        jobs:
          add:
            function: tests.tasks:add
            mode: cluster
        """)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (issue,) = caught.value.issues
    assert str(issue) == (f"{path}:4:11: jobs.add.mode: "
                          "'cluster' is not one of serial, thread, process, pool")
    assert str(caught.value) == str(issue)


# --------------------------------------------------------------------------- safe loading


def test_python_object_apply_tag_is_refused_and_never_run(
        write_config: WriteConfig, tmp_path: Path) -> None:
    """!!python/object/apply:os.system is reported at its line and the command never runs."""
    marker = tmp_path / "pwned"
    path = write_config(f"""\
        jobs:
          a:
            function: tests.tasks:echo
            args: !!python/object/apply:os.system ["touch {marker}"]
        """)
    issue = only_issue(path)
    check(issue, line=4, path="jobs.a.args",
          words=("!!python/object/apply:os.system", "not allowed", "safely"))
    assert issue.column == 11
    assert not marker.exists()


@pytest.mark.parametrize("tagged", [
    "!!python/name:os.system",
    "!!python/module:os",
    "!!python/object/new:os.system [x]",
    "!!python/object:argparse.Namespace {a: 1}",
    "!!python/tuple [1, 2]",
    "!!python/bytes aGk=",
])
def test_other_python_tags_are_refused(write_config: WriteConfig, tagged: str) -> None:
    """Every !!python/... tag is refused, whatever node it is on."""
    path = write_config(f"""\
        jobs:
          a:
            function: tests.tasks:echo
            args:
              - 1
              - {tagged}
        """)
    tag = tagged.split(maxsplit=1)[0]
    check(only_issue(path), line=6, path="jobs.a.args.1", words=(tag, "not allowed"))


def test_python_tag_on_a_mapping_key_is_refused_and_never_run(
        write_config: WriteConfig, tmp_path: Path) -> None:
    """A !!python tag in a key position is refused too, and other errors are still reported."""
    marker = tmp_path / "pwned-key"
    path = write_config(f"""\
        ? !!python/object/apply:os.system ["touch {marker}"]
        : 1
        jobs:
          a:
            function: tests.tasks:echo
            mode: cluster
        """)
    issues = issues_of(path)
    assert not marker.exists()
    assert len(issues) == 2, issues
    check(issues[0], line=1, path="", words=("!!python/object/apply:os.system", "not allowed"))
    check(issue_at(issues, "jobs.a.mode"), line=6, path="jobs.a.mode", words=("'cluster'",))


def test_environment_value_is_never_read_as_a_tag(
        write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ${VAR} whose value looks like a !!python tag stays a plain string."""
    marker = tmp_path / "pwned-env"
    value = f'!!python/object/apply:os.system ["touch {marker}"]'
    monkeypatch.setenv("MPRUN_TEST_EVIL", value)
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args:
              - ${MPRUN_TEST_EVIL}
        """)
    config = load_config(path)
    assert config.jobs["a"].args == [value]
    assert not marker.exists()


def test_unknown_tag_is_an_error(write_config: WriteConfig) -> None:
    """A tag other than the standard ones and !ref is reported, naming the tag."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: [!foo bar]
        """)
    check(only_issue(path), line=4, path="jobs.a.args.0", words=("unknown tag !foo", "!ref"))


@pytest.mark.parametrize("ref", ["!ref", "!ref ''", "!ref [a]", "!ref {a: 1}"])
def test_ref_without_a_name_is_an_error(write_config: WriteConfig, ref: str) -> None:
    """!ref needs the name of a shared primitive."""
    path = write_config(f"""\
        shared:
          counter: {{type: value, typecode: i}}
        jobs:
          a:
            function: tests.tasks:echo
            args:
              - {ref}
        """)
    check(only_issue(path), line=7, path="jobs.a.args.0",
          words=("!ref takes the name of a shared primitive",))


def test_ref_as_a_mapping_key_is_an_error(write_config: WriteConfig) -> None:
    """!ref stands for a value; as a key it is reported, not a crash."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            kwargs:
              !ref counter : 1
        """)
    check(only_issue(path), line=5, path="jobs.a.kwargs", words=("cannot be a mapping key",))


@pytest.mark.parametrize("scalar, words", [
    ("!!int abc", ("cannot read 'abc' as !!int",)),
    ("!!float abc", ("cannot read 'abc' as !!float",)),
    ("!!bool maybe", ("cannot read 'maybe' as !!bool",)),
    ("!!timestamp abc", ("cannot read 'abc' as !!timestamp",)),
    ("2020-13-45", ("cannot read '2020-13-45' as !!timestamp", "month")),
    ("0x_", ("cannot read '0x_' as !!int",)),
])
def test_scalar_pyyaml_cannot_construct_is_an_error(
        write_config: WriteConfig, scalar: str, words: tuple[str, ...]) -> None:
    """A scalar PyYAML cannot build (ValueError, KeyError inside PyYAML) is a located error."""
    path = write_config(f"""\
        description: {scalar}
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=1, path="description", words=words)


def test_bad_scalar_as_a_key_is_an_error(write_config: WriteConfig) -> None:
    """A key PyYAML cannot build is reported at the key's line and the rest is checked."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            kwargs:
              2020-13-45: x
            mode: cluster
        """)
    issues = issues_of(path)
    assert len(issues) == 2, issues
    check(issue_at(issues, "jobs.a.kwargs"), line=5, path="jobs.a.kwargs",
          words=("cannot read '2020-13-45'",))
    check(issue_at(issues, "jobs.a.mode"), line=6, path="jobs.a.mode", words=("'cluster'",))


@pytest.mark.parametrize("key", ["? [a, b]\n: 1", "? {a: 1}\n: 1"])
def test_list_or_mapping_as_key_is_an_error(write_config: WriteConfig, key: str) -> None:
    """A complex (unhashable) key is reported, not a TypeError."""
    path = write_config("jobs:\n  a:\n    function: tests.tasks:echo\n" + key + "\n")
    check(only_issue(path), line=4, path="", words=("mapping key must be a plain value",))


# --------------------------------------------------------------------------- duplicate keys


def test_duplicate_top_level_key(write_config: WriteConfig) -> None:
    """A second top-level 'jobs' is an error naming the key and the first line."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
        jobs:
          b:
            function: tests.tasks:echo
        """)
    issue = only_issue(path)
    check(issue, line=4, path="jobs", words=("duplicate key 'jobs'", "first written on line 1"))
    assert issue.column == 1


def test_duplicate_key_inside_a_job(write_config: WriteConfig) -> None:
    """A key written twice in a job names the key and the line it was first written on."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            mode: serial
            workers: 2
            mode: thread
        """)
    check(only_issue(path), line=6, path="jobs.a.mode",
          words=("duplicate key 'mode'", "first written on line 4"))


def test_duplicate_job_name(write_config: WriteConfig) -> None:
    """Two jobs with one name: the second would silently replace the first in PyYAML."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
          a:
            function: tests.tasks:square
        """)
    check(only_issue(path), line=4, path="jobs.a",
          words=("duplicate key 'a'", "first written on line 2"))


def test_duplicate_shared_name(write_config: WriteConfig) -> None:
    """Two shared primitives with one name."""
    path = write_config("""\
        shared:
          counter: {type: value, typecode: i}
          lock: lock
          counter: {type: value, typecode: d}
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=4, path="shared.counter",
          words=("duplicate key 'counter'", "first written on line 2"))


def test_duplicate_key_inside_a_shared_entry(write_config: WriteConfig) -> None:
    """A key written twice inside one shared entry (flow style: same line)."""
    path = write_config("""\
        shared:
          counter:
            type: value
            typecode: i
            typecode: d
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=5, path="shared.counter.typecode",
          words=("duplicate key 'typecode'", "first written on line 4"))


# --------------------------------------------------------------------------- unknown keys


def test_unknown_top_level_key_suggests(write_config: WriteConfig) -> None:
    """An unknown top-level key says 'did you mean' and lists the allowed keys."""
    path = write_config("""\
        nmae: demo
        jobs:
          a:
            function: tests.tasks:echo
        """)
    issue = only_issue(path)
    check(issue, line=1, path="nmae", words=("unknown key 'nmae'", "did you mean 'name'?",
                                              "allowed: defaults, description, jobs, name"))
    assert issue.column == 1


def test_unknown_job_key_suggests(write_config: WriteConfig) -> None:
    """'worker' in a job suggests 'workers', at the key's own line and column."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            worker: 3
        """)
    issue = only_issue(path)
    check(issue, line=4, path="jobs.a.worker",
          words=("unknown key 'worker'", "did you mean 'workers'?", "allowed: args, chunksize"))
    assert issue.column == 5


def test_unknown_shared_key_suggests(write_config: WriteConfig) -> None:
    """'intt' in a value entry suggests 'init' and lists a value's keys."""
    path = write_config("""\
        shared:
          counter:
            type: value
            typecode: i
            intt: 3
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=5, path="shared.counter.intt",
          words=("unknown key 'intt'", "did you mean 'init'?",
                 "allowed: init, lock, type, typecode"))


def test_unknown_key_in_keyless_shared_type(write_config: WriteConfig) -> None:
    """A lock has no keys but 'type'."""
    path = write_config("""\
        shared:
          guard: {type: lock, init: 1}
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=2, path="shared.guard.init",
          words=("unknown key 'init'", "(allowed: type)"))


def test_unknown_task_key_suggests(write_config: WriteConfig) -> None:
    """'kwarg' in a task entry suggests 'kwargs' and lists only a task's keys."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            tasks:
              - args: [1]
              - args: [2]
                kwarg: {x: 1}
        """)
    check(only_issue(path), line=7, path="jobs.a.tasks.1.kwarg",
          words=("unknown key 'kwarg'", "did you mean 'kwargs'?", "(allowed: args, kwargs)"))


def test_unknown_defaults_key_suggests(write_config: WriteConfig) -> None:
    """'wrkers' in defaults is reported once, at defaults, not once per job."""
    path = write_config("""\
        defaults:
          wrkers: 2
        jobs:
          a:
            function: tests.tasks:echo
          b:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=2, path="defaults.wrkers",
          words=("unknown key 'wrkers'", "did you mean 'workers'?"))


def test_unknown_task_key_under_defaults_is_reported_once(write_config: WriteConfig) -> None:
    """A task entry under defaults lists a task's keys, and is not repeated for each job."""
    path = write_config("""\
        defaults:
          tasks:
            - args: [1]
              kwarg: {}
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=4, path="defaults.tasks.0.kwarg",
          words=("unknown key 'kwarg'", "did you mean 'kwargs'?", "(allowed: args, kwargs)"))


def test_range_map_with_a_file_key_lists_range_keys(write_config: WriteConfig) -> None:
    """{range: 3, file: x} is a range source with an extra key: no 'did you mean file'."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            map: {range: 3, file: x.txt}
        """)
    issue = only_issue(path)
    check(issue, line=4, path="jobs.a.map.file", words=("unknown key 'file'", "(allowed: range)"))
    assert "did you mean" not in issue.message


# --------------------------------------------------------------------------- shared: value


@pytest.mark.parametrize("code", INT_CODES)
def test_value_int_init_at_both_bounds_is_accepted(write_config: WriteConfig, code: str) -> None:
    """The lowest and highest int that fit the typecode load, unchanged."""
    low, high = int_bounds(code)
    path = write_config(f"""\
        shared:
          low: {{type: value, typecode: {code}, init: {low}}}
          high: {{type: value, typecode: {code}, init: {high}}}
        jobs:
          a:
            function: tests.tasks:echo
        """)
    shared = load_config(path).shared
    assert isinstance(shared["low"], ValueSpec) and isinstance(shared["high"], ValueSpec)
    assert (shared["low"].init, shared["high"].init) == (low, high)
    assert type(shared["low"].init) is int


@pytest.mark.parametrize("code", INT_CODES)
@pytest.mark.parametrize("side", ["below", "above"])
def test_value_int_init_just_out_of_range_is_an_error(
        write_config: WriteConfig, code: str, side: str) -> None:
    """One past either bound is an error at init's line naming the value and the range."""
    low, high = int_bounds(code)
    value = low - 1 if side == "below" else high + 1
    path = write_config(f"""\
        shared:
          counter:
            type: value
            typecode: {code}
            init: {value}
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=5, path="shared.counter.init",
          words=(f"{value} is out of range for typecode '{code}'", f"from {low} to {high}"))


@pytest.mark.parametrize("code", ALL_CODES)
def test_value_bool_init_is_refused(write_config: WriteConfig, code: str) -> None:
    """true is not 1: a bool init is refused for every typecode."""
    path = write_config(f"""\
        shared:
          counter:
            type: value
            typecode: {code}
            init: true
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=5, path="shared.counter.init",
          words=("True is not", f"typecode '{code}'"))


@pytest.mark.parametrize("code", INT_CODES)
@pytest.mark.parametrize("value", ["1.5", "'7'"])
def test_value_int_code_refuses_float_and_string(
        write_config: WriteConfig, code: str, value: str) -> None:
    """An integer typecode takes an int only (no 1.5, no '7')."""
    path = config_with_shared(write_config, f"{{type: value, typecode: {code}, init: {value}}}")
    check(only_issue(path), line=2, path="shared.s.init", words=("is not an int",))


@pytest.mark.parametrize("code", "fd")
@pytest.mark.parametrize("value, expected", [("3.14", 3.14), ("2", 2), ("-1.5e+3", -1500.0)])
def test_value_float_code_takes_numbers(
        write_config: WriteConfig, code: str, value: str, expected: float) -> None:
    """f and d take any number, int or float."""
    path = config_with_shared(write_config, f"{{type: value, typecode: {code}, init: {value}}}")
    spec = load_config(path).shared["s"]
    assert isinstance(spec, ValueSpec)
    assert spec.init == expected


@pytest.mark.parametrize("code", "fd")
def test_value_float_code_refuses_a_string(write_config: WriteConfig, code: str) -> None:
    path = config_with_shared(write_config, f"{{type: value, typecode: {code}, init: pi}}")
    check(only_issue(path), line=2, path="shared.s.init",
          words=("'pi' is not a number", f"typecode '{code}'"))


def test_value_u_takes_one_character(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: value, typecode: u, init: x}")
    spec = load_config(path).shared["s"]
    assert isinstance(spec, ValueSpec) and spec.init == "x"


@pytest.mark.parametrize("value, shown", [("xy", "'xy'"), ("''", "''"), ("1", "1")])
def test_value_u_refuses_anything_but_one_character(
        write_config: WriteConfig, value: str, shown: str) -> None:
    path = config_with_shared(write_config, f"{{type: value, typecode: u, init: {value}}}")
    check(only_issue(path), line=2, path="shared.s.init",
          words=(f"{shown} is not one character", "typecode 'u'"))


@pytest.mark.parametrize("code", ALL_CODES)
def test_value_without_init_defaults(write_config: WriteConfig, code: str) -> None:
    """init is optional (zero is filled in when built); lock defaults to true."""
    path = config_with_shared(write_config, f"{{type: value, typecode: {code}}}")
    spec = load_config(path).shared["s"]
    assert isinstance(spec, ValueSpec)
    assert spec.init is None and spec.lock is True


def test_value_unknown_typecode(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: value, typecode: z}")
    check(only_issue(path), line=2, path="shared.s.typecode",
          words=("'z' is not one of b, B, u, h, H, i, I, l, L, q, Q, f, d",))


def test_value_missing_typecode(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: value, init: 1}")
    check(only_issue(path), line=2, path="shared.s.typecode", words=("required key is missing",))


def test_value_shorthand_names_the_missing_key(write_config: WriteConfig) -> None:
    """'name: value' has no typecode: the error says which key is missing."""
    path = config_with_shared(write_config, "value")
    check(only_issue(path), line=2, path="shared.s", words=("required key 'typecode'",))


def test_value_lock_must_be_a_bool(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: value, typecode: i, lock: sometimes}")
    check(only_issue(path), line=2, path="shared.s.lock", words=("'sometimes'", "boolean"))


# --------------------------------------------------------------------------- shared: array


def test_array_with_flat_init(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: array, typecode: i, init: [1, 2, 3, 4]}")
    spec = load_config(path).shared["s"]
    assert isinstance(spec, ArraySpec)
    assert spec.init == [1, 2, 3, 4] and spec.size is None and spec.lock is True


def test_array_with_size(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: array, typecode: d, size: 5, lock: false}")
    spec = load_config(path).shared["s"]
    assert isinstance(spec, ArraySpec)
    assert spec.size == 5 and spec.init is None and spec.lock is False


def test_array_nested_list_is_one_dimensional_error(write_config: WriteConfig) -> None:
    """A nested list says an array is one-dimensional (the seed shows the raw TypeError)."""
    path = write_config("""\
        shared:
          grid:
            type: array
            typecode: i
            init: [[1, 2], [3, 4]]
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=5, path="shared.grid.init",
          words=("init[0] is a nested list", "one-dimensional"))


@pytest.mark.parametrize("keys", ["init: [1, 2], size: 2", ""])
def test_array_needs_exactly_one_of_init_and_size(write_config: WriteConfig, keys: str) -> None:
    """Both init and size, or neither, is an error."""
    path = config_with_shared(write_config,
                              "{type: array, typecode: i" + (", " + keys if keys else "") + "}")
    check(only_issue(path), line=2, path="shared.s",
          words=("give exactly one of init (a flat list) or size",))


@pytest.mark.parametrize("code", INT_CODES)
def test_array_items_are_range_checked(write_config: WriteConfig, code: str) -> None:
    """Each item must fit the typecode; the message names the index and the value."""
    low, high = int_bounds(code)
    path = config_with_shared(write_config,
                              f"{{type: array, typecode: {code}, init: [{low}, {high + 1}]}}")
    check(only_issue(path), line=2, path="shared.s.init",
          words=(f"init[1]: {high + 1} is out of range for typecode '{code}'",))


def test_array_bool_item_is_refused(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: array, typecode: i, init: [1, true]}")
    check(only_issue(path), line=2, path="shared.s.init", words=("init[1]: True is not an int",))


def test_array_negative_size(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: array, typecode: i, size: -1}")
    check(only_issue(path), line=2, path="shared.s.size",
          words=("got -1", "greater than or equal to 0"))


# --------------------------------------------------------------------------- shared: the rest


@pytest.mark.parametrize("shorthand, model", [
    ("lock", LockSpec), ("rlock", LockSpec), ("event", EventSpec),
    ("queue", QueueSpec), ("semaphore", SemaphoreSpec),
])
def test_string_shorthand_for_keyless_types(
        write_config: WriteConfig, shorthand: str, model: type) -> None:
    """'name: lock' means {type: lock}; semaphore gets init 1, queue no maxsize."""
    path = config_with_shared(write_config, shorthand)
    spec = load_config(path).shared["s"]
    assert isinstance(spec, model)
    assert spec.type == shorthand  # type: ignore[attr-defined]
    if isinstance(spec, SemaphoreSpec):
        assert spec.init == 1
    if isinstance(spec, QueueSpec):
        assert spec.maxsize is None


def test_semaphore_init_and_queue_maxsize(write_config: WriteConfig) -> None:
    path = write_config("""\
        shared:
          slots: {type: semaphore, init: 3}
          closed: {type: semaphore, init: 0}
          q: {type: queue, maxsize: 5}
          b: {type: barrier, parties: 2}
        jobs:
          a:
            function: tests.tasks:echo
        """)
    shared = load_config(path).shared
    assert isinstance(shared["slots"], SemaphoreSpec) and shared["slots"].init == 3
    assert isinstance(shared["closed"], SemaphoreSpec) and shared["closed"].init == 0
    assert isinstance(shared["q"], QueueSpec) and shared["q"].maxsize == 5
    assert isinstance(shared["b"], BarrierSpec) and shared["b"].parties == 2


@pytest.mark.parametrize("spec, path_, words", [
    ("{type: semaphore, init: -1}", "shared.s.init", ("got -1", "greater than or equal to 0")),
    ("{type: queue, maxsize: -1}", "shared.s.maxsize", ("got -1", "greater than or equal to 0")),
    ("{type: barrier, parties: 0}", "shared.s.parties", ("got 0", "greater than or equal to 1")),
    ("{type: barrier}", "shared.s.parties", ("required key is missing",)),
    ("barrier", "shared.s", ("required key 'parties' is missing",)),
    ("{type: nope}", "shared.s",
     ("type 'nope' is not one of value, array, lock, rlock, semaphore, event, queue, barrier",)),
    ("{typecode: i}", "shared.s", ("a 'type' key is required",)),
    ("5", "shared.s", ("got 5", "dictionary")),
    ("clock", "shared.s", ("got 'clock'", "dictionary")),
])
def test_shared_entry_errors(
        write_config: WriteConfig, spec: str, path_: str, words: tuple[str, ...]) -> None:
    path = config_with_shared(write_config, spec)
    check(only_issue(path), line=2, path=path_, words=words)


def test_barrier_parties_missing_points_at_the_entry(write_config: WriteConfig) -> None:
    """Block style: the missing key is reported where the entry's mapping starts."""
    path = write_config("""\
        shared:
          gate:
            type: barrier
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=3, path="shared.gate.parties", words=("required key is missing",))


# --------------------------------------------------------------------------- !ref


def test_ref_to_unknown_shared_name_in_a_task(write_config: WriteConfig) -> None:
    """An unknown !ref is reported at its exact path, listing the declared names."""
    path = write_config("""\
        shared:
          counter: {type: value, typecode: i}
          lock: lock
        jobs:
          add:
            function: tests.tasks:add
            tasks:
              - args: [!ref counter, 1]
              - args: [!ref countr, 3]
        """)
    issue = only_issue(path)
    check(issue, line=9, path="jobs.add.tasks.1.args.0",
          words=("!ref countr", "no shared primitive of that name", "shared: counter, lock"))
    assert issue.column == 16


def test_ref_to_unknown_name_in_args_kwargs_and_map(write_config: WriteConfig) -> None:
    """Refs are checked in args (nested too), kwargs and map items; each at its own path."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            map: [1, !ref m]
            args: [{deep: [!ref x]}]
            kwargs: {k: !ref y}
        """)
    issues = issues_of(path)
    assert len(issues) == 3, issues
    for dotted, line, name in [("jobs.a.map.1", 4, "m"), ("jobs.a.args.0.deep.0", 5, "x"),
                               ("jobs.a.kwargs.k", 6, "y")]:
        check(issue_at(issues, dotted), line=line, path=dotted,
              words=(f"!ref {name}:", "none are declared"))


def test_known_refs_load_as_ref_objects(write_config: WriteConfig) -> None:
    path = write_config("""\
        shared:
          q: queue
        jobs:
          a:
            function: tests.tasks:put
            map: [1, 2]
            args: [!ref q]
            kwargs: {where: !ref q}
        """)
    job = load_config(path).jobs["a"]
    assert job.args == [Ref("q")] and job.kwargs == {"where": Ref("q")}


# --------------------------------------------------------------------------- environment


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean slate for the MPRUN_TEST_* variables these tests use."""
    for name in ("MPRUN_TEST_W", "MPRUN_TEST_NAME", "MPRUN_TEST_UNSET", "MPRUN_TEST_OTHER"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


def test_env_variable_in_a_string(write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """${VAR} anywhere in a string scalar is replaced by its value."""
    env.setenv("MPRUN_TEST_NAME", "nightly")
    path = write_config("""\
        name: ${MPRUN_TEST_NAME}-run
        description: "built by ${MPRUN_TEST_NAME} at ${MPRUN_TEST_NAME}"
        jobs:
          a:
            function: tests.tasks:echo
        """)
    config = load_config(path)
    assert config.name == "nightly-run"
    assert config.description == "built by nightly at nightly"


def test_env_default_used_only_when_unset(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """${VAR:-default}: the default when VAR is unset, VAR's value when set."""
    text = """\
        name: ${MPRUN_TEST_NAME:-fallback}
        jobs:
          a:
            function: tests.tasks:echo
        """
    assert load_config(write_config(text)).name == "fallback"
    env.setenv("MPRUN_TEST_NAME", "given")
    assert load_config(write_config(text)).name == "given"


def test_env_empty_default(write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """${VAR:-} is an empty default: no error."""
    path = write_config("""\
        description: "[${MPRUN_TEST_UNSET:-}]"
        jobs:
          a:
            function: tests.tasks:echo
        """)
    assert load_config(path).description == "[]"


def test_env_unset_variable_is_an_error(write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """An unset variable with no default is an error naming it, at the value's line."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_UNSET}
        """)
    issue = only_issue(path)
    check(issue, line=4, path="jobs.a.workers",
          words=("environment variable MPRUN_TEST_UNSET is not set", "${MPRUN_TEST_UNSET:-"))
    assert issue.column == 14


def test_env_each_unset_variable_is_reported(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    path = write_config("""\
        description: ${MPRUN_TEST_UNSET} and ${MPRUN_TEST_OTHER}
        jobs:
          a:
            function: tests.tasks:echo
        """)
    issues = issues_of(path)
    assert [issue.message.split(" is not set")[0] for issue in issues] == [
        "environment variable MPRUN_TEST_UNSET", "environment variable MPRUN_TEST_OTHER"]
    assert {(issue.line, issue.path) for issue in issues} == {(1, "description")}


def test_env_without_a_name_is_an_error(write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    path = write_config("""\
        description: "cost: ${}"
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=1, path="description", words=("needs a variable name",))


def test_env_whole_scalar_default_is_read_as_int(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """workers: ${W:-2} is the int 2 (a plain scalar that is exactly one ${...})."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_W:-2}
            args:
              - ${MPRUN_TEST_W:-2}
              - ${MPRUN_TEST_UNSET:-2.5}
              - ${MPRUN_TEST_UNSET:-true}
              - ${MPRUN_TEST_UNSET:-}
        """)
    job = load_config(path).jobs["a"]
    assert job.workers == 2
    assert job.args == [2, 2.5, True, None]
    assert type(job.args[0]) is int


def test_env_whole_scalar_value_is_read_as_int(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    env.setenv("MPRUN_TEST_W", "3")
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_W:-2}
            args: [x]
            kwargs:
              n: ${MPRUN_TEST_W}
        """)
    job = load_config(path).jobs["a"]
    assert job.workers == 3
    assert job.kwargs == {"n": 3}


def test_env_quoted_scalar_stays_a_string(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """A quoted "${W:-2}" stays the string '2' (single or double quotes alike)."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: ["${MPRUN_TEST_W:-2}", '${MPRUN_TEST_W:-2}', "x${MPRUN_TEST_W:-2}"]
        """)
    assert load_config(path).jobs["a"].args == ["2", "2", "x2"]


def test_env_quoted_workers_is_coerced_by_pydantic(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """workers: "${W}" with W=3 is the string '3', which pydantic (lax mode) takes as 3."""
    env.setenv("MPRUN_TEST_W", "3")
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            workers: "${MPRUN_TEST_W}"
        """)
    workers = load_config(path).jobs["a"].workers
    assert workers == 3 and type(workers) is int


def test_env_value_that_is_not_an_int(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """workers: ${W} with W=lots is a validation error at workers naming 'lots'."""
    env.setenv("MPRUN_TEST_W", "lots")
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_W}
        """)
    check(only_issue(path), line=4, path="jobs.a.workers", words=("got 'lots'", "integer"))


def test_env_value_pyyaml_cannot_build_is_an_error(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """W=0x_ resolves like an int but does not parse: an error, not a ValueError."""
    env.setenv("MPRUN_TEST_W", "0x_")
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_W}
        """)
    check(only_issue(path), line=4, path="jobs.a.workers", words=("cannot read '0x_'",))


def test_env_dollar_escape(write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """$${VAR} is the literal text ${VAR}, even when VAR is set; a lone $ is kept."""
    env.setenv("MPRUN_TEST_NAME", "set")
    path = write_config("""\
        description: "$${MPRUN_TEST_NAME} costs $5 and $$"
        jobs:
          a:
            function: tests.tasks:echo
            args:
              - $${MPRUN_TEST_UNSET}
              - "$${MPRUN_TEST_NAME}"
        """)
    config = load_config(path)
    assert config.description == "${MPRUN_TEST_NAME} costs $5 and $$"
    assert config.jobs["a"].args == ["${MPRUN_TEST_UNSET}", "${MPRUN_TEST_NAME}"]


def test_env_value_does_not_become_yaml_structure(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """A value like '[1, 2]' or '!ref q' stays a string: only scalars are re-read."""
    env.setenv("MPRUN_TEST_W", "[1, 2]")
    env.setenv("MPRUN_TEST_NAME", "!ref q")
    path = write_config("""\
        shared:
          q: queue
        jobs:
          a:
            function: tests.tasks:echo
            args:
              - ${MPRUN_TEST_W}
              - ${MPRUN_TEST_NAME}
        """)
    assert load_config(path).jobs["a"].args == ["[1, 2]", "!ref q"]


# --------------------------------------------------------------------------- jobs


def test_args_and_tasks_together_is_an_error(write_config: WriteConfig) -> None:
    """Two call sources in one job: reported at the job, naming both."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: [1]
            tasks:
              - args: [2]
        """)
    check(only_issue(path), line=3, path="jobs.a",
          words=("give one call source, not args/kwargs/repeat and tasks",))


def test_tasks_and_map_together_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            tasks: [{args: [1]}]
            map: [1, 2]
        """)
    check(only_issue(path), line=3, path="jobs.a",
          words=("give one call source, not tasks and map",))


def test_map_with_args_and_kwargs_is_fine(write_config: WriteConfig) -> None:
    """map may add args/kwargs to each call."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:add
            map: [1, 2]
            args: [10]
            kwargs: {c: 1}
        """)
    job = load_config(path).jobs["a"]
    assert job.map == [1, 2] and job.args == [10] and job.kwargs == {"c": 1}


def test_repeat_with_map_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            map: [1, 2]
            repeat: 3
        """)
    check(only_issue(path), line=5, path="jobs.a.repeat",
          words=("repeat cannot be combined with map",))


def test_repeat_with_args_is_fine(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: [1]
            repeat: 3
        """)
    assert load_config(path).jobs["a"].repeat == 3


def test_unpack_without_map_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: [1]
            unpack: true
        """)
    check(only_issue(path), line=5, path="jobs.a.unpack",
          words=("unpack applies to map items only",))


def test_chunksize_without_map_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            chunksize: 4
        """)
    check(only_issue(path), line=4, path="jobs.a.chunksize",
          words=("chunksize applies to map jobs only",))


def test_chunksize_with_map(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: {range: 10}
            chunksize: 4
          b:
            function: tests.tasks:square
            map: {range: 10}
        """)
    jobs = load_config(path).jobs
    assert jobs["a"].chunksize == 4 and jobs["b"].chunksize == "auto"


def test_chunksize_zero_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: [1]
            chunksize: 0
        """)
    check(only_issue(path), line=5, path="jobs.a.chunksize",
          words=("auto", "greater than or equal to 1"))


def test_workers_zero_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            workers: 0
        """)
    check(only_issue(path), line=4, path="jobs.a.workers",
          words=("got 0", "greater than or equal to 1"))


def test_unknown_mode_lists_the_modes(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            mode: cluster
        """)
    issue = only_issue(path)
    check(issue, line=4, path="jobs.a.mode", words=())
    assert issue.message == "'cluster' is not one of serial, thread, process, pool"


def test_unknown_start_method(write_config: WriteConfig) -> None:
    path = write_config("""\
        start_method: threads
        jobs:
          a:
            function: tests.tasks:echo
        """)
    issue = only_issue(path)
    check(issue, line=1, path="start_method", words=())
    assert issue.message == "'threads' is not one of fork, spawn, forkserver"


def test_unknown_reduce(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            reduce: median
        """)
    check(only_issue(path), line=5, path="jobs.a.reduce",
          words=("'median' is not one of sum, min, max, count, mean, list",
                 '"module:qualname"'))


@pytest.mark.parametrize("reduce", ["sum", "min", "max", "count", "mean", "list",
                                    "tests.tasks:add"])
def test_known_reducers(write_config: WriteConfig, reduce: str) -> None:
    path = write_config(f"""\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            reduce: {reduce}
        """)
    assert load_config(path).jobs["a"].reduce == reduce


def test_compare_with_a_duplicate_mode(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            compare: [thread, process, thread]
        """)
    check(only_issue(path), line=5, path="jobs.a.compare", words=("each mode may appear once",))


def test_compare_with_an_unknown_mode(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            compare: [thread, cluster]
        """)
    check(only_issue(path), line=5, path="jobs.a.compare.1",
          words=("'cluster' is not one of serial, thread, process, pool",))


def test_compare_modes_load(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            compare: [thread, process]
        """)
    assert load_config(path).jobs["a"].modes() == ["thread", "process"]


def test_map_forms(write_config: WriteConfig) -> None:
    """A list, {range: N}, {range: [start, stop]}, {range: [start, stop, step]}."""
    path = write_config("""\
        jobs:
          items:
            function: tests.tasks:echo
            map: [a, 1, {k: v}]
          count:
            function: tests.tasks:square
            map: {range: 5}
          pair:
            function: tests.tasks:square
            map: {range: [2, 5]}
          stepped:
            function: tests.tasks:square
            map: {range: [10, 0, -3]}
        """)
    jobs = load_config(path).jobs
    assert jobs["items"].map == ["a", 1, {"k": "v"}]
    ranges = {name: jobs[name].map for name in ("count", "pair", "stepped")}
    for source in ranges.values():
        assert isinstance(source, RangeSource)
    assert [list(source.as_range()) for source in ranges.values()  # type: ignore[union-attr]
            ] == [[0, 1, 2, 3, 4], [2, 3, 4], [10, 7, 4, 1]]


def test_map_range_step_zero(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: {range: [0, 10, 0]}
        """)
    check(only_issue(path), line=4, path="jobs.a.map.range", words=("step", "must not be 0"))


def test_map_range_too_many_numbers(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: {range: [0, 10, 1, 2]}
        """)
    check(only_issue(path), line=4, path="jobs.a.map.range", words=("at most 3 items",))


@pytest.mark.parametrize("value", ["5", "text", "{files: x}"])
def test_map_of_the_wrong_shape(write_config: WriteConfig, value: str) -> None:
    """map: 5 (or a string, or a mapping with neither range nor file) lists the map forms."""
    path = write_config(f"""\
        jobs:
          a:
            function: tests.tasks:square
            map: {value}
        """)
    check(only_issue(path), line=4, path="jobs.a.map",
          words=("expected a list, {range: N}, {range: [start, stop, step]} or {file: PATH}",))


def test_map_file_is_relative_to_the_config_folder(
        write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """{file: items.txt} is found beside the config, whatever the working directory."""
    (tmp_path / "items.txt").write_text("a\nb\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            map: {file: items.txt}
        """)
    source = load_config(path).jobs["a"].map
    assert isinstance(source, FileSource) and source.file == "items.txt"


def test_map_file_missing(
        write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing map file is an error naming the full path in the config's folder.

    A file of that name in the working directory does not count.
    """
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "missing.txt").write_text("x\n")
    monkeypatch.chdir(elsewhere)
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            map:
              file: missing.txt
        """)
    check(only_issue(path), line=5, path="jobs.a.map.file",
          words=(f"no such file {str(tmp_path / 'missing.txt')!r}", "config's folder"))


def test_jobs_missing(write_config: WriteConfig) -> None:
    path = write_config("""\
        name: nothing
        description: no jobs here
        """)
    check(only_issue(path), line=1, path="jobs", words=("required key is missing",))


@pytest.mark.parametrize("value, words", [
    ("{}", ("got {}", "at least 1 item")),
    ("", ("got None", "dictionary")),
    ("[]", ("got []", "dictionary")),
])
def test_jobs_empty_or_not_a_mapping(
        write_config: WriteConfig, value: str, words: tuple[str, ...]) -> None:
    path = write_config(f"name: x\njobs: {value}\n")
    check(only_issue(path), line=2, path="jobs", words=words)


def test_job_without_function(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            mode: serial
        """)
    check(only_issue(path), line=3, path="jobs.a.function", words=("required key is missing",))


@pytest.mark.parametrize("function", ["square", "tests.tasks", "tests.tasks:", "1x:y", "a:b:c"])
def test_function_not_module_colon_qualname(write_config: WriteConfig, function: str) -> None:
    path = write_config(f"""\
        jobs:
          a:
            function: "{function}"
        """)
    check(only_issue(path), line=3, path="jobs.a.function",
          words=(repr(function), '"module:qualname"'))


# --------------------------------------------------------------------------- reading the file


@pytest.mark.parametrize("text", ["", "   \n\n\t\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    issue = only_issue(path)
    check(issue, line=None, path="", words=("empty", "'jobs'"))
    assert str(issue) == f"{path}: {issue.message}"


@pytest.mark.parametrize("text", ["# just a comment\n", "---\n", "--- # c\n...\n", "~\n"])
def test_file_with_no_document(tmp_path: Path, text: str) -> None:
    path = tmp_path / "nothing.yaml"
    path.write_text(text)
    check(only_issue(path), line=1, path="", words=("empty",))


def test_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "configs.yaml"
    folder.mkdir()
    check(only_issue(folder), line=None, path="", words=("is a directory",))


def test_a_missing_file(tmp_path: Path) -> None:
    check(only_issue(tmp_path / "nope.yaml"), line=None, path="", words=("no such file",))


def test_non_utf8_bytes(tmp_path: Path) -> None:
    """Latin-1 bytes: an error with the line, the byte and what to do."""
    path = tmp_path / "latin1.yaml"
    path.write_bytes(b"jobs:\n  a:\n    function: tests.tasks:echo\n"
                     b"    args: ['caf\xe9']\n")
    check(only_issue(path), line=4, path="", words=("not UTF-8", "0xe9", "save the file as UTF-8"))


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffjobs:\n  a:\n    function: tests.tasks:echo\n".encode())
    assert list(load_config(path).jobs) == ["a"]


def test_yaml_syntax_error_has_its_line(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: [1, 2
          b:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=5, path="", words=("invalid YAML", "flow sequence"))


def test_yaml_bad_indentation_has_its_line(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
           mode: serial
        """)
    check(only_issue(path), line=4, path="", words=("invalid YAML",))


def test_tab_indentation(tmp_path: Path) -> None:
    path = tmp_path / "tabs.yaml"
    path.write_text("jobs:\n\ta:\n\t\tfunction: tests.tasks:echo\n")
    check(only_issue(path), line=2, path="", words=("invalid YAML", "'\\t'"))


@pytest.mark.parametrize("char", ["\x00", "\x07", "\x1b"])
def test_control_character_is_an_error(tmp_path: Path, char: str) -> None:
    """YAML forbids most control characters; that is a located error, not a ReaderError."""
    path = tmp_path / "control.yaml"
    path.write_text(f"jobs:\n  a:\n    function: tests.tasks:echo\n    args: [a{char}b]\n")
    issue = only_issue(path)
    check(issue, line=4, path="", words=("invalid YAML", f"U+{ord(char):04X}", "not allowed"))
    assert issue.column == 13


def test_top_level_list(write_config: WriteConfig) -> None:
    path = write_config("""\
        - jobs:
            a:
              function: tests.tasks:echo
        """)
    check(only_issue(path), line=1, path="",
          words=("a config is a mapping with a 'jobs' key", "got [{'jobs'"))


@pytest.mark.parametrize("text, shown", [("hello\n", "'hello'"), ("42\n", "42"),
                                         ("[1, 2]\n", "[1, 2]")])
def test_top_level_scalar(tmp_path: Path, text: str, shown: str) -> None:
    path = tmp_path / "scalar.yaml"
    path.write_text(text)
    check(only_issue(path), line=1, path="", words=("a config is a mapping", f"got {shown}"))


def test_multiple_documents(write_config: WriteConfig) -> None:
    """A second document is an error at its '---' line (it would otherwise be ignored)."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
        ---
        jobs:
          b:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=4, path="", words=("single document", "another document"))


def test_leading_document_marker_is_fine(write_config: WriteConfig) -> None:
    path = write_config("""\
        ---
        jobs:
          a:
            function: tests.tasks:echo
        """)
    assert list(load_config(path).jobs) == ["a"]


# --------------------------------------------------------------------------- defaults


def test_defaults_are_merged_into_each_job(write_config: WriteConfig) -> None:
    """A default fills a job that lacks the key; a job's own key wins."""
    path = write_config("""\
        defaults:
          workers: 2
          mode: thread
          function: tests.tasks:square
        jobs:
          a:
            map: [1]
          b:
            function: tests.tasks:echo
            workers: 5
          c:
            mode: serial
        """)
    jobs = load_config(path).jobs
    assert (jobs["a"].function, jobs["a"].mode, jobs["a"].workers) == (
        "tests.tasks:square", "thread", 2)
    assert (jobs["b"].function, jobs["b"].mode, jobs["b"].workers) == (
        "tests.tasks:echo", "thread", 5)
    assert (jobs["c"].mode, jobs["c"].workers) == ("serial", 2)


def test_defaults_invalid_value_is_reported_in_defaults(write_config: WriteConfig) -> None:
    """workers: 0 under defaults: one issue at the defaults line, not one per job."""
    path = write_config("""\
        defaults:
          workers: 0
        jobs:
          a:
            function: tests.tasks:echo
          b:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=2, path="defaults.workers",
          words=("got 0", "greater than or equal to 1"))


def test_defaults_invalid_mode(write_config: WriteConfig) -> None:
    path = write_config("""\
        defaults:
          mode: cluster
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=2, path="defaults.mode",
          words=("'cluster' is not one of serial, thread, process, pool",))


def test_defaults_invalid_only_in_a_job_points_at_defaults(write_config: WriteConfig) -> None:
    """unpack: true is fine in defaults but not in a job without map: the line is in defaults."""
    path = write_config("""\
        defaults:
          unpack: true
        jobs:
          with_map:
            function: tests.tasks:echo
            map: [[1, 2]]
          without:
            function: tests.tasks:echo
        """)
    issue = only_issue(path)
    check(issue, line=2, path="defaults.unpack (in job without)",
          words=("unpack applies to map items only",))
    assert issue.path.startswith("defaults.")


def test_defaults_unknown_ref_points_at_defaults(write_config: WriteConfig) -> None:
    path = write_config("""\
        defaults:
          args: [1, !ref nope]
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=2, path="defaults.args.1 (in job a)", words=("!ref nope",))


def test_defaults_function_import_error_points_at_defaults(write_config: WriteConfig) -> None:
    path = write_config("""\
        defaults:
          function: tests.tasks:nope
        jobs:
          a: {}
        """)
    check(only_issue(path, JobImportError), line=2, path="defaults.function (in job a)",
          words=("has no attribute 'nope'",))


def test_defaults_not_a_mapping(write_config: WriteConfig) -> None:
    path = write_config("""\
        defaults: 5
        jobs:
          a:
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=1, path="defaults", words=("got 5", "dictionary"))


# --------------------------------------------------------------------------- function imports


def test_function_module_missing(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            mode: serial
            function: mprun_no_such_module_zz:run
        """)
    issue = only_issue(path, JobImportError)
    check(issue, line=4, path="jobs.a.function",
          words=("cannot import 'mprun_no_such_module_zz'",
                 "no module named 'mprun_no_such_module_zz'", "config's folder"))
    assert issue.column == 15


def test_function_attribute_missing(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:no_such_function
        """)
    check(only_issue(path, JobImportError), line=3, path="jobs.a.function",
          words=("module 'tests.tasks' has no attribute 'no_such_function'",))


def test_function_not_callable(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:NOT_CALLABLE
        """)
    check(only_issue(path, JobImportError), line=3, path="jobs.a.function",
          words=("tests.tasks:NOT_CALLABLE is not callable", "int"))


def test_reduce_function_is_checked_too(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            reduce: tests.tasks:no_reducer
        """)
    check(only_issue(path, JobImportError), line=5, path="jobs.a.reduce",
          words=("has no attribute 'no_reducer'",))


def test_module_raising_on_import(write_config: WriteConfig, tmp_path: Path) -> None:
    """A module that raises while importing: JobImportError naming the exception and where."""
    module = f"mprun_boom_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("raise RuntimeError('boom at import')\n")
    importlib.invalidate_caches()
    path = write_config(f"""\
        jobs:
          a:
            function: {module}:run
        """)
    issue = only_issue(path, JobImportError)
    check(issue, line=3, path="jobs.a.function",
          words=(f"importing '{module}' failed", "RuntimeError: boom at import",
                 f"{module}.py:1"))


def test_module_with_syntax_error(write_config: WriteConfig, tmp_path: Path) -> None:
    module = f"mprun_syntax_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("def run(:\n    pass\n")
    importlib.invalidate_caches()
    path = write_config(f"""\
        jobs:
          a:
            function: {module}:run
        """)
    check(only_issue(path, JobImportError), line=3, path="jobs.a.function",
          words=(f"importing '{module}' failed", "SyntaxError"))


def test_module_raising_system_exit_on_import(write_config: WriteConfig, tmp_path: Path) -> None:
    """Even SystemExit at import is reported as a config error, not an exit."""
    module = f"mprun_exit_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("raise SystemExit(3)\n")
    importlib.invalidate_caches()
    path = write_config(f"""\
        jobs:
          a:
            function: {module}:run
        """)
    check(only_issue(path, JobImportError), line=3, path="jobs.a.function",
          words=("SystemExit",))


def test_function_in_the_config_folder_is_importable(
        write_config: WriteConfig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A module beside the config imports, even from another working directory."""
    module = f"mprun_local_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("def run(x):\n    return x\n")
    importlib.invalidate_caches()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    path = write_config(f"""\
        jobs:
          a:
            function: {module}:run
            map: [1]
        """)
    assert load_config(path).jobs["a"].function == f"{module}:run"


def test_check_functions_false_skips_imports(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: mprun_no_such_module_zz:run
        """)
    assert load_config(path, check_functions=False).jobs["a"].function == (
        "mprun_no_such_module_zz:run")


def test_every_import_problem_is_reported(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:nope
          b:
            function: tests.tasks:NOT_CALLABLE
          c:
            function: tests.tasks:echo
        """)
    issues = issues_of(path, JobImportError)
    assert [(issue.line, issue.path) for issue in issues] == [
        (3, "jobs.a.function"), (5, "jobs.b.function")]


def test_job_import_error_is_a_config_error() -> None:
    assert issubclass(JobImportError, ConfigError)


# --------------------------------------------------------------------------- all at once


def test_three_independent_errors_are_reported_at_once(write_config: WriteConfig) -> None:
    """A schema error, an unknown !ref and a missing map file: three issues, each located."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            mode: cluster
          b:
            function: tests.tasks:echo
            args: [!ref nope]
          c:
            function: tests.tasks:echo
            map: {file: absent.txt}
        """)
    issues = issues_of(path)
    assert len(issues) == 3, "\n".join(map(str, issues))
    check(issue_at(issues, "jobs.a.mode"), line=4, path="jobs.a.mode", words=("'cluster'",))
    check(issue_at(issues, "jobs.b.args.0"), line=7, path="jobs.b.args.0", words=("!ref nope",))
    check(issue_at(issues, "jobs.c.map.file"), line=10, path="jobs.c.map.file",
          words=("no such file",))


def test_errors_of_every_kind_are_reported_at_once(
        write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    """YAML-level problems (duplicate key, unset variable, unsafe tag) do not hide the rest."""
    path = write_config("""\
        nmae: demo
        shared:
          counter: {type: value, typecode: B, init: 256}
        jobs:
          a:
            function: tests.tasks:echo
            mode: serial
            mode: thread
          b:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_UNSET}
          c:
            function: tests.tasks:echo
            args: [!!python/name:os.system , 1]
            unpack: true
          d:
            function: tests.tasks:echo
            kwargs: {x: !ref cuonter}
        """)
    issues = issues_of(path)
    located = sorted((issue.line, issue.path) for issue in issues)
    assert located == [
        (1, "nmae"), (3, "shared.counter.init"), (8, "jobs.a.mode"), (11, "jobs.b.workers"),
        (14, "jobs.c.args.0"), (15, "jobs.c.unpack"), (18, "jobs.d.kwargs.x"),
    ], "\n".join(map(str, issues))


# --------------------------------------------------------------------------- aliases


def test_alias_bomb_is_refused_quickly(write_config: WriteConfig) -> None:
    """Billion laughs (9^9 values from 10 lines) is refused in well under a second."""
    lines = ['lol0: &l0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 10):
        ref = f"*l{level - 1}"
        lines.append(f"lol{level}: &l{level} [{', '.join([ref] * 9)}]")
    path = write_config("\n".join(lines) + "\njobs:\n  a:\n    function: tests.tasks:echo\n"
                        "    args: *l9\n")
    started = time.perf_counter()
    issue = only_issue(path)
    elapsed = time.perf_counter() - started
    check(issue, line=1, path="", words=("alias", "refused"))
    assert elapsed < 1.0, f"took {elapsed:.2f}s"


def test_recursive_alias_is_refused(write_config: WriteConfig) -> None:
    """An anchor used inside itself is a located error, not a RecursionError."""
    path = write_config("""\
        loop: &loop [1, *loop]
        jobs:
          a:
            function: tests.tasks:echo
        """)
    issues = issues_of(path)
    check(issue_at(issues, "loop.1"), line=1, path="loop.1", words=("recursive alias",))


def test_deep_nesting_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "deep.yaml"
    depth = MAX_DEPTH + 50
    path.write_text("jobs:\n  a:\n    function: tests.tasks:echo\n"
                    f"    args: {'[' * depth}{']' * depth}\n")
    check(only_issue(path), line=1, path="", words=(f"nested more than {MAX_DEPTH} levels",))


def test_very_deep_nesting_is_refused(tmp_path: Path) -> None:
    """Deeper than PyYAML's own recursion can go: still a ConfigError."""
    path = tmp_path / "deeper.yaml"
    path.write_text("jobs: " + "[" * 5000 + "]" * 5000 + "\n")
    check(only_issue(path), line=1, path="", words=("nested more than",))


def test_merge_keys_work(write_config: WriteConfig) -> None:
    """<<: *anchor merges a mapping; the job's own keys win over the merged ones."""
    path = write_config("""\
        defaults: &common
          mode: thread
          workers: 3
        jobs:
          a:
            <<: *common
            function: tests.tasks:echo
            workers: 1
          b:
            <<: [*common, {reduce: sum}]
            function: tests.tasks:square
            map: [1, 2]
        """)
    jobs = load_config(path).jobs
    assert (jobs["a"].mode, jobs["a"].workers) == ("thread", 1)
    assert (jobs["b"].mode, jobs["b"].workers, jobs["b"].reduce) == ("thread", 3, "sum")


def test_aliases_of_values_work(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: &items [1, 2, 3]
          b:
            function: tests.tasks:square
            map: *items
        """)
    jobs = load_config(path).jobs
    assert jobs["a"].args == [1, 2, 3] and jobs["b"].map == [1, 2, 3]


def test_merge_of_a_scalar_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            <<: 5
            function: tests.tasks:echo
        """)
    check(only_issue(path), line=3, path="jobs.a", words=("merging",))


def test_undefined_alias_is_an_error(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: *nowhere
        """)
    check(only_issue(path), line=4, path="", words=("invalid YAML", "undefined alias 'nowhere'"))


def test_env_reference_in_flow_list_gets_a_hint(write_config):
    """`args: [${X:-2}]` is a YAML error; the message says how to write it instead."""
    path = write_config("jobs:\n  a:\n    function: tests.tasks:square\n    args: [${X:-2}]\n")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    (issue,) = info.value.issues
    assert issue.line == 4
    assert "use a block list (- ${VAR})" in issue.message


def test_exponent_floats_without_a_dot_are_floats(write_config):
    """YAML 1.1 reads 1e-3 as a string; mprun reads it as the float users mean."""
    path = write_config("""\
        shared:
          tiny: {type: value, typecode: d, init: 1e-3}
        jobs:
          a: {function: "tests.tasks:echo", args: [1e5, 2.5E-2, "1e3"]}
    """)
    config = load_config(path)
    assert config.shared["tiny"].init == 0.001
    assert config.jobs["a"].args == [100000.0, 0.025, "1e3"]
