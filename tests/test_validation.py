"""Validation is one pass: a config with a problem of every kind reports all of them at once.

Schema errors, unknown ``!ref`` names, missing map files, functions that do
not import or are not callable, and (for a Config built in Python) arguments
that cannot be pickled all come in the same ConfigError, each located as
``FILE:LINE:COL: path: message``; the CLI prints them all and exits 2 with
nothing run. A job that fails its schema is still checked for what its raw
data can tell.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import runner
from runner.config import Config
from runner.errors import ConfigError, JobImportError

pytestmark = pytest.mark.timeout(60)

BROKEN = """\
shared:
  counter: {type: value, typecode: i}
jobs:
  schema:
    function: tests.tasks:square
    workers: 0
  bad_ref:
    function: tests.tasks:add
    args: [!ref nosuch, 1]
  no_file:
    function: tests.tasks:square
    map: {file: missing.jsonl}
  no_module:
    function: tests.no_such_module:f
  not_callable:
    function: tests.tasks:ALL_CODES_NOT_HERE
  broken_everywhere:
    function: tests.nowhere:f
    workers: -1
    args: [!ref unknown]
    retries: many
"""


def expected(path: Path) -> list[tuple[int, str, str]]:
    """(line, path, message fragment) for each problem BROKEN holds."""
    return [
        (6, "jobs.schema.workers", "greater than or equal to 1"),
        (9, "jobs.bad_ref.args.0", "!ref nosuch: no shared primitive of that name"),
        (12, "jobs.no_file.map.file", f"no such file {str(path.parent / 'missing.jsonl')!r}"),
        (14, "jobs.no_module.function", "cannot import 'tests.no_such_module'"),
        (16, "jobs.not_callable.function", "has no attribute 'ALL_CODES_NOT_HERE'"),
        (18, "jobs.broken_everywhere.function", "cannot import 'tests.nowhere'"),
        (19, "jobs.broken_everywhere.workers", "greater than or equal to 1"),
        (20, "jobs.broken_everywhere.args.0", "!ref unknown"),
        (21, "jobs.broken_everywhere.retries", "valid integer"),
    ]


def test_every_problem_of_every_kind_comes_in_one_error(tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    with pytest.raises(ConfigError) as caught:
        runner.load_config(path)
    found = sorted((issue.line, issue.path, issue.message) for issue in caught.value.issues)
    assert len(found) == len(expected(path)), "\n".join(map(str, caught.value.issues))
    for (line, where, message), (want_line, want_where, fragment) in zip(
            found, expected(path), strict=True):
        assert (line, where) == (want_line, want_where)
        assert fragment in message, (where, message)
    assert type(caught.value) is ConfigError  # not only imports: not a JobImportError


def test_the_cli_prints_every_problem_located_and_runs_nothing(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "broken.yaml"
    path.write_text(BROKEN)
    for argv in (["run", str(path)], ["validate", str(path)]):
        result = run_cli(*argv)
        assert result.code == 2, result
        assert result.stdout == ""
        lines = result.stderr.splitlines()
        assert len(lines) == len(expected(path)), result
        for line, (number, where, fragment) in zip(lines, expected(path), strict=True):
            assert re.match(rf"{re.escape(str(path))}:{number}:\d+: {re.escape(where)}: ", line)
            assert fragment in line
        assert "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists(), "an invalid config must leave nothing behind"


def test_a_config_whose_only_problem_is_an_import_raises_job_import_error(
        tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text("jobs:\n  a: {function: 'tests.no_such_module:f'}\n"
                    "  b: {function: 'tests.tasks:square', reduce: 'tests.nope:r'}\n")
    with pytest.raises(JobImportError) as caught:
        runner.load_config(path)
    assert [(i.line, i.path) for i in caught.value.issues] == [
        (2, "jobs.a.function"), (3, "jobs.b.reduce")]


def test_a_config_built_in_python_gets_the_same_pass_unpicklable_arguments_included(
        tmp_path: Path) -> None:
    config = Config.validate({"jobs": {
        "lam": {"function": "tests.tasks:echo", "mode": "pool", "args": [lambda: 1]},
        "ref": {"function": "tests.tasks:echo", "mode": "serial", "args": [runner_ref("x")]},
        "imp": {"function": "tests.nowhere:f", "mode": "serial"},
        "fine": {"function": "tests.tasks:echo", "mode": "serial", "args": [lambda: 1]},
    }})
    with pytest.raises(ConfigError) as caught:
        runner.run(config, log_dir=tmp_path / "logs")
    issues = {issue.path: issue.message for issue in caught.value.issues}
    assert set(issues) == {"jobs.lam", "jobs.ref.args.0", "jobs.imp.function"}, issues
    assert "cannot be sent to a worker process" in issues["jobs.lam"]
    assert "!ref x" in issues["jobs.ref.args.0"]
    assert not (tmp_path / "logs").exists()


def runner_ref(name: str) -> object:
    from runner.shared import Ref

    return Ref(name)


def test_before_imports_runs_once_only_the_imports_are_left_to_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The hook a run uses to start its fork server while job modules import: called
    with the valid config before its modules are imported, and never for a broken one."""
    import sys
    import uuid

    module = f"jobmod_{uuid.uuid4().hex}"
    (tmp_path / f"{module}.py").write_text("def f(x):\n    return x\n")
    monkeypatch.setattr(sys, "path", list(sys.path))
    path = tmp_path / "config.yaml"
    path.write_text(f"jobs:\n  a: {{function: '{module}:f'}}\n")
    seen: list[bool] = []
    config = runner.load_config(path, before_imports=lambda c: seen.append(
        module in sys.modules or c.jobs["a"].function != f"{module}:f"))
    assert seen == [False] and module in sys.modules and config.jobs["a"].function
    path.write_text(f"jobs:\n  a: {{function: '{module}:f', workers: 0}}\n")
    with pytest.raises(ConfigError):
        runner.load_config(path, before_imports=lambda c: seen.append(True))
    assert seen == [False]
