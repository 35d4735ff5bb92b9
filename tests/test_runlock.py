"""Overlapping runs of one config: exit 75 naming the running pid and run id, or --wait."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import runner
from runner import runlock
from runner.errors import RunLocked
from tests.conftest import ROOT

SLEEPER = """\
    jobs:
      slow: {function: "tests.tasks:sleep", mode: %s, args: [%s]}
"""
QUICK = """\
    jobs:
      quick: {function: "tests.tasks:square", mode: serial, args: [3]}
"""


def sleeper(mode: str = "serial", seconds: float = 30) -> str:
    return SLEEPER % (mode, seconds)


# -- the lock itself, in this process --------------------------------------------


def test_one_lock_per_config_file_whatever_the_path_spelling(tmp_path, monkeypatch):
    (tmp_path / "a.yaml").write_text("")
    monkeypatch.chdir(tmp_path)
    logs = tmp_path / "logs"
    same = runlock.lock_path(logs, "a.yaml")
    assert same == runlock.lock_path(logs, tmp_path / "a.yaml")
    assert same == runlock.lock_path(logs, "./sub/../a.yaml")
    assert same.parent == logs / ".locks"
    assert same != runlock.lock_path(logs, "b.yaml")


def test_a_held_lock_raises_run_locked_naming_its_holder(tmp_path):
    """Two acquisitions are two open files: the second is refused, even in one process."""
    config = tmp_path / "c.yaml"
    lock = runlock.acquire(tmp_path, config)
    try:
        lock.describe("RUN-1", str(config))
        with pytest.raises(RunLocked) as caught:
            runlock.acquire(tmp_path, config)
        exc = caught.value
        assert (exc.pid, exc.run_id) == (os.getpid(), "RUN-1")
        assert f"pid {os.getpid()}" in str(exc)
        assert "run RUN-1" in str(exc)
        assert runlock.holder(lock.path)["run_id"] == "RUN-1"
        other = runlock.acquire(tmp_path, tmp_path / "other.yaml")  # another config: free
        other.release()
    finally:
        lock.release()
    assert runlock.holder(lock.path) == {}, "a released lock's file is emptied"
    runlock.acquire(tmp_path, config).release()


def test_wait_retries_until_its_deadline_then_raises(tmp_path):
    config = tmp_path / "c.yaml"
    lock = runlock.acquire(tmp_path, config)
    lock.describe("RUN-1", str(config))
    told: list[dict] = []
    try:
        begun = time.monotonic()
        with pytest.raises(RunLocked) as caught:
            runlock.acquire(tmp_path, config, wait=0.4, on_wait=told.append)
        assert time.monotonic() - begun >= 0.4
        assert caught.value.waited == 0.4
        assert "after waiting 0.4s" in str(caught.value)
        assert [info["run_id"] for info in told] == ["RUN-1"], "told once, before waiting"
    finally:
        lock.release()


def test_a_forked_child_does_not_inherit_the_lock(tmp_path):
    """Fork-mode workers close their copy, so a worker outliving its runner holds nothing."""
    lock = runlock.acquire(tmp_path, tmp_path / "c.yaml")
    try:
        pid = os.fork()
        if pid == 0:  # child: the descriptor must be closed
            try:
                os.fstat(lock.fd)  # type: ignore[arg-type]
                os._exit(1)
            except OSError:
                os._exit(0)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0
    finally:
        lock.release()


def test_run_raises_run_locked_before_making_a_run_folder(write_config, tmp_path):
    path = write_config(QUICK)
    logs = tmp_path / "logs"
    lock = runlock.acquire(logs, path)
    try:
        lock.describe("RUN-1", str(path))
        with pytest.raises(RunLocked):
            runner.run(path, log_dir=logs)
        assert sorted(p.name for p in logs.iterdir()) == [".locks"]
        # A run without a log directory takes no lock.
        assert runner.run(path, log_dir=None).jobs[0].results == [9]
    finally:
        lock.release()
    report = runner.run(path, log_dir=logs)
    assert report.status == "ok"
    assert runlock.holder(lock.path) == {}, "released after the run"


# -- the CLI, as cron runs it --------------------------------------------------


def start(path: Path, logs: Path, *extra: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "runner", str(path), "--json", "--log-dir", str(logs), *extra],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        stdin=subprocess.DEVNULL)


def wait_until_running(proc: subprocess.Popen[str], logs: Path) -> str:
    """Wait until ``proc``'s first job has started; return its run id."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()
        for run_log in logs.glob("*/runner.jsonl"):
            lines = runner.log.read_jsonl(run_log)  # a live file: its last line may be torn
            if any(line["event"] == "job started" and line["pid"] == proc.pid
                   for line in lines):
                return run_log.resolve().parent.name
        time.sleep(0.05)
    raise AssertionError("the first run did not start")


def stop(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        proc.kill()
    proc.communicate(timeout=10)


@pytest.mark.timeout(60)
def test_second_run_of_a_running_config_exits_75_naming_pid_and_run_id(run_cli, write_config,
                                                                        tmp_path):
    path = write_config(sleeper(seconds=30))
    logs = tmp_path / "logs"
    first = start(path, logs)
    try:
        run_id = wait_until_running(first, logs)
        begun = time.monotonic()
        second = run_cli(str(path), "--json")
        assert time.monotonic() - begun < 20, "refused at once, not after the first run"
        assert second.code == 75, second
        # --json: stdout is one document, saying the config was locked (#10 point 9).
        assert (second.json()["status"], second.json()["exit_code"]) == ("locked", 75)
        assert f"pid {first.pid}" in second.stderr
        assert f"run {run_id}" in second.stderr
        assert "--wait" in second.stderr
        assert "Traceback" not in second.stderr
        assert first.poll() is None, "the first run goes on"
        assert sorted(p.name for p in logs.iterdir() if not p.is_symlink()) == [
            ".locks", run_id], "the refused run made no run folder"
    finally:
        stop(first)


@pytest.mark.timeout(60)
def test_wait_runs_the_second_after_the_first_finishes(run_cli, write_config, tmp_path):
    path = write_config(sleeper(seconds=2))
    logs = tmp_path / "logs"
    first = start(path, logs)
    try:
        first_id = wait_until_running(first, logs)
        second = run_cli(str(path), "--json", "--wait", "30")
        assert second.code == 0, second
        assert "waiting up to 30s" in second.stderr
        out, _ = first.communicate(timeout=30)
        assert first.returncode == 0
    finally:
        stop(first)
    assert json.loads(out)["run_id"] == first_id
    second_id = second.json()["run_id"]

    def event_time(run_id: str, event: str) -> str:
        lines = runner.log.read_jsonl(logs / run_id / "runner.jsonl")
        return next(line["timestamp"] for line in lines if line["event"] == event)

    assert event_time(second_id, "run started") >= event_time(first_id, "run finished")
    assert second.json()["seconds"] < 5, "the wait is not counted in the run's seconds"


@pytest.mark.timeout(60)
def test_wait_that_runs_out_exits_75(run_cli, write_config, tmp_path):
    path = write_config(sleeper(seconds=30))
    logs = tmp_path / "logs"
    first = start(path, logs)
    try:
        run_id = wait_until_running(first, logs)
        begun = time.monotonic()
        second = run_cli(str(path), "--wait", "0.5")
        assert time.monotonic() - begun >= 0.5
        assert second.code == 75, second
        assert f"pid {first.pid}" in second.stderr
        assert f"run {run_id}" in second.stderr
        assert "still running after waiting 0.5s" in second.stderr
    finally:
        stop(first)


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("mode", "method"), [("serial", "forkserver"), ("process", "fork"),
                                              ("pool", "forkserver")])
def test_a_sigkilled_run_does_not_block_the_next(run_cli, write_config, tmp_path, mode, method):
    """The kernel drops a dead process's flock: the next run starts at once, no --wait."""
    path = write_config(sleeper(mode=mode, seconds=60))
    logs = tmp_path / "logs"
    first = start(path, logs, "--start-method", method)
    try:
        wait_until_running(first, logs)
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        stop(first)
    assert runlock.holder(runlock.lock_path(logs, path))["pid"] == first.pid, \
        "the killed run's details are still in the file"
    path.write_text(textwrap.dedent(QUICK))  # the same file, now quick
    second = run_cli(str(path), "--json", "--start-method", method)
    assert second.code == 0, second


@pytest.mark.timeout(60)
def test_different_configs_run_side_by_side(run_cli, write_config, tmp_path):
    long = write_config(sleeper(seconds=30), name="long.yaml")
    quick = write_config(QUICK, name="quick.yaml")
    logs = tmp_path / "logs"
    first = start(long, logs)
    try:
        wait_until_running(first, logs)
        second = run_cli(str(quick), "--json")
        assert second.code == 0, second
        assert second.json()["jobs"][0]["results"] == [9]
        assert first.poll() is None
    finally:
        stop(first)


def test_wait_must_be_a_number_of_seconds(run_cli):
    result = run_cli("configs/pool.yaml", "--wait", "soon")
    assert result.code == 2
    assert "--wait: expected a number of seconds >= 0, got 'soon'" in result.stderr
    assert run_cli("configs/pool.yaml", "--wait", "-1").code == 2
