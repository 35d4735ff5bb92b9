"""When the system refuses a worker process (EMFILE, EAGAIN, ENOMEM at fork)."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

import runner
from runner.executors.pool import PoolExecutor

pytestmark = pytest.mark.timeout(60)

CONFIG = """
jobs:
  squares:
    function: tests.tasks:square
    mode: {mode}
    workers: 2
    chunksize: 1
    map: [1, 2, 3, 4, 5, 6]
"""


def refuse_after(monkeypatch: pytest.MonkeyPatch, allowed: int) -> list[int]:
    """Let ``allowed`` workers start; the next starts fail as a full fd table would."""
    started: list[int] = []
    real = PoolExecutor._start_worker

    def start(self: PoolExecutor):  # type: ignore[no-untyped-def]
        if len(started) >= allowed:
            raise OSError(errno.EMFILE, "Too many open files")
        started.append(1)
        return real(self)

    monkeypatch.setattr(PoolExecutor, "_start_worker", start)
    return started


@pytest.mark.parametrize("mode", ["pool", "process"])
def test_the_job_goes_on_with_the_workers_that_started(tmp_path: Path, monkeypatch, mode):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(mode=mode))
    started = refuse_after(monkeypatch, 1 if mode == "pool" else 3)
    report = runner.run(path, log_dir=tmp_path / "logs", start_method="fork")
    (job,) = report.jobs
    if mode == "pool":
        assert (job.status, job.ok, job.results) == ("ok", 6, [1, 4, 9, 16, 25, 36])
        assert len(started) == 1
    else:  # one process per task: the tasks after the third find no worker at all
        assert job.results[:3] == [1, 4, 9]
        assert job.ok == 3 and job.failed == 3
        assert {error.type for error in job.errors} == {"WorkerStartFailed"}


def test_no_worker_at_all_fails_the_tasks_with_the_reason(tmp_path: Path, monkeypatch):
    path = tmp_path / "config.yaml"
    path.write_text(CONFIG.format(mode="pool"))
    refuse_after(monkeypatch, 0)
    report = runner.run(path, log_dir=tmp_path / "logs", start_method="fork")
    (job,) = report.jobs
    assert (report.exit_code, job.failed) == (1, 6)
    assert {error.message for error in job.errors} == {
        "cannot start a worker process: [Errno 24] Too many open files"}
