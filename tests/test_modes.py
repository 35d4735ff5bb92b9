"""The executor contract, written against the executor interface, bound to every mode.

Every mode in ``runner.executors``' registry runs these tests (a mode that
starts processes once per start method), and so does ``reversed``, a mode
that only this test module registers (``tests/fake_mode.py``): adding a mode
needs no change anywhere else in ``runner/``. What a test expects of a mode
comes from its executor class (``workers_for``, ``chunks_map_items``,
``enforces_timeout``), never from its name.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import runner
from runner import executors
from runner.errors import ConfigError, ConfigIssue
from runner.observe import Finished, JobStart, Observer, Started
from runner.report import JobReport, RunReport
from runner.schema import config_schema
from tests import fake_mode
from tests.conftest import START_METHODS
from tests.fake_mode import CountingBackend, ReversedExecutor
from tests.helpers import run_config
from tests.test_executors import WORKERS_CONFIG

pytestmark = pytest.mark.timeout(60)

ALL_MODES = [*executors.modes(), fake_mode.MODE]


def _targets() -> list[Any]:
    targets = []
    for mode in ALL_MODES:
        cls = ReversedExecutor if mode == fake_mode.MODE else executors.executor_for(mode)
        methods: list[str | None] = list(START_METHODS) if cls.uses_start_method else [None]
        targets += [pytest.param((mode, method), id=mode if method is None else f"{mode}-{method}")
                    for method in methods]
    return targets


@pytest.fixture(autouse=True)
def _fake_mode_registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The fake mode is valid for this module's tests only."""
    monkeypatch.setitem(executors.EXECUTORS, fake_mode.MODE, ReversedExecutor)
    CountingBackend.events.clear()
    ReversedExecutor.built = 0
    yield


@pytest.fixture(params=_targets())
def target(request: pytest.FixtureRequest) -> tuple[str, str | None]:
    return request.param  # type: ignore[no-any-return]


Run = Callable[..., RunReport]


@pytest.fixture
def run_yaml(tmp_path: Path) -> Run:
    def run(text: str, start_method: str | None = None, **options: Any) -> RunReport:
        return run_config(tmp_path, text, start_method=start_method, **options)

    return run


class Recorder(Observer):
    """Every event, in the order it came."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def job_started(self, event: JobStart) -> None:
        self.events.append(event)

    def started(self, event: Started) -> None:
        self.events.append(event)

    def finished(self, event: Finished) -> None:
        self.events.append(event)

    def job_finished(self, report: JobReport) -> None:
        self.events.append(report)


def test_results_are_in_task_order_and_a_raising_task_fails_alone(
        run_yaml: Run, target: tuple[str, str | None]) -> None:
    mode, method = target
    report = run_yaml(f"""
        jobs:
          items:
            function: tests.tasks:fail_on
            mode: {mode}
            workers: 2
            chunksize: 4
            map: {{range: 12}}
    """, method)
    (job,) = report.jobs
    assert (report.status, report.exit_code, job.status) == ("failed", 1, "failed")
    assert job.results == [0, 1, 2, None, *range(4, 12)]
    assert [(e.task, e.type, e.message) for e in job.errors] == [(3, "ValueError", "bad item 3")]
    assert (job.mode, job.workers, job.ok, job.failed) == (
        mode, executors.executor_for(mode).workers_for(2), 11, 1)


def test_observers_see_each_chunk_start_before_it_finishes_never_each_task(
        run_yaml: Run, target: tuple[str, str | None]) -> None:
    mode, method = target
    cls = executors.executor_for(mode)
    recorder = Recorder()
    before = time.time()
    report = run_yaml(f"""
        jobs:
          squares:
            function: tests.tasks:square
            mode: {mode}
            workers: 2
            chunksize: 5
            map: {{range: 20}}
    """, method, observers=[recorder])
    after = time.time()
    assert report.status == "ok"
    events = recorder.events
    assert events[0] == JobStart("squares", mode, cls.workers_for(2), 20, 20)
    assert isinstance(events[-1], JobReport) and events[-1].status == "ok"
    size = 5 if cls.chunks_map_items else 1
    started = [e for e in events if isinstance(e, Started)]
    finished = [e for e in events if isinstance(e, Finished)]
    assert sorted((e.first, e.count) for e in started) == [(f, size) for f in range(0, 20, size)]
    assert sorted(e.outcome.first for e in finished) == list(range(0, 20, size))
    for event in started:
        answer = next(i for i, e in enumerate(events)
                      if isinstance(e, Finished) and e.outcome.first == event.first)
        assert events.index(event) < answer, f"chunk {event.first} finished before it started"
        assert event.job == "squares" and event.attempt == 1 and event.mode is None
        assert before <= event.time <= after and event.pid > 0
    # A chunk's pid is the process that ran it.
    pids = {e.outcome.first: e.outcome.pid for e in finished}
    assert all(pids[e.first] == e.pid for e in started)


def test_workers_caps_the_tasks_running_at_once_as_the_mode_says(
        run_yaml: Run, target: tuple[str, str | None]) -> None:
    mode, method = target
    three = executors.executor_for(mode).workers_for(3)
    # The fake mode runs one chunk at a time by design: its tasks wait for no other.
    until = 1 if mode == fake_mode.MODE else three
    report = run_yaml(WORKERS_CONFIG.format(mode=mode, until=until), method)
    assert report.status == "ok", [j.errors for j in report.jobs]
    assert report.jobs[0].workers == three
    assert report.shared["peak3"] <= three and report.shared["peak1"] == 1
    if mode != fake_mode.MODE:  # the fake mode runs one chunk at a time by design
        assert report.shared["peak3"] == three


def test_a_run_opens_each_backend_once_for_all_its_jobs_and_closes_it_at_the_end(
        run_yaml: Run) -> None:
    report = run_yaml("""
        defaults: {function: tests.tasks:square, mode: reversed}
        jobs:
          one: {map: [1, 2]}
          two: {map: [3]}
          three: {args: [4]}
          both: {map: [5, 6], compare: [reversed, serial]}
    """)
    assert report.status == "ok", [j.errors for j in report.jobs]
    assert [j.results for j in report.jobs] == [[1, 4], [9], [16], [25, 36]]
    assert CountingBackend.events == [("open", report.run_id), ("close", report.run_id)]
    assert ReversedExecutor.built == 4  # one executor per job and per compare mode


def test_the_backend_is_closed_when_the_run_is_interrupted(run_yaml: Run) -> None:
    report = run_yaml("""
        jobs:
          stopped:
            function: tests.fake_mode:interrupt_runner
            mode: reversed
            chunksize: 1
            map: [3, 2, 1, 0]
          later: {function: tests.tasks:square, mode: reversed, args: [2]}
    """)
    assert (report.status, report.exit_code) == ("interrupted", 130)
    assert report.not_run == ["later"]
    assert CountingBackend.events == [("open", report.run_id), ("close", report.run_id)]


def only_issue(path: Path, job: str) -> ConfigIssue:
    path.write_text(f"jobs:\n  a: {{function: 'tests.tasks:square', {job}}}\n")
    with pytest.raises(ConfigError) as caught:
        runner.load_config(path)
    (issue,) = caught.value.issues
    return issue


def test_a_registered_mode_is_valid_in_configs_and_the_schema(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    issue = only_issue(path, "mode: cluster")
    assert (issue.line, issue.path) == (2, "jobs.a.mode")
    assert issue.message == f"'cluster' is not one of {', '.join(ALL_MODES)}"
    path.write_text("jobs:\n  a: {function: 'tests.tasks:square', mode: reversed}\n")
    assert runner.load_config(path).jobs["a"].mode == "reversed"
    schema = config_schema()
    assert fake_mode.MODE in str(schema)


def test_whether_a_timeout_can_be_enforced_is_the_executor_classes_word(tmp_path: Path) -> None:
    issue = only_issue(tmp_path / "config.yaml", "mode: reversed, timeout: 1")
    able = [m for m in ALL_MODES if executors.executor_for(m).enforces_timeout]
    assert able == ["process", "pool", "dask"]
    assert (issue.line, issue.path) == (2, "jobs.a.timeout")
    assert issue.message.startswith("timeout needs mode process or pool or dask, not reversed")


def test_a_cached_config_is_checked_again_against_a_plugins_executor(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """What a plugin's executor says (here: that it can enforce a timeout) is not in the
    config cache's key, so a hit with a plugin's mode registered runs every check again."""
    monkeypatch.setenv("MPRUN_CACHE_DIR", str(tmp_path / "cache"))
    path = tmp_path / "config.yaml"
    path.write_text(f"jobs:\n  a: {{function: 'tests.tasks:square', mode: {fake_mode.MODE}, "
                    "args: [2], timeout: 5}\n")
    monkeypatch.setattr(ReversedExecutor, "enforces_timeout", True)
    assert runner.load_config(path).jobs["a"].timeout == 5  # validated, and cached
    assert list((tmp_path / "cache").glob("*.entry"))
    monkeypatch.setattr(ReversedExecutor, "enforces_timeout", False)
    with pytest.raises(ConfigError) as caught:
        runner.load_config(path)
    assert caught.value.issues[0].path == "jobs.a.timeout"
