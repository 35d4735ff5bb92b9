"""retry_on: only the failure types it names are retried, matched with their bases by name,
in every mode; everything else fails for good on its first attempt."""

from __future__ import annotations

import pickle
import time
from pathlib import Path

import pytest

from runner.errors import ConfigError, TaskTimeout, WorkerCrashed
from runner.loader import load_config
from runner.work import TaskError
from tests.conftest import MODES
from tests.helpers import journal, run_config
from tests.retry_tasks import calls_of

pytestmark = pytest.mark.timeout(90)

CRASH_MODES = ["process", "pool"]  # modes where a task runs in a worker process


def _calls(tmp_path: Path) -> Path:
    folder = tmp_path / "calls"
    folder.mkdir()
    return folder


def _failures(report, job: int = 0) -> list[tuple[int, str, int]]:
    return [(e.task, e.type, e.attempts) for e in report.jobs[job].errors]


@pytest.mark.parametrize("mode", MODES)
def test_retry_on_a_base_class_retries_its_subclass_and_nothing_else(tmp_path, mode):
    """retry_on: [OSError] retries a ConnectionError (a subclass) up to `retries` times; a
    ValueError fails for good at once, with attempts 1 and one journal line."""
    calls = _calls(tmp_path)
    report = run_config(tmp_path, f"""\
        jobs:
          net:
            function: tests.retry_tasks:fail_as
            mode: {mode}
            workers: 2
            retries: 2
            retry_on: [OSError]
            tasks:
              - {{args: [0, ConnectionError, "{calls}"]}}
              - {{args: [1, ValueError, "{calls}"]}}
              - {{args: [2, ConnectionError, "{calls}"], kwargs: {{times: 1}}}}
    """, start_method="fork")
    assert calls_of(str(calls)) == {"0": 3, "1": 1, "2": 2}
    assert _failures(report) == [(0, "ConnectionError", 3), (1, "ValueError", 1)]
    assert report.jobs[0].results == [None, None, 2]
    attempts = [(line["task"], line["attempt"], line["status"]) for line in journal(report)]
    assert sorted(attempts) == [(0, 1, "failed"), (0, 2, "failed"), (0, 3, "failed"),
                                (1, 1, "failed"), (2, 1, "failed"), (2, 2, "ok")]


@pytest.mark.parametrize("mode", MODES)
def test_without_retry_on_every_failure_is_retried(tmp_path, mode):
    """The default: a ValueError is retried like a ConnectionError."""
    calls = _calls(tmp_path)
    report = run_config(tmp_path, f"""\
        jobs:
          any:
            function: tests.retry_tasks:fail_as
            mode: {mode}
            workers: 2
            retries: 1
            tasks:
              - {{args: [0, ConnectionError, "{calls}"]}}
              - {{args: [1, ValueError, "{calls}"]}}
    """, start_method="fork")
    assert calls_of(str(calls)) == {"0": 2, "1": 2}
    assert _failures(report) == [(0, "ConnectionError", 2), (1, "ValueError", 2)]


@pytest.mark.parametrize("mode", MODES)
def test_retry_on_worker_crashed_retries_a_dead_worker_but_not_an_exception(tmp_path, mode):
    """A worker killed (SIGKILL) or exiting (os._exit) mid-task is a WorkerCrashed, which
    retry_on: [WorkerCrashed] retries; the task's own ValueError is not retried. (In
    serial and thread mode a task cannot crash a worker: only the ValueError is run.)"""
    calls = _calls(tmp_path)
    crashes = f"""
              - {{args: [1, kill, "{calls}"], kwargs: {{times: 1}}}}
              - {{args: [2, exit, "{calls}"]}}""" if mode in CRASH_MODES else ""
    report = run_config(tmp_path, f"""\
        jobs:
          crash:
            function: tests.retry_tasks:fail_as
            mode: {mode}
            workers: 2
            retries: 1
            retry_on: [WorkerCrashed]
            tasks:
              - {{args: [0, ValueError, "{calls}"]}}{crashes}
    """, start_method="fork")
    if mode in CRASH_MODES:
        assert calls_of(str(calls)) == {"0": 1, "1": 2, "2": 2}
        assert _failures(report) == [(0, "ValueError", 1), (2, "WorkerCrashed", 2)]
        assert report.jobs[0].results == [None, 1, None]
    else:
        assert calls_of(str(calls)) == {"0": 1}
        assert _failures(report) == [(0, "ValueError", 1)]


@pytest.mark.parametrize("mode", CRASH_MODES)
def test_retry_on_task_timeout_retries_a_timed_out_task(tmp_path, mode):
    """retry_on: [TaskTimeout] retries a task stopped by its timeout; with retry_on:
    [OSError] the same timeout is final at once."""
    calls = _calls(tmp_path)
    report = run_config(tmp_path, f"""\
        jobs:
          retried:
            function: tests.retry_tasks:fail_as
            mode: {mode}
            timeout: 0.5
            retries: 1
            retry_on: [TaskTimeout]
            args: [0, sleep, "{calls}"]
            kwargs: {{times: 1}}
          final:
            function: tests.retry_tasks:fail_as
            mode: {mode}
            timeout: 0.5
            retries: 1
            retry_on: [OSError]
            args: [1, sleep, "{calls}"]
            kwargs: {{times: 1}}
    """, start_method="fork")
    assert calls_of(str(calls)) == {"0": 2, "1": 1}
    assert (report.jobs[0].results, report.jobs[0].errors) == ([0], [])
    assert _failures(report, 1) == [(0, "TaskTimeout", 1)]


@pytest.mark.parametrize(("mode", "start_method"), [("process", "spawn"),
                                                    ("pool", "forkserver")])
def test_the_worker_names_the_bases_of_a_class_the_runner_never_saw(tmp_path, mode,
                                                                    start_method):
    """The class's bases are named in the worker: a class made inside the task (which
    the runner cannot import) matches retry_on by a base's name or dotted path, under
    spawn and the fork server as under fork."""
    calls = _calls(tmp_path)
    report = run_config(tmp_path, f"""\
        defaults:
          function: tests.retry_tasks:fail_as
          mode: {mode}
          workers: 1
          retries: 1
        jobs:
          by_name:
            retry_on: [ServiceError]
            args: [0, local, "{calls}"]
          by_path:
            retry_on: [tests.retry_tasks.ServiceError]
            args: [1, local, "{calls}"]
          other:
            retry_on: [ConnectionError, other.ServiceError]
            args: [2, local, "{calls}"]
    """, start_method=start_method)
    assert calls_of(str(calls)) == {"0": 2, "1": 2, "2": 1}
    assert [_failures(report, job) for job in range(3)] == [
        [(0, "Throttled", 2)], [(0, "Throttled", 2)], [(0, "Throttled", 1)]]


@pytest.mark.parametrize("mode", MODES)
def test_a_failure_retry_on_does_not_name_stops_the_run_at_once(tmp_path, mode):
    """With on_error: stop and retries left, a failure retry_on does not name is final:
    the run stops on its first attempt, running tasks are stopped, later jobs never run."""
    calls = _calls(tmp_path)
    began = time.monotonic()
    report = run_config(tmp_path, f"""\
        jobs:
          first:
            function: tests.retry_tasks:fail_as
            mode: {mode}
            workers: 2
            retries: 3
            retry_delay: 10
            retry_on: [OSError]
            on_error: stop
            tasks:
              - {{args: [0, ValueError, "{calls}"]}}
              - {{args: [1, sleep, "{calls}"]}}
          later:
            function: tests.retry_tasks:fail_as
            args: [9, ok, "{calls}"]
    """, start_method="fork")
    assert time.monotonic() - began < 25  # neither the 30 s task nor a 10 s retry delay
    assert (report.status, report.exit_code, report.not_run) == ("failed", 1, ["later"])
    assert _failures(report) == [(0, "ValueError", 1)]
    assert calls_of(str(calls)).get("0") == 1
    assert "9" not in calls_of(str(calls))


@pytest.mark.parametrize("mode", ["serial", "pool"])
def test_a_failure_retry_on_names_is_retried_before_on_error_stop_applies(tmp_path, mode):
    """A matching failure with attempts left does not stop the run: it is retried, and
    a retry that succeeds leaves the run ok."""
    calls = _calls(tmp_path)
    report = run_config(tmp_path, f"""\
        jobs:
          first:
            function: tests.retry_tasks:fail_as
            mode: {mode}
            retries: 1
            retry_on: [OSError]
            on_error: stop
            args: [0, ConnectionError, "{calls}"]
            kwargs: {{times: 1}}
          later:
            function: tests.retry_tasks:fail_as
            args: [9, ok, "{calls}"]
    """, start_method="fork")
    assert (report.status, report.not_run) == ("ok", [])
    assert calls_of(str(calls)) == {"0": 2, "9": 1}


def test_the_type_names_stay_out_of_the_journal_and_the_report(tmp_path):
    """The journal's error is {type, message} and the report's {task, type, message,
    attempts}, as before: the class names retry_on is matched against are not written."""
    calls = _calls(tmp_path)
    report = run_config(tmp_path, f"""\
        jobs:
          one:
            function: tests.retry_tasks:fail_as
            mode: serial
            retries: 1
            retry_on: [LookupError]
            args: [0, KeyError, "{calls}"]
    """)
    lines = journal(report)
    assert [line["error"] for line in lines] == [
        {"type": "KeyError", "message": "'task 0 failed'"}] * 2
    assert report.as_dict()["jobs"][0]["errors"] == [
        {"task": 0, "type": "KeyError", "message": "'task 0 failed'", "attempts": 2}]


def test_resume_takes_a_changed_retry_on(tmp_path):
    """retry_on does not change which tasks exist: a resume with another retry_on is
    not refused, and runs again only the task that failed."""
    calls = _calls(tmp_path)
    config = tmp_path / "config.yaml"

    def write(retry_on: str) -> None:
        config.write_text(f"""\
jobs:
  net:
    function: tests.retry_tasks:fail_as
    mode: serial
    retries: 1
    retry_on: [{retry_on}]
    tasks:
      - {{args: [0, ok, "{calls}"]}}
      - {{args: [1, ValueError, "{calls}"], kwargs: {{times: 1}}}}
""")

    write("OSError")
    first = run_config(tmp_path, config)
    assert _failures(first) == [(1, "ValueError", 1)]
    write("ValueError")
    second = run_config(tmp_path, config, resume=Path(first.log_dir).name)
    assert (second.status, second.jobs[0].results, second.jobs[0].reused) == ("ok", [0, 1], 1)
    assert calls_of(str(calls)) == {"0": 1, "1": 2}


# -- what a failure is matched by ---------------------------------------------------


class _Outer:
    class NestedError(OSError):
        pass


@pytest.mark.parametrize(("names", "matches"), [
    (["NestedError"], True),
    (["OSError"], True),
    (["_Outer.NestedError"], True),
    (["test_retry_on._Outer.NestedError"], True),
    (["tests.test_retry_on._Outer.NestedError"], True),
    (["builtins.OSError"], True),
    (["BaseException"], True),
    (["Error"], False),  # whole parts only: not the end of "NestedError"
    (["sts.test_retry_on._Outer.NestedError"], False),
    (["other._Outer.NestedError"], False),
    (["ValueError", "TaskFailed"], False),
])
def test_a_name_matches_the_class_or_a_base_by_whole_dotted_parts(names, matches):
    error = TaskError.of(0, _Outer.NestedError("x"))
    assert error.is_a(names) is matches


@pytest.mark.parametrize("exc", [WorkerCrashed(1, -9, "killed"), TaskTimeout(1.0, 1, "killed")])
def test_the_runners_failures_match_their_own_name_and_task_failed(exc):
    error = TaskError.of(0, exc)
    assert error.is_a([type(exc).__name__]) and error.is_a(["TaskFailed"])
    assert not error.is_a(["OSError"])


def test_a_task_error_pickles_with_its_names_shared_between_errors_of_one_class():
    """Many failures of one class in one outcome carry the class names once."""
    errors = [TaskError.of(i, ConnectionError("down")) for i in range(100)]
    back = pickle.loads(pickle.dumps(errors))
    assert back == errors and back[0].kinds == ("builtins.ConnectionError", "builtins.OSError",
                                                "builtins.Exception", "builtins.BaseException")
    one = len(pickle.dumps(errors[:1]))
    assert len(pickle.dumps(errors)) < one + 99 * 40


def test_a_record_without_names_is_matched_by_its_type():
    assert TaskError(0, "ResultsDiffer", "differ").is_a(["ResultsDiffer"])


# -- config errors, located where they were written ------------------------------------


def _issues(write_config, text: str) -> list[tuple[int | None, str, str]]:
    path = write_config(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path, check_functions=False)
    return [(issue.line, issue.path, issue.message) for issue in caught.value.issues]


def test_retry_on_without_retries_is_an_error_at_the_key(write_config):
    ((line, path, message),) = _issues(write_config, """\
        jobs:
          a:
            function: tests.retry_tasks:fail_as
            retry_on: [OSError]
    """)
    assert (line, path) == (4, "jobs.a.retry_on")
    assert "retries" in message


@pytest.mark.parametrize("bad", ["'not a name'", "'1Error'", "'a..b'", "'Error:'", "''"])
def test_a_name_that_is_no_class_name_or_dotted_path_is_an_error_at_the_item(write_config,
                                                                              bad):
    ((line, path, message),) = _issues(write_config, f"""\
        jobs:
          a:
            function: tests.retry_tasks:fail_as
            retries: 1
            retry_on:
              - OSError
              - {bad}
    """)
    assert (line, path) == (7, "jobs.a.retry_on.1")
    assert "is not a class name" in message


def test_an_empty_retry_on_is_an_error(write_config):
    ((line, path, _),) = _issues(write_config, """\
        jobs:
          a: {function: "tests.retry_tasks:fail_as", retries: 1, retry_on: []}
    """)
    assert (line, path) == (2, "jobs.a.retry_on")


def test_retry_on_under_defaults_that_no_job_retries_with_is_an_error_there(write_config):
    ((line, path, message),) = _issues(write_config, """\
        defaults:
          retry_on: [WorkerCrashed]
        jobs:
          a: {function: "tests.retry_tasks:fail_as"}
          b: {function: "tests.retry_tasks:fail_as", retries: 0}
    """)
    assert (line, path) == (2, "defaults.retry_on")
    assert "retries" in message


def test_retry_on_under_defaults_may_reach_jobs_that_do_not_retry(write_config):
    """A job that opts out of retries (retries: 0) is no error because of the default."""
    path = write_config("""\
        defaults:
          retries: 2
          retry_on: [WorkerCrashed, TaskTimeout]
        jobs:
          a: {function: "tests.retry_tasks:fail_as"}
          b: {function: "tests.retry_tasks:fail_as", retries: 0}
    """)
    config = load_config(path, check_functions=False)
    assert config.jobs["b"].retry_on == ["WorkerCrashed", "TaskTimeout"]


def test_the_cli_prints_the_error_as_file_line_path(run_cli, write_config):
    path = write_config("""\
        jobs:
          a:
            function: tests.retry_tasks:fail_as
            retry_on: [OSError, "os error"]
    """)
    result = run_cli("validate", str(path))
    assert result.code == 2, result
    assert f"{path}:4:" in result.stderr
    assert "jobs.a.retry_on.1: 'os error' is not a class name" in result.stderr


def test_the_cli_locates_retry_on_without_retries(run_cli, write_config):
    path = write_config("""\
        jobs:
          a:
            function: tests.retry_tasks:fail_as
            retry_on: [OSError]
    """)
    result = run_cli("validate", str(path))
    assert result.code == 2, result
    assert f"{path}:4:" in result.stderr
    assert "jobs.a.retry_on: retry_on applies only with retries > 0" in result.stderr
