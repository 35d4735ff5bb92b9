"""Logs and results on disk: run folders, JSON-lines logs per process, the journal."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import read_strict

pytestmark = pytest.mark.timeout(90)

REQUIRED = {"timestamp", "level", "event", "run_id", "pid", "process"}


def latest(tmp_path: Path) -> Path:
    return tmp_path / "logs" / "latest"


def test_one_log_file_per_process_every_line_tagged(run_cli, write_config, tmp_path,
                                                    start_method):
    """runner.jsonl plus worker-PID.jsonl per worker; each line carries the required keys."""
    path = write_config("""\
        jobs:
          logged:
            function: tests.tasks:log_something
            mode: pool
            workers: 2
            map: [10, 11, 12, 13]
            chunksize: 1
          failing:
            function: tests.tasks:always_fail
            mode: process
    """)
    result = run_cli(str(path), "--json", "--start-method", start_method)
    assert result.code == 1, result
    doc = result.json()
    run_dir = latest(tmp_path)
    assert run_dir.resolve() == Path(doc["log_dir"]).resolve()
    assert run_dir.resolve().name == doc["run_id"]
    files = sorted(p.name for p in run_dir.iterdir())
    workers = [name for name in files if name.startswith("worker-")]
    assert {"runner.jsonl", "results.jsonl", "summary.json"} <= set(files)
    assert 2 <= len(workers) <= 3  # two pool workers, one process-mode process
    lines = []
    for name in ["runner.jsonl", *workers]:
        for line in read_strict(run_dir / name):
            assert set(line) >= REQUIRED, (name, line)
            assert line["run_id"] == doc["run_id"]
            assert line["timestamp"].endswith("Z") or line["timestamp"].endswith("+00:00")
            if name.startswith("worker-"):
                assert line["process"] == "worker"
                assert name == f"worker-{line['pid']}.jsonl"
            else:
                assert line["process"] == "runner"
            lines.append(line)
    hellos = [line for line in lines if line["event"] == "hello from task"]
    assert sorted((h["job"], h["task"], h["x"]) for h in hellos) == [
        ("logged", 0, 10), ("logged", 1, 11), ("logged", 2, 12), ("logged", 3, 13)]
    failure = next(line for line in lines if line["event"] == "task failed")
    assert failure["job"] == "failing"
    assert failure["task"] == 0
    assert failure["level"] == "error"
    assert "RuntimeError: this task always fails" in failure["exception"]
    assert "Traceback" in failure["exception"]


def test_thread_mode_logs_to_the_runner_file(run_cli, write_config, tmp_path):
    path = write_config("""\
        jobs:
          logged: {function: "tests.tasks:log_something", mode: thread, workers: 2, map: [1, 2]}
    """)
    assert run_cli(str(path)).code == 0
    run_dir = latest(tmp_path)
    assert not list(run_dir.glob("worker-*.jsonl"))
    hellos = [line for line in read_strict(run_dir / "runner.jsonl")
              if line["event"] == "hello from task"]
    assert sorted(h["task"] for h in hellos) == [0, 1]


def test_no_per_task_lines_at_default_level(run_cli, write_config, tmp_path):
    """A successful task costs no log line; a run of 1,000 tasks logs a handful of lines."""
    path = write_config("""\
        jobs:
          many: {function: "tests.tasks:square", mode: pool, workers: 2, map: {range: 1000}}
    """)
    assert run_cli(str(path)).code == 0
    total = sum(len(read_strict(p)) for p in latest(tmp_path).glob("*.jsonl")
                if p.name != "results.jsonl")
    assert total < 20


def test_summary_json_equals_json_output(run_cli, tmp_path):
    result = run_cli("configs/shared.yaml", "--json")
    assert result.code == 0
    summary = json.loads((latest(tmp_path) / "summary.json").read_text())
    assert summary == result.json()


def test_latest_points_at_newest_run(run_cli, tmp_path):
    first = run_cli("configs/process.yaml", "--json").json()["run_id"]
    second = run_cli("configs/process.yaml", "--json").json()["run_id"]
    assert first != second
    assert os.readlink(tmp_path / "logs" / "latest") == second
    assert (tmp_path / "logs" / first / "summary.json").exists()


def test_journal_lines_per_task_and_per_chunk(run_cli, write_config, tmp_path):
    """Tasks get a line each; a map chunk's successes share one; failures stand alone."""
    path = write_config("""\
        jobs:
          chunked:
            function: tests.tasks:fail_on
            mode: pool
            workers: 1
            map: [1, 2, 3, 4, 5, 6]
            chunksize: 6
          tasks:
            function: tests.tasks:add
            mode: serial
            tasks:
              - args: [1, 2]
              - args: [3, 4]
    """)
    assert run_cli(str(path)).code == 1
    lines = read_strict(latest(tmp_path) / "results.jsonl")
    chunked = [line for line in lines if line["job"] == "chunked"]
    assert [(line.get("first"), line.get("task"), line["status"]) for line in chunked] == [
        (0, None, "ok"), (None, 2, "failed"), (3, None, "ok")]
    assert chunked[0]["values"] == [1, 2]
    assert chunked[2]["values"] == [4, 5, 6]
    assert chunked[1]["error"] == {"type": "ValueError", "message": "bad item 3"}
    assert chunked[1]["attempt"] == 1
    assert {line["pid"] for line in chunked} != {os.getpid()}
    tasks = [line for line in lines if line["job"] == "tasks"]
    assert [(line["task"], line["value"], line["status"]) for line in tasks] == [
        (0, 3, "ok"), (1, 7, "ok")]
    assert all({"seconds", "attempt", "pid"} <= set(line) for line in tasks)


def test_compare_journal_lines_carry_mode(run_cli, write_config, tmp_path):
    path = write_config("""\
        jobs:
          cmp: {function: "tests.tasks:square", compare: [serial, pool], workers: 2, args: [3]}
    """)
    assert run_cli(str(path)).code == 0
    lines = read_strict(latest(tmp_path) / "results.jsonl")
    assert [(line["mode"], line["value"]) for line in lines] == [("serial", 9), ("pool", 9)]


def test_results_that_json_cannot_hold_appear_as_repr(run_cli, write_config, tmp_path):
    path = write_config("""\
        jobs:
          odd: {function: "builtins:frozenset", mode: serial, args: [[1]]}
          big: {function: "builtins:pow", mode: serial, args: [10, 30]}
    """)
    result = run_cli(str(path), "--json")
    assert result.code == 0, result
    jobs = result.json()["jobs"]
    assert jobs[0]["results"] == ["frozenset({1})"]
    assert jobs[1]["results"] == [10**30]
    lines = read_strict(latest(tmp_path) / "results.jsonl")
    assert [line["value"] for line in lines] == ["frozenset({1})", 10**30]


def test_journal_keeps_finished_results_when_runner_is_killed(write_config, tmp_path):
    """results.jsonl is written as tasks finish: SIGKILL the runner, the early results stay."""
    path = write_config("""\
        jobs:
          slow:
            function: tests.tasks:sleep
            mode: pool
            workers: 2
            map: [0.01, 0.02, 60, 60]
            chunksize: 1
    """)
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", str(path), "--quiet", "--log-dir", str(tmp_path / "logs")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "logs" / "latest" / "results.jsonl"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if journal.exists() and len(journal.read_text().splitlines()) >= 2:
                break
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    lines = read_strict(journal)
    assert sorted((line["task"], line["value"]) for line in lines) == [(0, 0.01), (1, 0.02)]
    # Its workers notice the runner is gone and exit instead of sleeping on as orphans.
    workers = [int(p.name[len("worker-"):-len(".jsonl")])
               for p in journal.parent.glob("worker-*.jsonl")]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.1)
    assert not any(_alive(pid) for pid in workers)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
