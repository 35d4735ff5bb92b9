"""Results that cannot travel fail only their task; a task that forks gets no second answer.

A result that cannot be unpickled in the runner, or pickled in the worker
(``SystemExit`` from ``__reduce__``, a value nested deeper than pickle can
go), fails its own task as ``ResultError``: the rest of its chunk, later jobs
and the summary are unaffected, and the runner's exit code is 1. A task that
forks and returns in the child does not make the child answer for the chunk
or carry on as a worker or runner: the child ends at once.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from runner.report import RunReport
from tests.conftest import MODES
from tests.helpers import journal, run_config

pytestmark = pytest.mark.timeout(90)

CONFIG = """
jobs:
  travel:
    function: tests.travel_tasks:result_of
    mode: {mode}
    workers: 2
    chunksize: {chunksize}
    map: [0, 1, 2, 3]
    kwargs: {{kind: {kind}}}
  later: {{function: tests.tasks:square, mode: {mode}, args: [3]}}
"""

CASES = [
    ("http", "could not be unpickled in the runner: TypeError"),
    ("exit_on_unpickle", "could not be unpickled in the runner: SystemExit: 3"),
    ("exit_on_pickle", "cannot be sent back to the runner: SystemExit: 3"),
    ("deep", "nested deeper than pickle can go"),
]


def check_only_task_1_failed(report: RunReport, says: str) -> None:
    assert (report.status, report.exit_code) == ("failed", 1)
    travel, later = report.jobs
    assert travel.results == [0, None, 2, 3]
    ((error),) = travel.errors
    assert (error.task, error.type) == (1, "ResultError")
    assert says in error.message, error.message
    assert (later.status, later.results) == ("ok", [9])
    assert report.log_dir is not None
    summary = json.loads((Path(report.log_dir) / "summary.json").read_text())
    assert summary["exit_code"] == 1
    tasks = sorted(line.get("task", line.get("first")) for line in journal(report, "travel"))
    assert 1 in tasks


@pytest.mark.parametrize(("kind", "says"), CASES, ids=[kind for kind, _ in CASES])
@pytest.mark.parametrize("mode", ["pool", "process"])
@pytest.mark.parametrize("chunksize", [1, 4], ids=["one-by-one", "one-chunk"])
def test_a_result_that_cannot_travel_fails_only_its_task(
        tmp_path: Path, mode: str, kind: str, says: str, chunksize: int) -> None:
    report = run_config(tmp_path, CONFIG.format(mode=mode, kind=kind, chunksize=chunksize),
                        start_method="fork")
    check_only_task_1_failed(report, says)


def test_an_unpicklable_result_fails_its_task_under_every_start_method(
        tmp_path: Path, start_method: str) -> None:
    report = run_config(tmp_path, CONFIG.format(mode="pool", kind="http", chunksize=4),
                        start_method=start_method)
    check_only_task_1_failed(report, "HttpError.__init__() missing 1 required positional")


FORK_CONFIG = """
jobs:
  forks:
    function: tests.travel_tasks:fork_and_return
    mode: {mode}
    workers: 2
    chunksize: {chunksize}
    map: [0, 1, 2, 3]
"""


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("chunksize", [1, 4], ids=["one-by-one", "one-chunk"])
def test_a_task_that_forks_and_returns_in_the_child_gets_one_answer(
        tmp_path: Path, mode: str, chunksize: int) -> None:
    """The child ends at once (the parent's waitpid returns 0), never answers for the
    chunk, and every task is credited once, in place."""
    report = run_config(tmp_path, FORK_CONFIG.format(mode=mode, chunksize=chunksize),
                        start_method="fork")
    (job,) = report.jobs
    assert (report.status, job.status) == ("ok", "ok"), job.errors
    assert job.results == [0, ["parent", 0], 2, 3]
    lines = journal(report, "forks")
    credited = [task for line in lines
                for task in ([line["task"]] if "task" in line
                             else range(line["first"], line["first"] + len(line["values"])))]
    assert sorted(credited) == [0, 1, 2, 3]
