"""timeout: a task past its time is stopped and recorded; the others finish."""

from __future__ import annotations

import pytest

import runner
from runner.errors import ConfigError
from tests.helpers import run_config

pytestmark = pytest.mark.timeout(90)


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_a_task_past_its_timeout_is_stopped_and_the_others_finish(tmp_path, mode,
                                                                   start_method):
    report = run_config(tmp_path, f"""\
        jobs:
          sleepy:
            function: tests.tasks:sleep
            mode: {mode}
            workers: 2
            map: [0.05, 60, 0.05, 0.05]
            timeout: 2
          later:
            function: tests.tasks:square
            mode: {mode}
            args: [4]
    """, start_method=start_method)
    assert (report.status, report.exit_code) == ("failed", 1)
    sleepy, later = report.jobs
    assert sleepy.results == [0.05, None, 0.05, 0.05]
    ((error),) = sleepy.errors
    assert (error.task, error.type) == (1, "TaskTimeout")
    assert error.message.startswith("timed out after 2s; its worker (pid ")
    assert "stopped with SIGTERM" in error.message
    assert later.results == [16]


def test_a_task_that_ignores_sigterm_is_killed(tmp_path):
    report = run_config(tmp_path, """\
        jobs:
          stubborn:
            function: tests.tasks:stubborn_sleep
            mode: pool
            workers: 1
            map: [60, 0.01]
            timeout: 1
    """, start_method="fork")
    job = report.jobs[0]
    assert job.results == [None, 0.01]
    (error,) = job.errors
    assert error.type == "TaskTimeout"
    assert "killed with SIGKILL after ignoring SIGTERM" in error.message


def test_a_timed_out_task_is_retried(tmp_path):
    report = run_config(tmp_path, """\
        jobs:
          sleepy:
            function: tests.tasks:sleep
            mode: process
            args: [60]
            timeout: 0.5
            retries: 1
    """, start_method="fork")
    (error,) = report.jobs[0].errors
    assert (error.type, error.attempts) == ("TaskTimeout", 2)


@pytest.mark.parametrize("mode", ["serial", "thread"])
def test_timeout_in_the_runners_own_process_is_a_config_error(write_config, mode):
    path = write_config(f"""\
        jobs:
          a:
            function: tests.tasks:sleep
            mode: {mode}
            args: [1]
            timeout: 5
    """)
    with pytest.raises(ConfigError) as info:
        runner.load_config(path)
    (issue,) = info.value.issues
    assert (issue.line, issue.path) == (6, "jobs.a.timeout")
    assert f"timeout needs mode process or pool or dask, not {mode}" in issue.message


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_a_worker_that_dies_holding_a_lock(tmp_path, mode):
    """Tasks waiting for a lock whose holder died end by their timeout; the run ends, and
    the dead worker's error says the lock may still be held."""
    report = run_config(tmp_path, f"""\
        shared:
          lock: lock
        jobs:
          locked:
            function: tests.tasks:hold_and_die
            mode: {mode}
            workers: 2
            timeout: 2
            tasks:
              - args: [!ref lock]
          waiter:
            function: tests.tasks:take_lock_later
            mode: {mode}
            timeout: 2
            args: [!ref lock]
    """, start_method="fork")
    assert report.status == "failed"
    (died,) = report.jobs[0].errors
    assert died.type == "WorkerCrashed"
    assert "a shared lock it held, if any, stays held" in died.message
    (waited,) = report.jobs[1].errors
    assert waited.type == "TaskTimeout"
