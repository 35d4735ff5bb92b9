"""Processes that tasks start end with the run (README, "When things go wrong").

A task in pool or process mode starts a process (``sleep``, a shell that ignores
SIGTERM, a ``multiprocessing.Process``) and hangs; then its timeout comes, the run is
interrupted, its worker is replaced, the job ends, or the runner is SIGKILLed. Each
case checks, by pid (psutil), that no process the task started is left within 5 s of
the runner's exit (10 s after a SIGKILL), and, where the task was stopped, that its
``finally`` ran: it got SIGTERM as a catchable signal before its group's SIGKILL.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from runner.executors import executor_for, modes
from tests.conftest import ROOT
from tests.helpers import wait_until

pytestmark = pytest.mark.timeout(90)

# The modes whose workers are this machine's multiprocessing processes (a dask worker's
# children are the cluster's business: README, "Distributed mode").
PROCESS_MODES = [mode for mode in modes() if executor_for(mode).uses_start_method]
START_METHODS = ["fork", "forkserver", "spawn"]
# Pool mode under every start method; process mode (the same machinery, one task per
# worker) under the default one, to keep the suite's time in bounds.
WHERE = [("pool", method) for method in START_METHODS] + [
    (mode, "fork") for mode in PROCESS_MODES if mode != "pool"]


def _config(tmp_path: Path, marks: Path, mode: str, function: str, how: str,
            tasks: int = 2, timeout: float | None = None) -> Path:
    path = tmp_path / "config.yaml"
    lines = ["jobs:", "  tree:", f"    function: tests.tree_tasks:{function}",
             f"    mode: {mode}", "    workers: 2", f"    args: [{marks}]",
             f"    map: {[how] * tasks}"]
    if timeout is not None:
        lines.append(f"    timeout: {timeout}")
    path.write_text("\n".join(lines) + "\n")
    return path


def _start(tmp_path: Path, mode: str, start_method: str, function: str, how: str = "popen",
           tasks: int = 2, timeout: float | None = None, *args: str) -> tuple[
               subprocess.Popen[str], Path]:
    marks = tmp_path / "marks"
    marks.mkdir()
    config = _config(tmp_path, marks, mode, function, how, tasks, timeout)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", str(config), "--json", "--log-dir",
         str(tmp_path / "logs"), "--start-method", start_method, *args],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    return proc, marks


def _pids(marks: Path, prefix: str) -> list[int]:
    return [int(path.name.rpartition("-")[2]) for path in marks.glob(f"{prefix}-*")]


def _alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def _gone_within(pids: list[int], seconds: float) -> float:
    """Wait until none of ``pids`` runs; how long that took."""
    began = time.monotonic()
    wait_until(lambda: not any(map(_alive, pids)), seconds,
               what=f"the processes tasks started ({pids}) ending")
    return time.monotonic() - began


def _wait_children(proc: subprocess.Popen[str], marks: Path, count: int) -> list[int]:
    def started() -> list[int]:
        assert proc.poll() is None, proc.communicate()
        children = _pids(marks, "child")
        return children if len(children) >= count and len(_pids(marks, "running")) >= count \
            else []
    return wait_until(started, 30, what=f"{count} tasks starting their processes")


def _finish(proc: subprocess.Popen[str]) -> tuple[int, dict, str]:
    stdout, stderr = proc.communicate(timeout=60)
    assert "Traceback" not in stderr, stderr
    return proc.returncode, json.loads(stdout), stderr


@pytest.mark.parametrize(("mode", "start_method"), WHERE)
def test_a_timeout_ends_what_the_task_started(tmp_path, mode, start_method):
    proc, marks = _start(tmp_path, mode, start_method, "start_then_hang", "popen", 2, 1.0)
    code, doc, _ = _finish(proc)
    assert code == 1
    assert [error["type"] for error in doc["jobs"][0]["errors"]] == ["TaskTimeout"] * 2
    children = _pids(marks, "child")
    assert len(children) == 2
    _gone_within(children, 5)
    assert sorted(_pids(marks, "finally")) == sorted(_pids(marks, "running")), \
        "a timed-out task's finally did not run"


@pytest.mark.parametrize("start_method", START_METHODS)
@pytest.mark.parametrize("how", ["popen", "mp", "deaf"])
def test_an_interrupt_ends_what_tasks_started(tmp_path, start_method, how):
    """``--grace 0``: the first SIGTERM stops the tasks; a process that ignores SIGTERM
    (``deaf``) is SIGKILLed with its worker's group once the kill grace is over."""
    proc, marks = _start(tmp_path, "pool", start_method, "start_then_hang", how, 2, None,
                         "--grace", "0")
    children = _wait_children(proc, marks, 2)
    proc.send_signal(signal.SIGTERM)
    code, doc, _ = _finish(proc)
    assert code == 143 and doc["status"] == "interrupted"
    _gone_within(children, 5)
    assert sorted(_pids(marks, "finally")) == sorted(_pids(marks, "running"))


@pytest.mark.parametrize(("mode", "start_method"), WHERE)
def test_the_runner_s_sigkill_ends_what_tasks_started(tmp_path, mode, start_method):
    """Nobody is left to stop the workers: each ends its own group (its task's finally
    runs first)."""
    proc, marks = _start(tmp_path, mode, start_method, "start_then_hang", "popen", 2)
    _sigkill_and_check(proc, marks, 2)


def _sigkill_and_check(proc: subprocess.Popen[str], marks: Path, tasks: int) -> None:
    """SIGKILL the runner once ``tasks`` tasks run; every process of theirs (workers and
    what the tasks started) must be gone within 10 s, each task's finally having run."""
    children = _wait_children(proc, marks, tasks)
    workers = _pids(marks, "running")
    proc.kill()
    proc.communicate(timeout=30)
    _gone_within(children + workers, 10)
    assert sorted(_pids(marks, "finally")) == sorted(workers)


@pytest.mark.parametrize(("mode", "start_method"), WHERE)
def test_what_a_finished_task_left_running_ends_with_its_worker(tmp_path, mode, start_method):
    """A task that returns and leaves a process running: in process mode its worker is
    replaced after each task, in pool mode the job ends; either way that process ends."""
    proc, marks = _start(tmp_path, mode, start_method, "start_and_return", "popen", 4)
    code, doc, _ = _finish(proc)
    assert code == 0 and doc["jobs"][0]["ok"] == 4
    children = _pids(marks, "child")
    assert sorted(children) == sorted(doc["jobs"][0]["results"])
    _gone_within(children, 5)


@pytest.mark.timeout(60)
def test_mprun_piped_into_cat_ends_when_mprun_ends(tmp_path):
    """The processes a task left holding the pipe are ended, so ``| cat`` sees its end."""
    marks = tmp_path / "marks"
    marks.mkdir()
    config = _config(tmp_path, marks, "pool", "start_and_return", "popen", 2)
    shell = (f"{sys.executable} -m runner {config} --log-dir {tmp_path / 'logs'} 2>&1 | cat")
    done = subprocess.run(["sh", "-c", shell], check=False, cwd=ROOT, capture_output=True,
                          text=True, timeout=40)
    assert done.returncode == 0, done.stdout
    assert "tree" in done.stdout and "Traceback" not in done.stdout


def test_a_process_in_a_new_session_outlives_the_run(tmp_path):
    """The documented way out: ``start_new_session=True`` leaves the worker's group."""
    proc, marks = _start(tmp_path, "pool", "forkserver", "start_and_return", "session", 1)
    code, _, _ = _finish(proc)
    assert code == 0
    (child,) = _pids(marks, "child")
    try:
        assert _alive(child), "a process started in a new session was ended"
    finally:
        psutil.Process(child).kill()


def test_a_dead_worker_s_group_is_sigkilled_while_the_job_goes_on(tmp_path):
    """A worker dies leaving a process that ignores SIGTERM: the group's SIGKILL comes
    after the kill grace, not at the job's end (another task still runs 20 s)."""
    marks = tmp_path / "marks"
    marks.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text("jobs:\n  tree:\n    function: tests.tree_tasks:crash_leaving_deaf_child\n"
                    f"    mode: pool\n    workers: 2\n    args: [{marks}]\n    map: [0, 20]\n")
    proc = subprocess.Popen([sys.executable, "-m", "runner", str(path), "--json", "--log-dir",
                             str(tmp_path / "logs"), "--grace", "0"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        (child,) = wait_until(lambda: _pids(marks, "child"), 30, what="the task's child")
        wait_until(lambda: not _alive(child), 10, what="the dead worker's group ending")
        assert proc.poll() is None, "the job ended before the group was: nothing to show"
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=30)


@pytest.mark.parametrize("start_method", ["fork", "forkserver"])
def test_many_orphaned_workers_end_together(tmp_path, start_method):
    """Under fork a worker started later holds the runner's end of an earlier one's
    sentinel pipe, so each would notice the runner's death only once the next had
    ended: 8 workers whose tasks take 1.5 s to clean up would take 12 s. They notice
    together, and all are gone within the 10 s the README promises."""
    marks = tmp_path / "marks"
    marks.mkdir()
    path = tmp_path / "config.yaml"
    path.write_text("jobs:\n  tree:\n    function: tests.tree_tasks:start_then_hang\n"
                    f"    mode: pool\n    workers: 8\n    args: [{marks}]\n"
                    f"    kwargs: {{cleanup: 1.5}}\n    map: {['popen'] * 8}\n")
    proc = subprocess.Popen([sys.executable, "-m", "runner", str(path), "--log-dir",
                             str(tmp_path / "logs"), "--start-method", start_method],
                            cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _sigkill_and_check(proc, marks, 8)


def test_sighup_to_a_worker_alone_ends_it_as_sigterm_does(tmp_path):
    """A forked worker no longer keeps the runner's SIGHUP handler (which wrote into the
    runner's self-pipe and set it spinning): the worker's task fails, the job goes on."""
    proc, marks = _start(tmp_path, "pool", "fork", "start_then_hang", "popen", 2, 5.0)
    _wait_children(proc, marks, 2)
    first, _ = sorted(_pids(marks, "running"))
    os.kill(first, signal.SIGHUP)
    code, doc, _ = _finish(proc)
    assert code == 1
    types = sorted(error["type"] for error in doc["jobs"][0]["errors"])
    assert types == ["TaskTimeout", "WorkerCrashed"], doc["jobs"][0]["errors"]
    assert first in _pids(marks, "finally"), "the SIGHUP'd task did not unwind"
