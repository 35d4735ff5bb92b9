"""SIGINT and SIGTERM: the first stops dispatch and lets running tasks finish within the
grace period; a second signal, or the end of the grace period, stops them.

Every case runs the CLI as a subprocess, signals it once the tasks are seen running
(each task leaves a file as it begins), and checks the exit code, the JSON report,
``summary.json``, ``results.jsonl`` and that no process of the run is left. No case
sleeps in the hope that something has happened: it waits, with a deadline, until it
has (a task's file, the reduce's file, a journal or log line, the runner's "starting
no more tasks" on stderr once it has taken a first signal).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

import runner
from runner.log import read_jsonl
from tests.conftest import ROOT
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(90)

CODES = {signal.SIGHUP: 129, signal.SIGINT: 130, signal.SIGTERM: 143}


class Interrupted:
    """One run of the CLI that the test signals while its tasks run."""

    def __init__(self, tmp_path: Path, config: str, *args: str,
                 env: dict[str, str] | None = None) -> None:
        self.logs = tmp_path / "logs"
        self.marks = tmp_path / "marks"
        self.marks.mkdir()
        path = tmp_path / "config.yaml"
        path.write_text(config.replace("MARKS", str(self.marks)))
        # stderr goes to a file, not a pipe, so that a test can read it while the run goes on.
        self.stderr_path = tmp_path / "stderr.txt"
        with self.stderr_path.open("w") as stderr:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "runner", str(path), "--json", "--log-dir",
                 str(self.logs), *args],
                cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True,
                env={**os.environ, **(env or {})})
        self.children: list[psutil.Process] = []

    def alive(self) -> bool:
        """Assert that the run has not ended (showing its output if it has)."""
        assert self.proc.poll() is None, (self.proc.communicate(), self.stderr())
        return True

    def wait_running(self, count: int, timeout: float = 30) -> None:
        wait_until(lambda: self.alive() and self.started >= count, timeout,
                   what=f"{count} tasks starting")
        self.children = psutil.Process(self.proc.pid).children(recursive=True)

    def wait_stopping(self, timeout: float = 30) -> None:
        """Wait until the runner has taken a first signal: it says so on stderr."""
        wait_until(lambda: self.alive() and "starting no more tasks" in self.stderr(), timeout,
                   what="the runner taking the first signal")

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def ends_within(self, seconds: float) -> bool:
        try:
            self.proc.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return False
        return True

    def signal(self, sig: int) -> float:
        self.proc.send_signal(sig)
        return time.monotonic()

    def finish(self, timeout: float = 45) -> tuple[int, dict[str, Any], str]:
        try:
            stdout, _ = self.proc.communicate(timeout=timeout)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
        stderr = self.stderr()
        _, alive = psutil.wait_procs(self.children, timeout=5)
        assert alive == [], f"left behind: {alive}"
        assert "Traceback" not in stderr, stderr
        doc = json.loads(stdout)
        summary = json.loads((self.logs / "latest" / "summary.json").read_text())
        assert summary == doc
        return self.proc.returncode, doc, stderr

    def journal(self) -> list[dict[str, Any]]:
        return list(read_jsonl(self.logs / "latest" / "results.jsonl"))

    @property
    def started(self) -> int:
        return len(list(self.marks.iterdir()))


NAPS = """
    jobs:
      naps:
        function: tests.tasks:nap
        mode: {mode}
        workers: 2
        args: [MARKS]
        map: {items}
      never:
        function: tests.tasks:square
        args: [1]
"""


@pytest.mark.parametrize(("mode", "sig"), [
    ("serial", signal.SIGINT), ("serial", signal.SIGTERM), ("thread", signal.SIGINT),
    ("process", signal.SIGTERM), ("pool", signal.SIGINT), ("pool", signal.SIGTERM)])
def test_running_tasks_finish_within_the_grace_period(tmp_path, mode, sig):
    """The first signal starts nothing new; the tasks already running finish and are kept."""
    run = Interrupted(tmp_path, NAPS.format(mode=mode, items=[1.0] * 8), "--grace", "20")
    running = 1 if mode == "serial" else 2
    run.wait_running(running)
    sent = run.signal(sig)
    code, doc, stderr = run.finish()
    took = time.monotonic() - sent
    assert code == CODES[sig]
    assert doc["status"] == "interrupted" and doc["exit_code"] == code
    assert doc["not_run"] == ["never"]
    job = doc["jobs"][0]
    assert job["status"] == "interrupted"
    assert run.started == running, "a task started after the signal"
    assert (job["ok"], job["failed"], job["not_run"]) == (running, 0, 8 - running)
    assert job["results"] == [1.0] * running + [None] * (8 - running)
    assert took < 10, "it waited for more than the running tasks"
    ok = [line for line in run.journal() if line["status"] == "ok"]
    assert sum(len(line.get("values", [None])) for line in ok) == running
    assert "starting no more tasks" in stderr


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_grace_period_under_every_start_method(tmp_path, mode, start_method):
    run = Interrupted(tmp_path, NAPS.format(mode=mode, items=[1.0] * 6), "--grace", "20",
                      "--start-method", start_method)
    run.wait_running(2)
    run.signal(signal.SIGINT)
    code, doc, _ = run.finish()
    assert code == 130
    assert doc["jobs"][0]["results"] == [1.0, 1.0, None, None, None, None]


@pytest.mark.parametrize("mode", ["serial", "thread", "process", "pool"])
def test_end_of_grace_period_stops_running_tasks(tmp_path, mode):
    run = Interrupted(tmp_path, NAPS.format(mode=mode, items=[60] * 4), "--grace", "1")
    run.wait_running(1 if mode == "serial" else 2)
    sent = run.signal(signal.SIGTERM)
    code, doc, _ = run.finish()
    assert 1 <= time.monotonic() - sent < 20
    assert code == 143
    job = doc["jobs"][0]
    assert job["status"] == "interrupted"
    assert job["ok"] == 0


@pytest.mark.parametrize("mode", ["serial", "thread", "process", "pool"])
def test_second_signal_stops_running_tasks_at_once(tmp_path, mode):
    run = Interrupted(tmp_path, NAPS.format(mode=mode, items=[60] * 4), "--grace", "60")
    run.wait_running(1 if mode == "serial" else 2)
    sent = run.signal(signal.SIGINT)
    run.wait_stopping()
    # Not synchronisation but the check itself: the runner, having taken the first
    # signal, is still waiting for its running tasks half a second later.
    assert not run.ends_within(0.5), "the first signal did not wait for the running tasks"
    run.signal(signal.SIGINT)
    code, doc, _ = run.finish()
    assert time.monotonic() - sent < 20
    assert code == 130
    assert doc["jobs"][0]["status"] == "interrupted"


@pytest.mark.parametrize("mode", ["serial", "pool"])
def test_sighup_is_handled_like_sigterm(tmp_path, mode):
    """A dropped ssh session: the running tasks get their grace period, the summary is
    written, exit 129 (not a death by SIGHUP)."""
    run = Interrupted(tmp_path, NAPS.format(mode=mode, items=[0.5] * 8), "--grace", "20")
    running = 1 if mode == "serial" else 2
    run.wait_running(running)
    run.signal(signal.SIGHUP)
    code, doc, stderr = run.finish()
    assert code == 129
    assert (doc["status"], doc["exit_code"]) == ("interrupted", 129)
    assert "mprun: SIGHUP: starting no more tasks" in stderr
    assert doc["jobs"][0]["ok"] == running and doc["not_run"] == ["never"]


def test_a_signal_before_the_run_begins_ends_mprun_at_once(tmp_path):
    """While configs load (a job module slow to import), nothing of a run exists yet:
    SIGTERM ends mprun at once, exit 143, one JSON document, no run folder."""
    marks = tmp_path / "marks"
    run = Interrupted(tmp_path, "jobs:\n  slow: {function: tests.slow_import:task, map: [1]}\n",
                      env={"SLOW_IMPORT_MARKS": str(marks)})
    run.wait_running(1)
    sent = run.signal(signal.SIGTERM)
    stdout, _ = run.proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert run.proc.returncode == 143
    assert "mprun: SIGTERM: stopped before any run began" in run.stderr()
    assert "Traceback" not in run.stderr()
    assert json.loads(stdout)["status"] == "not_run"
    assert not (run.logs / "latest").exists()


@pytest.mark.parametrize("mode", ["serial", "pool"])
def test_grace_zero_stops_at_once(tmp_path, mode):
    run = Interrupted(tmp_path, NAPS.format(mode=mode, items=[60] * 4), "--grace", "0")
    run.wait_running(1 if mode == "serial" else 2)
    sent = run.signal(signal.SIGINT)
    code, doc, stderr = run.finish()
    assert time.monotonic() - sent < 15
    assert code == 130
    assert doc["jobs"][0]["ok"] == 0
    assert "starting no more tasks" not in stderr


@pytest.mark.parametrize("mode", ["serial", "thread", "pool"])
def test_a_chunk_of_many_items_stops_after_its_current_item(tmp_path, mode):
    """With one chunk holding every item, a stop still ends it after the running item."""
    config = NAPS.format(mode=mode, items=[0.4] * 40).replace(
        "map:", "chunksize: 40\n        map:")
    run = Interrupted(tmp_path, config, "--grace", "20")
    run.wait_running(1)
    run.signal(signal.SIGINT)
    code, doc, _ = run.finish()
    assert code == 130
    job = doc["jobs"][0]
    started = run.started
    assert 1 <= started < 40
    assert job["ok"] == started, "every item that started finished, and no other"
    assert job["results"][:started] == [0.4] * started
    assert job["results"][started:] == [None] * (40 - started)
    assert job["not_run"] == 40 - started


def test_a_worker_signalled_alone_loses_no_task(tmp_path):
    """SIGINT sent to one worker (not the runner) cuts its chunk short; the rest of the
    chunk is run by another worker and the job succeeds."""
    config = """
        jobs:
          naps:
            function: tests.tasks:nap
            mode: pool
            workers: 1
            chunksize: 10
            args: [MARKS]
            map: [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]
    """
    run = Interrupted(tmp_path, config)
    run.wait_running(1)
    (mark,) = run.marks.iterdir()  # named after the worker's pid
    worker = psutil.Process(int(mark.name.split("-")[0]))
    assert worker in run.children
    worker.send_signal(signal.SIGINT)
    code, doc, _ = run.finish()
    assert code == 0
    job = doc["jobs"][0]
    assert (job["ok"], job["failed"], job["not_run"]) == (10, 0, 0)
    assert job["results"] == [0.2] * 10
    assert run.started == 10, "an item ran twice"
    ok = [line for line in run.journal() if line["status"] == "ok"]
    assert len(ok) == 2, "the chunk was not cut short"
    assert len(ok[0].get("values", [None])) < 10


def test_retry_delay_is_cut_short_by_a_signal(tmp_path):
    """A job waiting out its retry_delay stops at the first signal, without retrying."""
    config = """
        jobs:
          flaky:
            function: tests.tasks:always_fail
            mode: serial
            retries: 1
            retry_delay: 60
    """
    path = tmp_path / "config.yaml"
    path.write_text(config)
    logs = tmp_path / "logs"
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", str(path), "--json", "--log-dir", str(logs)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    journal = logs / "latest" / "results.jsonl"
    runner_log = logs / "latest" / "runner.jsonl"

    def waiting_out_the_delay() -> bool:
        # The failed attempt is journaled, and the job logged that it waits to retry.
        assert proc.poll() is None, proc.communicate()
        return (journal.exists() and bool(journal.read_text()) and runner_log.exists()
                and "retrying failed tasks" in runner_log.read_text())

    wait_until(waiting_out_the_delay, what="the job waiting out its retry delay")
    sent = time.monotonic()
    proc.send_signal(signal.SIGTERM)
    stdout, _ = proc.communicate(timeout=30)
    assert time.monotonic() - sent < 10
    assert proc.returncode == 143
    doc = json.loads(stdout)
    assert doc["jobs"][0]["status"] == "interrupted"
    assert doc["jobs"][0]["errors"][0]["attempts"] == 1


def test_a_huge_grace_period_is_fine(tmp_path):
    run = Interrupted(tmp_path, NAPS.format(mode="serial", items=[0.5] * 4), "--grace", "1e12")
    run.wait_running(1)
    run.signal(signal.SIGINT)
    code, doc, _ = run.finish()
    assert code == 130
    assert doc["jobs"][0]["ok"] == 1


def test_the_run_leaves_sigalrm_and_its_timer_alone(tmp_path):
    """The grace period is not an itimer: a caller's SIGALRM timer (pytest-timeout's,
    say) stays armed through a run, and its handler in place."""
    config = tmp_path / "config.yaml"
    config.write_text("jobs:\n  one:\n    function: tests.tasks:square\n    mode: serial\n"
                      "    args: [3]\n")
    def handler(_signum: int, _frame: object) -> None:
        raise AssertionError("the test's own 30 s alarm went off")

    previous = signal.signal(signal.SIGALRM, handler)
    # As the test process has it: default_int_handler, or SIG_IGN when it was started in
    # the background by a shell without job control.
    sigint = signal.getsignal(signal.SIGINT)
    try:
        signal.setitimer(signal.ITIMER_REAL, 30)
        report = runner.run(config, log_dir=tmp_path / "logs")
        assert report.jobs[0].results == [9]
        remaining, _ = signal.getitimer(signal.ITIMER_REAL)
        assert 0 < remaining <= 30
        assert signal.getsignal(signal.SIGALRM) is handler
        assert signal.getsignal(signal.SIGINT) is sigint
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


SLOW_REDUCE = """
    jobs:
      naps:
        function: tests.tasks:nap
        mode: pool
        workers: 2
        args: [MARKS]
        map: [0.1, 0.1]
        reduce: tests.tasks:slow_sum
      never:
        function: tests.tasks:square
        args: [1]
"""


def in_slow_reduce(tmp_path: Path) -> Interrupted:
    """A run whose two tasks are done (journaled) and whose 2-second reduce has begun
    (tests.tasks:slow_sum leaves the file $MPRUN_TEST_REDUCE_MARK as it starts)."""
    reducing = tmp_path / "reducing"
    run = Interrupted(tmp_path, SLOW_REDUCE, "--grace", "20",
                      env={"MPRUN_TEST_REDUCE_MARK": str(reducing)})
    run.wait_running(2)
    wait_until(lambda: run.alive() and reducing.exists(), what="the reduce starting")
    assert len(run.journal()) >= 2, "the reduce began before both tasks were journaled"
    return run


def test_a_signal_after_the_last_task_still_gives_a_whole_report(tmp_path):
    """SIGINT twice while a slow reduce runs (after every task ended): the job keeps its
    report and results; the run says interrupted."""
    run = in_slow_reduce(tmp_path)
    run.signal(signal.SIGINT)
    run.wait_stopping()
    run.signal(signal.SIGINT)
    code, doc, _ = run.finish()
    assert code == 130
    assert doc["status"] == "interrupted" and doc["not_run"] == ["never"]
    job = doc["jobs"][0]
    assert (job["ok"], job["not_run"]) == (2, 0)
    assert job["results"] == [0.1, 0.1]


def test_a_job_whose_tasks_all_ran_is_whole_though_the_run_is_interrupted(tmp_path):
    """One signal during the reduce (every task done): the reduce finishes within the
    grace period, the job is ok with its reduced value, later jobs do not run, and the
    run is interrupted."""
    run = in_slow_reduce(tmp_path)
    run.signal(signal.SIGTERM)
    code, doc, _ = run.finish()
    assert code == 143
    assert doc["status"] == "interrupted" and doc["not_run"] == ["never"]
    (job,) = doc["jobs"]
    assert (job["status"], job["ok"], job["not_run"], job["reduced"]) == ("ok", 2, 0, 0.2)


def test_a_signal_while_a_worker_starts_leaves_no_worker_behind(tmp_path, monkeypatch,
                                                                 start_method):
    """A SIGINT that lands while a worker is being started (held back until it is
    registered) with --grace 0: the run ends interrupted and that worker is stopped."""
    import multiprocessing
    from multiprocessing.process import BaseProcess

    config = tmp_path / "config.yaml"
    config.write_text("jobs:\n  naps:\n    function: tests.tasks:sleep\n    mode: pool\n"
                      "    workers: 2\n    chunksize: 1\n    map: [5, 5, 5]\n")
    real_start = BaseProcess.start
    starts: list[str] = []

    def start(self: BaseProcess) -> None:
        starts.append(self.name)
        if self.name == "mprun-worker-1":
            os.kill(os.getpid(), signal.SIGINT)
        real_start(self)

    monkeypatch.setattr(BaseProcess, "start", start)
    report = runner.run(config, log_dir=tmp_path / "logs", start_method=start_method,
                        grace=0)
    assert report.status == "interrupted" and report.exit_code == 130
    assert "mprun-worker-1" in starts
    left = [p.name for p in multiprocessing.active_children() if p.name.startswith("mprun-")]
    assert left == []

