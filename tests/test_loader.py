"""Config loading and validation: runner.loader.load_config, in-process.

Every error test asserts where the problem is reported (line, dotted path) and
the key words of its message, as a user reads them:
``FILE:LINE:COL: jobs.add.workers: message``.

Configs with exactly one mistake are tables of :func:`case` rows (id, YAML
text, expected dotted path, expected line, words of the message; optionally the
error class, column, whole message, words that must not appear, and environment
variables): one table and one parametrized test per topic, in the "one-issue
tables" section at the end. The tests above it load valid configs, or do more
than take the one issue of a written config: several issues at once, str() of an
issue, a command that must never run, timing, the working directory, modules
written for the test (import isolation), or a path that is no config file.
"""

from __future__ import annotations

import array
import importlib
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

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


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch) -> pytest.MonkeyPatch:
    """A clean slate for the MPRUN_TEST_* variables these tests use."""
    for name in ("MPRUN_TEST_W", "MPRUN_TEST_NAME", "MPRUN_TEST_UNSET", "MPRUN_TEST_OTHER"):
        monkeypatch.delenv(name, raising=False)
    return monkeypatch


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


def shared_yaml(spec: str) -> str:
    """A config whose one shared entry ``s`` is ``spec`` (on line 2)."""
    return f"""\
        shared:
          s: {spec}
        jobs:
          a:
            function: tests.tasks:echo
        """


def config_with_shared(write_config: WriteConfig, spec: str) -> Path:
    return write_config(shared_yaml(spec))


def counter_yaml(code: str, init: Any) -> str:
    """A config whose shared value ``counter`` has ``init`` on line 5."""
    return f"""\
        shared:
          counter:
            type: value
            typecode: {code}
            init: {init}
        jobs:
          a:
            function: tests.tasks:echo
        """


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
                          "'cluster' is not one of serial, thread, process, pool, dask")
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


@pytest.mark.parametrize("code", "fd")
@pytest.mark.parametrize("value, expected", [("3.14", 3.14), ("2", 2), ("-1.5e+3", -1500.0)])
def test_value_float_code_takes_numbers(
        write_config: WriteConfig, code: str, value: str, expected: float) -> None:
    """f and d take any number, int or float."""
    path = config_with_shared(write_config, f"{{type: value, typecode: {code}, init: {value}}}")
    spec = load_config(path).shared["s"]
    assert isinstance(spec, ValueSpec)
    assert spec.init == expected


def test_value_u_takes_one_character(write_config: WriteConfig) -> None:
    path = config_with_shared(write_config, "{type: value, typecode: u, init: x}")
    spec = load_config(path).shared["s"]
    assert isinstance(spec, ValueSpec) and spec.init == "x"


@pytest.mark.parametrize("code", ALL_CODES)
def test_value_without_init_defaults(write_config: WriteConfig, code: str) -> None:
    """init is optional (zero is filled in when built); lock defaults to true."""
    path = config_with_shared(write_config, f"{{type: value, typecode: {code}}}")
    spec = load_config(path).shared["s"]
    assert isinstance(spec, ValueSpec)
    assert spec.init is None and spec.lock is True


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


# --------------------------------------------------------------------------- !ref


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


def test_repeat_with_args_is_fine(write_config: WriteConfig) -> None:
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:echo
            args: [1]
            repeat: 3
        """)
    assert load_config(path).jobs["a"].repeat == 3


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


# --------------------------------------------------------------------------- reading the file


@pytest.mark.parametrize("text", ["", "   \n\n\t\n"])
def test_empty_file(tmp_path: Path, text: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(text)
    issue = only_issue(path)
    check(issue, line=None, path="", words=("empty", "'jobs'"))
    assert str(issue) == f"{path}: {issue.message}"


def test_a_directory(tmp_path: Path) -> None:
    folder = tmp_path / "configs.yaml"
    folder.mkdir()
    check(only_issue(folder), line=None, path="", words=("is a directory",))


def test_a_missing_file(tmp_path: Path) -> None:
    check(only_issue(tmp_path / "nope.yaml"), line=None, path="", words=("no such file",))


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes("\ufeffjobs:\n  a:\n    function: tests.tasks:echo\n".encode())
    assert list(load_config(path).jobs) == ["a"]


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


# --------------------------------------------------------------------------- function imports


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


# --------------------------------------------------------------------------- one-issue tables


@dataclass(frozen=True)
class Case:
    """A config with one mistake, and how that one issue must be reported."""

    yaml: str | bytes  # str: dedented and written by write_config; bytes: written as is
    path: str  # the issue's dotted path
    line: int | str | None  # its line, or a needle: the first line of the file holding it
    words: tuple[str, ...]  # fragments its message must hold
    error: type[ConfigError] = ConfigError  # the class load_config must raise
    column: int | None = None  # its column, where a test pins it
    message: str | None = None  # its whole message, where a test pins it
    absent: tuple[str, ...] = ()  # fragments its message must not hold
    env: dict[str, str] = field(default_factory=dict)  # set for the load (MPRUN_TEST_*)


def case(id: str, yaml: str | bytes, path: str, line: int | str | None, *words: str,
         **expect: Any) -> Any:
    """One table row: ``pytest.param(Case(...), id=id)``."""
    return pytest.param(Case(yaml, path, line, words, **expect), id=id)


def assert_one_issue(case: Case, tmp_path: Path, write_config: WriteConfig,
                     env: pytest.MonkeyPatch) -> None:
    """Load ``case.yaml``: exactly one issue, of ``case.error``, reported as the case says."""
    for name, value in case.env.items():
        env.setenv(name, value)
    if isinstance(case.yaml, bytes):
        path = tmp_path / "config.yaml"
        path.write_bytes(case.yaml)
    else:
        path = write_config(case.yaml)
    line = line_of(path, case.line) if isinstance(case.line, str) else case.line
    issue = only_issue(path, case.error)
    check(issue, line=line, path=case.path, words=case.words)
    if case.column is not None:
        assert issue.column == case.column, str(issue)
    if case.message is not None:
        assert issue.message == case.message, str(issue)
    for word in case.absent:
        assert word not in issue.message, f"{word!r} in {issue}"


# Unsafe tags, !ref syntax, scalars and keys PyYAML cannot build: located errors.
SAFE_LOADING = [
    # Every !!python/... tag is refused, whatever node it is on.
    *(case(f"python-tag-{name}", f"""\
        jobs:
          a:
            function: tests.tasks:echo
            args:
              - 1
              - {tagged}
        """, "jobs.a.args.1", 6, tagged.split(maxsplit=1)[0], "not allowed")
      for name, tagged in [
          ("name", "!!python/name:os.system"),
          ("module", "!!python/module:os"),
          ("object-new", "!!python/object/new:os.system [x]"),
          ("object", "!!python/object:argparse.Namespace {a: 1}"),
          ("tuple", "!!python/tuple [1, 2]"),
          ("bytes", "!!python/bytes aGk="),
      ]),
    # A tag other than the standard ones and !ref is reported, naming the tag.
    case("unknown-tag", """\
        jobs:
          a:
            function: tests.tasks:echo
            args: [!foo bar]
        """, "jobs.a.args.0", 4, "unknown tag !foo", "!ref"),
    # !ref needs the name of a shared primitive.
    *(case(f"ref-without-a-name-{name}", f"""\
        shared:
          counter: {{type: value, typecode: i}}
        jobs:
          a:
            function: tests.tasks:echo
            args:
              - {ref}
        """, "jobs.a.args.0", 7, "!ref takes the name of a shared primitive")
      for name, ref in [("bare", "!ref"), ("empty", "!ref ''"), ("list", "!ref [a]"),
                        ("mapping", "!ref {a: 1}")]),
    # !ref stands for a value; as a key it is reported, not a crash.
    case("ref-as-a-mapping-key", """\
        jobs:
          a:
            function: tests.tasks:echo
            kwargs:
              !ref counter : 1
        """, "jobs.a.kwargs", 5, "cannot be a mapping key"),
    # A scalar PyYAML cannot build (ValueError, KeyError inside PyYAML) is a located error.
    *(case(f"scalar-{name}", f"""\
        description: {scalar}
        jobs:
          a:
            function: tests.tasks:echo
        """, "description", 1, *words)
      for name, scalar, words in [
          ("int-abc", "!!int abc", ("cannot read 'abc' as !!int",)),
          ("float-abc", "!!float abc", ("cannot read 'abc' as !!float",)),
          ("bool-maybe", "!!bool maybe", ("cannot read 'maybe' as !!bool",)),
          ("timestamp-abc", "!!timestamp abc", ("cannot read 'abc' as !!timestamp",)),
          ("date-2020-13-45", "2020-13-45",
           ("cannot read '2020-13-45' as !!timestamp", "month")),
          ("hex-0x_", "0x_", ("cannot read '0x_' as !!int",)),
      ]),
    # A complex (unhashable) key is reported, not a TypeError.
    *(case(f"{name}-as-a-key", "jobs:\n  a:\n    function: tests.tasks:echo\n" + key + "\n",
           "", 4, "mapping key must be a plain value")
      for name, key in [("list", "? [a, b]\n: 1"), ("mapping", "? {a: 1}\n: 1")]),
]


@pytest.mark.parametrize("case", SAFE_LOADING)
def test_unsafe_or_unbuildable_yaml_is_one_located_issue(
        case: Case, tmp_path: Path, write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    assert_one_issue(case, tmp_path, write_config, env)


# A key written twice names the key and the line it was first written on (PyYAML would
# silently keep the second).
DUPLICATE_KEYS = [
    case("top-level", """\
        jobs:
          a:
            function: tests.tasks:echo
        jobs:
          b:
            function: tests.tasks:echo
        """, "jobs", 4, "duplicate key 'jobs'", "first written on line 1", column=1),
    case("inside-a-job", """\
        jobs:
          a:
            function: tests.tasks:echo
            mode: serial
            workers: 2
            mode: thread
        """, "jobs.a.mode", 6, "duplicate key 'mode'", "first written on line 4"),
    case("job-name", """\
        jobs:
          a:
            function: tests.tasks:echo
          a:
            function: tests.tasks:square
        """, "jobs.a", 4, "duplicate key 'a'", "first written on line 2"),
    case("shared-name", """\
        shared:
          counter: {type: value, typecode: i}
          lock: lock
          counter: {type: value, typecode: d}
        jobs:
          a:
            function: tests.tasks:echo
        """, "shared.counter", 4, "duplicate key 'counter'", "first written on line 2"),
    case("inside-a-shared-entry", """\
        shared:
          counter:
            type: value
            typecode: i
            typecode: d
        jobs:
          a:
            function: tests.tasks:echo
        """, "shared.counter.typecode", 5,
         "duplicate key 'typecode'", "first written on line 4"),
]


@pytest.mark.parametrize("case", DUPLICATE_KEYS)
def test_duplicate_key_is_one_located_issue(
        case: Case, tmp_path: Path, write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    assert_one_issue(case, tmp_path, write_config, env)


# An unknown key is reported at its own line, says 'did you mean' when a key is close,
# and lists the keys allowed where it is.
UNKNOWN_KEYS = [
    case("top-level", """\
        nmae: demo
        jobs:
          a:
            function: tests.tasks:echo
        """, "nmae", 1, "unknown key 'nmae'", "did you mean 'name'?",
         "allowed: dask, defaults, description, jobs, name", column=1),
    # 'worker' in a job suggests 'workers', at the key's own line and column.
    case("job", """\
        jobs:
          a:
            function: tests.tasks:echo
            worker: 3
        """, "jobs.a.worker", 4, "unknown key 'worker'", "did you mean 'workers'?",
         "allowed: args, chunksize", column=5),
    # 'intt' in a value entry suggests 'init' and lists a value's keys.
    case("shared-value", """\
        shared:
          counter:
            type: value
            typecode: i
            intt: 3
        jobs:
          a:
            function: tests.tasks:echo
        """, "shared.counter.intt", 5, "unknown key 'intt'", "did you mean 'init'?",
         "allowed: init, lock, type, typecode"),
    # A lock has no keys but 'type'.
    case("keyless-shared-type", """\
        shared:
          guard: {type: lock, init: 1}
        jobs:
          a:
            function: tests.tasks:echo
        """, "shared.guard.init", 2, "unknown key 'init'", "(allowed: type)"),
    # 'kwarg' in a task entry suggests 'kwargs' and lists only a task's keys.
    case("task", """\
        jobs:
          a:
            function: tests.tasks:echo
            tasks:
              - args: [1]
              - args: [2]
                kwarg: {x: 1}
        """, "jobs.a.tasks.1.kwarg", 7, "unknown key 'kwarg'", "did you mean 'kwargs'?",
         "(allowed: args, kwargs)"),
    # 'wrkers' in defaults is reported once, at defaults, not once per job.
    case("defaults", """\
        defaults:
          wrkers: 2
        jobs:
          a:
            function: tests.tasks:echo
          b:
            function: tests.tasks:echo
        """, "defaults.wrkers", 2, "unknown key 'wrkers'", "did you mean 'workers'?"),
    # A task entry under defaults lists a task's keys, and is not repeated for each job.
    case("task-under-defaults", """\
        defaults:
          tasks:
            - args: [1]
              kwarg: {}
        jobs:
          a:
            function: tests.tasks:echo
        """, "defaults.tasks.0.kwarg", 4, "unknown key 'kwarg'", "did you mean 'kwargs'?",
         "(allowed: args, kwargs)"),
    # {range: 3, file: x} is a range source with an extra key: no 'did you mean file'.
    case("file-in-a-range-map", """\
        jobs:
          a:
            function: tests.tasks:echo
            map: {range: 3, file: x.txt}
        """, "jobs.a.map.file", 4, "unknown key 'file'", "(allowed: range)",
         absent=("did you mean",)),
]


@pytest.mark.parametrize("case", UNKNOWN_KEYS)
def test_unknown_key_is_one_located_issue(
        case: Case, tmp_path: Path, write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    assert_one_issue(case, tmp_path, write_config, env)


def _out_of_range(code: str, side: str) -> Any:
    low, high = int_bounds(code)
    value = low - 1 if side == "below" else high + 1
    return case(f"value-init-{side}-range-{code}", counter_yaml(code, value),
                "shared.counter.init", 5,
                f"{value} is out of range for typecode '{code}'", f"from {low} to {high}")


def _array_item_out_of_range(code: str) -> Any:
    low, high = int_bounds(code)
    return case(f"array-item-out-of-range-{code}",
                shared_yaml(f"{{type: array, typecode: {code}, init: [{low}, {high + 1}]}}"),
                "shared.s.init", 2,
                f"init[1]: {high + 1} is out of range for typecode '{code}'")


# Shared primitives: a value's init against its typecode, arrays, the other types, and
# !ref names that are not declared.
SHARED = [
    # value: one past either bound is an error at init's line naming the value and range.
    *(_out_of_range(code, side) for side in ("below", "above") for code in INT_CODES),
    # value: true is not 1: a bool init is refused for every typecode.
    *(case(f"value-bool-init-{code}", counter_yaml(code, "true"), "shared.counter.init", 5,
           "True is not", f"typecode '{code}'")
      for code in ALL_CODES),
    # value: an integer typecode takes an int only (no 1.5, no '7').
    *(case(f"value-int-code-{name}-init-{code}",
           shared_yaml(f"{{type: value, typecode: {code}, init: {value}}}"),
           "shared.s.init", 2, "is not an int")
      for name, value in [("float", "1.5"), ("str", "'7'")] for code in INT_CODES),
    *(case(f"value-float-code-str-init-{code}",
           shared_yaml(f"{{type: value, typecode: {code}, init: pi}}"),
           "shared.s.init", 2, "'pi' is not a number", f"typecode '{code}'")
      for code in "fd"),
    *(case(f"value-u-init-{name}",
           shared_yaml(f"{{type: value, typecode: u, init: {value}}}"),
           "shared.s.init", 2, f"{shown} is not one character", "typecode 'u'")
      for name, value, shown in [("two-chars", "xy", "'xy'"), ("empty", "''", "''"),
                                 ("int", "1", "1")]),
    case("value-unknown-typecode", shared_yaml("{type: value, typecode: z}"),
         "shared.s.typecode", 2, "'z' is not one of b, B, u, h, H, i, I, l, L, q, Q, f, d"),
    case("value-missing-typecode", shared_yaml("{type: value, init: 1}"),
         "shared.s.typecode", 2, "required key is missing"),
    # 'name: value' has no typecode: the error says which key is missing.
    case("value-shorthand", shared_yaml("value"), "shared.s", 2, "required key 'typecode'"),
    case("value-lock-not-a-bool", shared_yaml("{type: value, typecode: i, lock: sometimes}"),
         "shared.s.lock", 2, "'sometimes'", "boolean"),
    # array: a nested list says an array is one-dimensional (the seed shows a TypeError).
    case("array-nested-list", """\
        shared:
          grid:
            type: array
            typecode: i
            init: [[1, 2], [3, 4]]
        jobs:
          a:
            function: tests.tasks:echo
        """, "shared.grid.init", 5, "init[0] is a nested list", "one-dimensional"),
    # array: both init and size, or neither, is an error.
    *(case(f"array-{name}", shared_yaml("{type: array, typecode: i" + keys + "}"),
           "shared.s", 2, "give exactly one of init (a flat list) or size")
      for name, keys in [("init-and-size", ", init: [1, 2], size: 2"),
                         ("neither-init-nor-size", "")]),
    # array: each item must fit the typecode; the message names the index and the value.
    *(_array_item_out_of_range(code) for code in INT_CODES),
    case("array-bool-item", shared_yaml("{type: array, typecode: i, init: [1, true]}"),
         "shared.s.init", 2, "init[1]: True is not an int"),
    case("array-negative-size", shared_yaml("{type: array, typecode: i, size: -1}"),
         "shared.s.size", 2, "got -1", "greater than or equal to 0"),
    # the other types, and entries that are no type at all.
    *(case(f"entry-{name}", shared_yaml(spec), dotted, 2, *words)
      for name, spec, dotted, words in [
          ("semaphore-init-negative", "{type: semaphore, init: -1}", "shared.s.init",
           ("got -1", "greater than or equal to 0")),
          ("queue-maxsize-negative", "{type: queue, maxsize: -1}", "shared.s.maxsize",
           ("got -1", "greater than or equal to 0")),
          ("barrier-parties-zero", "{type: barrier, parties: 0}", "shared.s.parties",
           ("got 0", "greater than or equal to 1")),
          ("barrier-parties-missing", "{type: barrier}", "shared.s.parties",
           ("required key is missing",)),
          ("barrier-shorthand", "barrier", "shared.s", ("required key 'parties' is missing",)),
          ("unknown-type", "{type: nope}", "shared.s",
           ("type 'nope' is not one of value, array, lock, rlock, semaphore, event, queue, "
            "barrier",)),
          ("no-type", "{typecode: i}", "shared.s", ("a 'type' key is required",)),
          ("int", "5", "shared.s", ("got 5", "dictionary")),
          ("unknown-shorthand", "clock", "shared.s", ("got 'clock'", "dictionary")),
      ]),
    # Block style: the missing key is reported where the entry's mapping starts.
    case("entry-barrier-parties-missing-block-style", """\
        shared:
          gate:
            type: barrier
        jobs:
          a:
            function: tests.tasks:echo
        """, "shared.gate.parties", 3, "required key is missing"),
    # An unknown !ref is reported at its exact path, listing the declared names.
    case("ref-to-an-unknown-name", """\
        shared:
          counter: {type: value, typecode: i}
          lock: lock
        jobs:
          add:
            function: tests.tasks:add
            tasks:
              - args: [!ref counter, 1]
              - args: [!ref countr, 3]
        """, "jobs.add.tasks.1.args.0", 9, "!ref countr", "no shared primitive of that name",
         "shared: counter, lock", column=16),
]


@pytest.mark.parametrize("case", SHARED)
def test_shared_mistake_is_one_located_issue(
        case: Case, tmp_path: Path, write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    assert_one_issue(case, tmp_path, write_config, env)


# ${VAR}: an unset variable, a reference without a name, and values that do not fit.
ENVIRONMENT = [
    # An unset variable with no default is an error naming it, at the value's line.
    case("unset-variable", """\
        jobs:
          a:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_UNSET}
        """, "jobs.a.workers", 4, "environment variable MPRUN_TEST_UNSET is not set",
         "${MPRUN_TEST_UNSET:-", column=14),
    case("without-a-name", """\
        description: "cost: ${}"
        jobs:
          a:
            function: tests.tasks:echo
        """, "description", 1, "needs a variable name"),
    # workers: ${W} with W=lots is a validation error at workers naming 'lots'.
    case("value-not-an-int", """\
        jobs:
          a:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_W}
        """, "jobs.a.workers", 4, "got 'lots'", "integer", env={"MPRUN_TEST_W": "lots"}),
    # W=0x_ resolves like an int but does not parse: an error, not a ValueError.
    case("value-pyyaml-cannot-build", """\
        jobs:
          a:
            function: tests.tasks:echo
            workers: ${MPRUN_TEST_W}
        """, "jobs.a.workers", 4, "cannot read '0x_'", env={"MPRUN_TEST_W": "0x_"}),
]


@pytest.mark.parametrize("case", ENVIRONMENT)
def test_environment_mistake_is_one_located_issue(
        case: Case, tmp_path: Path, write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    assert_one_issue(case, tmp_path, write_config, env)


# Jobs, their keys and what combines, the jobs section itself, and defaults (reported at
# the defaults line, once, not once per job).
JOBS = [
    # Two call sources in one job: reported at the job, naming both.
    case("args-and-tasks", """\
        jobs:
          a:
            function: tests.tasks:echo
            args: [1]
            tasks:
              - args: [2]
        """, "jobs.a", 3, "give one call source, not args/kwargs/repeat and tasks"),
    case("tasks-and-map", """\
        jobs:
          a:
            function: tests.tasks:echo
            tasks: [{args: [1]}]
            map: [1, 2]
        """, "jobs.a", 3, "give one call source, not tasks and map"),
    case("repeat-with-map", """\
        jobs:
          a:
            function: tests.tasks:echo
            map: [1, 2]
            repeat: 3
        """, "jobs.a.repeat", 5, "repeat cannot be combined with map"),
    case("unpack-without-map", """\
        jobs:
          a:
            function: tests.tasks:echo
            args: [1]
            unpack: true
        """, "jobs.a.unpack", 5, "unpack applies to map items only"),
    case("chunksize-without-map", """\
        jobs:
          a:
            function: tests.tasks:echo
            chunksize: 4
        """, "jobs.a.chunksize", 4, "chunksize applies to map jobs only"),
    case("chunksize-zero", """\
        jobs:
          a:
            function: tests.tasks:square
            map: [1]
            chunksize: 0
        """, "jobs.a.chunksize", 5, "auto", "greater than or equal to 1"),
    case("workers-zero", """\
        jobs:
          a:
            function: tests.tasks:echo
            workers: 0
        """, "jobs.a.workers", 4, "got 0", "greater than or equal to 1"),
    # An unknown mode lists the modes: the whole message.
    case("unknown-mode", """\
        jobs:
          a:
            function: tests.tasks:echo
            mode: cluster
        """, "jobs.a.mode", 4,
         message="'cluster' is not one of serial, thread, process, pool, dask"),
    case("unknown-start-method", """\
        start_method: threads
        jobs:
          a:
            function: tests.tasks:echo
        """, "start_method", 1, message="'threads' is not one of fork, spawn, forkserver"),
    case("unknown-reduce", """\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            reduce: median
        """, "jobs.a.reduce", 5, "'median' is not one of sum, min, max, count, mean, list",
         '"module:qualname"'),
    case("compare-with-a-duplicate-mode", """\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            compare: [thread, process, thread]
        """, "jobs.a.compare", 5, "each mode may appear once"),
    case("compare-with-an-unknown-mode", """\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            compare: [thread, cluster]
        """, "jobs.a.compare.1", 5, "'cluster' is not one of serial, thread, process, pool, dask"),
    case("map-range-step-zero", """\
        jobs:
          a:
            function: tests.tasks:square
            map: {range: [0, 10, 0]}
        """, "jobs.a.map.range", 4, "step", "must not be 0"),
    case("map-range-too-many-numbers", """\
        jobs:
          a:
            function: tests.tasks:square
            map: {range: [0, 10, 1, 2]}
        """, "jobs.a.map.range", 4, "at most 3 items"),
    # map: 5 (or a string, or a mapping with neither range nor file) lists the map forms.
    *(case(f"map-of-the-wrong-shape-{name}", f"""\
        jobs:
          a:
            function: tests.tasks:square
            map: {value}
        """, "jobs.a.map", 4,
           "expected a list, {range: N}, {range: [start, stop, step]} or {file: PATH}")
      for name, value in [("int", "5"), ("str", "text"), ("mapping", "{files: x}")]),
    case("jobs-missing", """\
        name: nothing
        description: no jobs here
        """, "jobs", 1, "required key is missing"),
    *(case(f"jobs-{name}", f"name: x\njobs: {value}\n", "jobs", 2, *words)
      for name, value, words in [
          ("empty-mapping", "{}", ("got {}", "at least 1 item")),
          ("empty", "", ("got None", "dictionary")),
          ("list", "[]", ("got []", "dictionary")),
      ]),
    case("job-without-function", """\
        jobs:
          a:
            mode: serial
        """, "jobs.a.function", 3, "required key is missing"),
    *(case(f"function-not-module-colon-qualname-{function}", f"""\
        jobs:
          a:
            function: "{function}"
        """, "jobs.a.function", 3, repr(function), '"module:qualname"')
      for function in ["square", "tests.tasks", "tests.tasks:", "1x:y", "a:b:c"]),
    # workers: 0 under defaults: one issue at the defaults line, not one per job.
    case("defaults-workers-zero", """\
        defaults:
          workers: 0
        jobs:
          a:
            function: tests.tasks:echo
          b:
            function: tests.tasks:echo
        """, "defaults.workers", 2, "got 0", "greater than or equal to 1"),
    case("defaults-unknown-mode", """\
        defaults:
          mode: cluster
        jobs:
          a:
            function: tests.tasks:echo
        """, "defaults.mode", 2, "'cluster' is not one of serial, thread, process, pool, dask"),
    # unpack: true is fine in defaults but not in a job without map: the line is in
    # defaults (and the path starts with "defaults.").
    case("defaults-invalid-only-in-a-job", """\
        defaults:
          unpack: true
        jobs:
          with_map:
            function: tests.tasks:echo
            map: [[1, 2]]
          without:
            function: tests.tasks:echo
        """, "defaults.unpack (in job without)", 2, "unpack applies to map items only"),
    case("defaults-unknown-ref", """\
        defaults:
          args: [1, !ref nope]
        jobs:
          a:
            function: tests.tasks:echo
        """, "defaults.args.1 (in job a)", 2, "!ref nope"),
    case("defaults-not-a-mapping", """\
        defaults: 5
        jobs:
          a:
            function: tests.tasks:echo
        """, "defaults", 1, "got 5", "dictionary"),
]


@pytest.mark.parametrize("case", JOBS)
def test_job_mistake_is_one_located_issue(
        case: Case, tmp_path: Path, write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    assert_one_issue(case, tmp_path, write_config, env)


_DEEP = MAX_DEPTH + 50

# The file as a whole: no document, bytes that are not UTF-8, YAML syntax, the shape of
# the document, several documents, nesting and aliases. Reported at a line, path "".
FILE = [
    *(case(f"no-document-{name}", text, "", 1, "empty")
      for name, text in [("comment", "# just a comment\n"), ("marker", "---\n"),
                         ("markers-and-comment", "--- # c\n...\n"), ("null", "~\n")]),
    # Latin-1 bytes: an error with the line, the byte and what to do.
    case("non-utf8-bytes", b"jobs:\n  a:\n    function: tests.tasks:echo\n"
                           b"    args: ['caf\xe9']\n",
         "", 4, "not UTF-8", "0xe9", "save the file as UTF-8"),
    case("yaml-syntax-error", """\
        jobs:
          a:
            function: tests.tasks:echo
            args: [1, 2
          b:
            function: tests.tasks:echo
        """, "", 5, "invalid YAML", "flow sequence"),
    case("yaml-bad-indentation", """\
        jobs:
          a:
            function: tests.tasks:echo
           mode: serial
        """, "", 4, "invalid YAML"),
    case("tab-indentation", "jobs:\n\ta:\n\t\tfunction: tests.tasks:echo\n",
         "", 2, "invalid YAML", "'\\t'"),
    # YAML forbids most control characters: a located error, not a ReaderError.
    *(case(f"control-character-{ord(char):#04x}",
           f"jobs:\n  a:\n    function: tests.tasks:echo\n    args: [a{char}b]\n",
           "", 4, "invalid YAML", f"U+{ord(char):04X}", "not allowed", column=13)
      for char in ["\x00", "\x07", "\x1b"]),
    case("top-level-list", """\
        - jobs:
            a:
              function: tests.tasks:echo
        """, "", 1, "a config is a mapping with a 'jobs' key", "got [{'jobs'"),
    *(case(f"top-level-scalar-{name}", text, "", 1, "a config is a mapping", f"got {shown}")
      for name, text, shown in [("str", "hello\n", "'hello'"), ("int", "42\n", "42"),
                                ("flow-list", "[1, 2]\n", "[1, 2]")]),
    # A second document is an error at its '---' line (it would otherwise be ignored).
    case("multiple-documents", """\
        jobs:
          a:
            function: tests.tasks:echo
        ---
        jobs:
          b:
            function: tests.tasks:echo
        """, "", 4, "single document", "another document"),
    case("deep-nesting", "jobs:\n  a:\n    function: tests.tasks:echo\n"
                         f"    args: {'[' * _DEEP}{']' * _DEEP}\n",
         "", 1, f"nested more than {MAX_DEPTH} levels"),
    # Deeper than PyYAML's own recursion can go: still a ConfigError.
    case("very-deep-nesting", "jobs: " + "[" * 5000 + "]" * 5000 + "\n",
         "", 1, "nested more than"),
    case("merge-of-a-scalar", """\
        jobs:
          a:
            <<: 5
            function: tests.tasks:echo
        """, "jobs.a", 3, "merging"),
    case("undefined-alias", """\
        jobs:
          a:
            function: tests.tasks:echo
            args: *nowhere
        """, "", 4, "invalid YAML", "undefined alias 'nowhere'"),
    # `args: [${X:-2}]` is a YAML error; the message says how to write it instead.
    case("env-reference-in-a-flow-list",
         "jobs:\n  a:\n    function: tests.tasks:square\n    args: [${X:-2}]\n",
         "", 4, "use a block list (- ${VAR})"),
]


@pytest.mark.parametrize("case", FILE)
def test_file_mistake_is_one_located_issue(
        case: Case, tmp_path: Path, write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    assert_one_issue(case, tmp_path, write_config, env)


# A function (or reducer) that cannot be imported or called: JobImportError, at its line.
IMPORTS = [
    case("module-missing", """\
        jobs:
          a:
            mode: serial
            function: mprun_no_such_module_zz:run
        """, "jobs.a.function", 4, "cannot import 'mprun_no_such_module_zz'",
         "no module named 'mprun_no_such_module_zz'", "config's folder",
         error=JobImportError, column=15),
    case("attribute-missing", """\
        jobs:
          a:
            function: tests.tasks:no_such_function
        """, "jobs.a.function", 3, "module 'tests.tasks' has no attribute 'no_such_function'",
         error=JobImportError),
    case("not-callable", """\
        jobs:
          a:
            function: tests.tasks:NOT_CALLABLE
        """, "jobs.a.function", 3, "tests.tasks:NOT_CALLABLE is not callable", "int",
         error=JobImportError),
    case("reduce-function", """\
        jobs:
          a:
            function: tests.tasks:square
            map: [1, 2]
            reduce: tests.tasks:no_reducer
        """, "jobs.a.reduce", 5, "has no attribute 'no_reducer'", error=JobImportError),
    case("function-in-defaults", """\
        defaults:
          function: tests.tasks:nope
        jobs:
          a: {}
        """, "defaults.function (in job a)", 2, "has no attribute 'nope'",
         error=JobImportError),
]


@pytest.mark.parametrize("case", IMPORTS)
def test_import_problem_is_one_located_issue(
        case: Case, tmp_path: Path, write_config: WriteConfig, env: pytest.MonkeyPatch) -> None:
    assert_one_issue(case, tmp_path, write_config, env)
