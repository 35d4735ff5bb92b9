"""retries, retry_delay, retry_backoff and on_error: stop, in every mode."""

from __future__ import annotations

from pathlib import Path

import pytest

import runner
from tests.conftest import MODES
from tests.helpers import journal, read_strict, run_config

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("mode", MODES)
def test_a_flaky_task_succeeds_on_a_retry_and_every_attempt_is_journaled(tmp_path, mode):
    report = run_config(tmp_path, f"""\
        shared:
          calls: {{type: value, typecode: i}}
        jobs:
          flaky:
            function: tests.tasks:flaky
            mode: {mode}
            workers: 2
            args: [7, !ref calls, 2]
            retries: 2
    """, start_method="fork")
    job = report.jobs[0]
    assert (report.exit_code, job.status, job.results, job.errors) == (0, "ok", [7], [])
    assert (job.ok, job.failed) == (1, 0)
    assert report.shared["calls"] == 3
    lines = journal(report)
    assert [(line["status"], line["attempt"]) for line in lines] == [
        ("failed", 1), ("failed", 2), ("ok", 3)]
    assert lines[0]["error"] == {"type": "ConnectionError", "message": "call 1 failed"}


@pytest.mark.parametrize("mode", MODES)
def test_a_task_that_keeps_failing_reports_how_many_attempts_it_took(tmp_path, mode):
    report = run_config(tmp_path, f"""\
        jobs:
          fails:
            function: tests.tasks:fail_on
            mode: {mode}
            workers: 2
            map: [1, 2, 3, 4]
            retries: 2
    """, start_method="fork")
    job = report.jobs[0]
    assert (report.exit_code, job.results) == (1, [1, 2, None, 4])
    (error,) = job.errors
    assert (error.task, error.type, error.attempts) == (2, "ValueError", 3)
    failed = [line for line in journal(report) if line["status"] == "failed"]
    assert [(line["task"], line["attempt"]) for line in failed] == [(2, 1), (2, 2), (2, 3)]
    assert "after 3 attempts" in runner.report.render(report)


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_a_crash_is_retried_and_told_apart_from_an_exception(tmp_path, mode):
    report = run_config(tmp_path, f"""\
        jobs:
          crash:
            function: tests.tasks:die_on
            mode: {mode}
            workers: 2
            map: [0, 1, 2]
            kwargs: {{how: kill}}
            retries: 1
    """, start_method="fork")
    (error,) = report.jobs[0].errors
    assert (error.task, error.type, error.attempts) == (1, "WorkerCrashed", 2)
    assert "SIGKILL" in error.message
    assert report.jobs[0].results == [0, None, 2]


def test_retry_delay_grows_by_the_backoff_factor(tmp_path):
    report = run_config(tmp_path, """\
        jobs:
          fails:
            function: tests.tasks:always_fail
            mode: serial
            retries: 3
            retry_delay: 0.01
            retry_backoff: 2
    """, start_method="fork")
    assert report.jobs[0].errors[0].attempts == 4
    lines = read_strict(Path(report.log_dir) / "runner.jsonl")
    retries = [line for line in lines if line["event"] == "retrying failed tasks"]
    assert [(line["attempt"], line["delay"]) for line in retries] == [
        (2, 0.01), (3, 0.02), (4, 0.04)]


@pytest.mark.parametrize("mode", MODES)
def test_on_error_stop_halts_the_run_at_the_first_failure(tmp_path, mode):
    """Running tasks are stopped, later jobs never start, and the report says so."""
    report = run_config(tmp_path, f"""\
        jobs:
          first:
            function: tests.tasks:maybe_fail
            mode: {mode}
            workers: 2
            on_error: stop
            tasks:
              - {{args: [a], kwargs: {{fail: true, delay: 0.2}}}}
              - {{args: [b], kwargs: {{delay: 30}}}}
              - {{args: [c], kwargs: {{delay: 30}}}}
          later:
            function: tests.tasks:square
            args: [3]
    """, start_method="fork")
    assert (report.status, report.exit_code) == ("failed", 1)
    assert report.not_run == ["later"]
    job = report.jobs[0]
    assert job.status == "failed"
    assert [e.task for e in job.errors] == [0]
    assert job.results == [None, None, None]
    assert job.ok == 0
    assert "not run: later" in runner.report.render(report)


def test_on_error_continue_is_the_default(tmp_path):
    report = run_config(tmp_path, """\
        jobs:
          first: {function: "tests.tasks:always_fail", mode: serial}
          later: {function: "tests.tasks:square", mode: serial, args: [3]}
    """, start_method="fork")
    assert [job.name for job in report.jobs] == ["first", "later"]
    assert report.jobs[1].results == [9]
    assert report.not_run == []
