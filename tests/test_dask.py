"""Dask mode on a real embedded LocalCluster: flags, bad input, primitives, failures,
output and logs. (A real scheduler and workers started apart: test_dask_remote.py; the
executor contract suite runs in dask mode too: test_executors.py.)"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT, CLIResult
from tests.helpers import read_strict

pytestmark = pytest.mark.timeout(120)

RunCLI = Callable[..., CLIResult]
WriteConfig = Callable[..., Path]


def run_dir(tmp_path: Path) -> Path:
    return (tmp_path / "logs" / "latest").resolve()


def journal_lines(tmp_path: Path) -> list[dict[str, Any]]:
    return read_strict(run_dir(tmp_path) / "results.jsonl")


def jobs_of(result: CLIResult) -> dict[str, dict[str, Any]]:
    return {j["name"]: j for j in result.json()["jobs"]}


def no_run_made(tmp_path: Path) -> bool:
    logs = tmp_path / "logs"
    return not logs.exists() or not any(p for p in logs.iterdir() if p.name != ".mprun")


# -- bad input: refused before anything runs ------------------------------------

BAD_INPUTS = [
    pytest.param("""\
        shared:
          gate: {type: barrier, parties: 2}
        jobs:
          a:
            function: tests.dask_tasks:square
            mode: dask
            map: [1]
            args: [!ref gate]
        """, ":2:9: shared.gate: a barrier has no dask form, and job a uses it in mode dask; "
             "use an event or a queue", id="barrier"),
    pytest.param("""\
        shared:
          sem: {type: semaphore, init: 0}
        jobs:
          a:
            function: tests.dask_tasks:square
            mode: dask
            map: [1]
            args: [!ref sem]
        """, ":2:8: shared.sem: a semaphore with init 0 cannot be used in dask mode",
        id="semaphore-init-0"),
    pytest.param("""\
        shared:
          big: {type: array, typecode: d, size: 200000}
        jobs:
          a:
            function: tests.dask_tasks:square
            mode: dask
            map: [1]
            args: [!ref big]
        """, ":2:8: shared.big: an array of 1600000 bytes is over dask mode's 1 MiB",
        id="array-over-1MiB"),
    pytest.param("""\
        shared:
          total: {type: value, typecode: i}
        jobs:
          a:
            function: tests.dask_tasks:square
            mode: dask
            map: [1]
            args: [!ref total]
          b:
            function: tests.dask_tasks:square
            mode: pool
            map: [1]
            args: [!ref total]
        """, ":2:10: shared.total: used by job a in mode dask and by job b in mode pool",
        id="shared-by-dask-and-pool"),
    pytest.param("""\
        dask:
          workers: 2
          schedular: tcp://127.0.0.1:1
        jobs:
          a:
            function: tests.dask_tasks:square
            mode: dask
            map: [1]
        """, ":3:3: dask.schedular: ", id="unknown-dask-key"),
    pytest.param("""\
        dask:
          dashboard: true
        jobs:
          a:
            function: tests.dask_tasks:square
            mode: dask
            map: [1]
        """, ":2:14: dask.dashboard: dashboard: true needs bokeh", id="dashboard-without-bokeh"),
]


# validate checks every case; run (which checks the same way, before anything starts)
# two of them, to keep the suite short.
CASES = [pytest.param("validate", *case.values, id=f"validate-{case.id}") for case in BAD_INPUTS
         ] + [pytest.param("run", *case.values, id=f"run-{case.id}") for case in BAD_INPUTS
              if case.id in ("barrier", "shared-by-dask-and-pool")]


@pytest.mark.parametrize(("command", "text", "says"), CASES)
def test_bad_dask_input_is_exit_2_located_and_nothing_runs(
        run_cli: RunCLI, write_config: WriteConfig, tmp_path: Path, text: str, says: str,
        command: str) -> None:
    """A barrier, a semaphore at 0 or an array over 1 MiB used by a dask job, a primitive
    shared by a dask and a pool job, an unknown dask: key, and a dashboard without bokeh:
    exit 2, FILE:LINE:COL and the field, no traceback, no run folder."""
    path = write_config(text)
    result = run_cli(command, str(path))
    assert result.code == 2, result
    assert f"{path}{says}" in result.stderr, result
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert no_run_made(tmp_path)


def test_dask_flag_moves_process_and_pool_jobs_and_names_itself_in_the_error(
        run_cli: RunCLI, write_config: WriteConfig, tmp_path: Path) -> None:
    """``--dask`` runs process and pool jobs in mode dask: a barrier a pool job uses is
    fine without it and refused with it, the message saying that --dask did it; a
    thread job's barrier is never refused (it stays a thread job)."""
    path = write_config("""\
        shared:
          gate: {type: barrier, parties: 1}
          other: {type: barrier, parties: 1}
        jobs:
          a:
            function: tests.dask_tasks:square
            mode: pool
            map: [1]
            args: [!ref gate]
          b:
            function: tests.dask_tasks:square
            mode: thread
            map: [1]
            args: [!ref other]
        """)
    assert run_cli("validate", str(path)).code == 0
    for flags in (["--dask"], ["--dask-scheduler", "tcp://127.0.0.1:1"]):
        result = run_cli("validate", str(path), *flags)
        assert result.code == 2, result
        assert f"{path}:2:9: shared.gate: a barrier has no dask form, and job a uses it in " \
               "--dask runs it in mode dask" in result.stderr, result
        assert "shared.other" not in result.stderr


# -- running: output, logs, primitives ------------------------------------------

RUN_CONFIG = """\
shared:
  counter: {type: value, typecode: i}
  lock: lock
  total: {type: value, typecode: q}
  value: {type: value, typecode: i, init: 10}
  floats: {type: value, typecode: d}
  arr: {type: array, typecode: i, size: 4}
  rl: rlock
  rl2: rlock
  sem: {type: semaphore, init: 1}
  ev: event
  q: queue
  small: {type: queue, maxsize: 1}
jobs:
  squares:
    function: tests.dask_tasks:square
    mode: dask
    workers: 2
    map: {range: 40}
    chunksize: 7
  repeat:                   # identical calls stay separate: three calls, counter 3
    function: tests.dask_tasks:count_calls
    mode: dask
    args: [!ref counter, !ref lock]
    repeat: 3
  prims:
    function: tests.dask_tasks:primitives
    mode: dask
    args: [!ref value, !ref floats, !ref arr, !ref lock, !ref rl, !ref sem, !ref ev, !ref q,
           !ref small]
  rlock_threads:
    function: tests.dask_tasks:hold_rlock_in_threads
    mode: dask
    args: [!ref rl2]
  in_runner:                # serial and thread jobs use the scheduler's primitives too
    function: tests.dask_tasks:add_under_lock
    mode: thread
    workers: 2
    map: [1, 2, 3]
    args: [!ref total, !ref lock]
  in_dask:
    function: tests.dask_tasks:add_under_lock
    mode: dask
    map: [10, 20]
    args: [!ref total, !ref lock]
  serial_reads:
    function: tests.dask_tasks:count_calls
    mode: serial
    args: [!ref counter, !ref lock]
  prints:
    function: tests.dask_tasks:shout
    mode: dask
    map: [1, 2]
"""


@pytest.fixture(scope="module")
def dask_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CLIResult]:
    """RUN_CONFIG run once through the CLI with --json, on an embedded cluster."""
    tmp_path = tmp_path_factory.mktemp("dask-run")
    path = tmp_path / "config.yaml"
    path.write_text(RUN_CONFIG)
    proc = subprocess.run(
        [sys.executable, "-m", "runner", str(path), "--json", "--log-dir",
         str(tmp_path / "logs")], capture_output=True, text=True, cwd=ROOT, timeout=110,
        check=False, stdin=subprocess.DEVNULL)
    return tmp_path, CLIResult(proc)


def test_a_dask_run_gives_results_and_says_which_cluster(
        dask_run: tuple[Path, CLIResult]) -> None:
    """Results in task order; each job's mode is dask; the summary's "dask" entry names
    the embedded cluster (on 127.0.0.1) and its size: the largest dask job's workers."""
    _tmp, result = dask_run
    assert result.code == 0, result
    doc = result.json()
    jobs = jobs_of(result)
    assert jobs["squares"]["results"] == [x * x for x in range(40)]
    assert {jobs[name]["mode"] for name in ("squares", "repeat", "prims", "in_dask")} == \
        {"dask"}
    dask = doc["dask"]
    assert dask["embedded"] is True
    assert dask["scheduler"].startswith("tcp://127.0.0.1:")
    assert (dask["workers"], dask["threads"]) == (2, 2)


def test_identical_calls_stay_separate(dask_run: tuple[Path, CLIResult]) -> None:
    """``repeat`` is three calls, never one result shared by three keys."""
    _tmp, result = dask_run
    assert sorted(jobs_of(result)["repeat"]["results"]) == [1, 2, 3]


def test_every_primitive_keeps_its_multiprocessing_meaning(
        dask_run: tuple[Path, CLIResult]) -> None:
    """value (atomic reads and writes, a lock, ctypes coercion), array (slices, its
    reentrant lock), lock, rlock, semaphore, event, queue (lists stay lists; Empty,
    Full, nowait, qsize, empty, full), and the summary reads each."""
    _tmp, result = dask_run
    (seen,) = jobs_of(result)["prims"]["results"]
    assert seen == {
        "value": 15, "float_into_int": "TypeError", "int_into_double": "float",
        "array": [7, 8, 9, 8], "array_len": 4, "lock_blocked": False, "rlock": "reentrant",
        "sem_second": False, "event_before": False, "event_wait": True, "qsize": 2,
        "empty": False, "got": [1, [2, 3]], "got_type": "list",
        "get_nowait_empty": "Empty", "get_timeout_empty": "Empty", "full": True,
        "put_full": "Full", "put_nowait_full": "Full"}
    shared = result.json()["shared"]
    assert shared["value"] == 15
    assert shared["floats"] == 2.0
    assert shared["arr"] == [7, 8, 9, 8]
    assert shared["ev"] is True
    assert shared["q"] == [{"k": [4]}]
    assert shared["small"] == ["one"]


def test_an_rlock_is_reentrant_per_thread_not_per_process(
        dask_run: tuple[Path, CLIResult]) -> None:
    _tmp, result = dask_run
    (order,) = jobs_of(result)["rlock_threads"]["results"]
    assert order == ["other thread got it while held: False", "same thread again"]


def test_serial_and_thread_jobs_use_the_scheduler_s_primitives(
        dask_run: tuple[Path, CLIResult]) -> None:
    """A thread job and a dask job add to one value under one lock; a serial job after
    the dask job sees the dask job's counter."""
    _tmp, result = dask_run
    assert result.json()["shared"]["total"] == 36
    assert jobs_of(result)["serial_reads"]["results"] == [4]


def test_journal_lines_carry_worker_pid_and_address(
        dask_run: tuple[Path, CLIResult]) -> None:
    tmp_path, result = dask_run
    lines = [line for line in journal_lines(tmp_path) if line["job"] == "squares"]
    assert lines
    workers = result.json()["dask"]
    assert all(line["worker"].startswith("tcp://127.0.0.1:") and line["pid"] != 0
               for line in lines), lines
    assert len({line["pid"] for line in lines}) <= workers["workers"]


def test_task_log_lines_reach_one_file_per_worker_with_host(
        dask_run: tuple[Path, CLIResult]) -> None:
    """Each task's log line, rendered in its worker, is in worker-HOST-PID.jsonl of the
    run folder once the summary is written: 40 squares, 40 lines."""
    tmp_path, _result = dask_run
    files = sorted(run_dir(tmp_path).glob("worker-*-*.jsonl"))
    assert files
    lines = [line for file in files for line in read_strict(file)]
    squaring = [line for line in lines if line.get("event") == "squaring"]
    assert sorted(line["x"] for line in squaring) == list(range(40))
    for file in files:
        for line in read_strict(file):
            assert file.name == f"worker-{line['host']}-{line['pid']}.jsonl"
            assert line["process"] == "worker"
    assert {line["job"] for line in squaring} == {"squares"}


def test_under_json_worker_prints_never_reach_stdout(dask_run: tuple[Path, CLIResult]) -> None:
    _tmp, result = dask_run
    assert "printed by task" not in result.stdout
    assert "printed by task 1" in result.stderr
    json.loads(result.stdout)


# -- failures ------------------------------------------------------------------

CRASH_CONFIG = """\
jobs:
  kill:
    function: tests.dask_tasks:die_on
    mode: dask
    workers: 2
    map: [0, 1, 2, 3]
    chunksize: 1
    kwargs: {how: kill}
  segv:
    function: tests.dask_tasks:die_on
    mode: dask
    map: [0, 1, 2, 3]
    chunksize: 1
    kwargs: {how: segv}
  exit0:
    function: tests.dask_tasks:die_on
    mode: dask
    map: [0, 1, 2, 3]
    chunksize: 1
    kwargs: {how: exit0}
  sysexit:
    function: tests.dask_tasks:die_on
    mode: dask
    map: [0, 1, 2, 3]
    chunksize: 1
    kwargs: {how: sysexit}
  chunk:                    # the chunk [0, 1, 2] dies at item 1: rerun item by item
    function: tests.dask_tasks:die_on
    mode: dask
    map: [0, 1, 2, 3]
    chunksize: 3
    kwargs: {how: kill}
  slow:
    function: tests.dask_tasks:sleep_on
    mode: dask
    map: [0, 1, 2]
    timeout: 2
  retried:
    function: tests.dask_tasks:flaky
    mode: dask
    map: [0, 1]
    kwargs: {marker: MARKER}
    retries: 1
  later:
    function: tests.dask_tasks:square
    mode: dask
    map: [2]
"""


@pytest.fixture(scope="module")
def crash_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, CLIResult]:
    tmp_path = tmp_path_factory.mktemp("dask-crash")
    path = tmp_path / "config.yaml"
    path.write_text(CRASH_CONFIG.replace("MARKER", str(tmp_path / "marker")))
    proc = subprocess.run(
        [sys.executable, "-m", "runner", str(path), "--json", "--log-dir",
         str(tmp_path / "logs")], capture_output=True, text=True, cwd=ROOT, timeout=110,
        check=False, stdin=subprocess.DEVNULL)
    return tmp_path, CLIResult(proc)


@pytest.mark.parametrize(("name", "kind", "says"), [
    ("kill", "WorkerCrashed", "killed by SIGKILL: out of memory?"),
    ("segv", "WorkerCrashed", "SIGSEGV: a crash in native code"),
    ("exit0", "WorkerCrashed", "exited with code 0"),
    ("chunk", "WorkerCrashed", "killed by SIGKILL"),
    ("sysexit", "SystemExit", "7"),
])
def test_a_dead_worker_fails_only_the_task_it_ran(
        crash_run: tuple[Path, CLIResult], name: str, kind: str, says: str) -> None:
    """SIGKILL, a segfault and os._exit(0) kill the worker: only task 1 fails, with the
    worker's pid and address and how it ended; SystemExit fails its task without killing
    anything; a chunk that dies is rerun item by item, so its other items succeed."""
    _tmp, result = crash_run
    assert result.code == 1, result
    job = jobs_of(result)[name]
    assert job["results"] == [0, None, 2, 3], job
    ((error),) = job["errors"]
    assert (error["task"], error["type"]) == (1, kind), error
    assert says in error["message"], error
    if kind == "WorkerCrashed":
        assert "worker pid " in error["message"] and "dask worker tcp://127.0.0.1:" in \
            error["message"], error
    assert "Traceback" not in result.stderr


def test_a_task_past_its_timeout_is_cancelled_and_its_worker_restarted(
        crash_run: tuple[Path, CLIResult]) -> None:
    _tmp, result = crash_run
    job = jobs_of(result)["slow"]
    assert job["results"] == [0, None, 2]
    ((error),) = job["errors"]
    assert error["type"] == "TaskTimeout"
    assert "timed out after 2s" in error["message"]
    assert "restarted through its nanny" in error["message"]
    assert jobs_of(result)["later"]["results"] == [4]


def test_retries_are_mprun_s_with_one_journal_line_per_attempt(
        crash_run: tuple[Path, CLIResult]) -> None:
    tmp_path, result = crash_run
    job = jobs_of(result)["retried"]
    assert (job["status"], job["results"]) == ("ok", [0, 1])
    lines = [line for line in journal_lines(tmp_path) if line["job"] == "retried"]
    attempts = sorted((line["task"], line["attempt"], line["status"]) for line in lines)
    assert attempts == [(0, 1, "failed"), (0, 2, "ok"), (1, 1, "failed"), (1, 2, "ok")]


# -- the same YAML, scaled out ---------------------------------------------------

def test_an_unchanged_pool_config_gives_the_same_results_under_dask(
        run_cli: RunCLI, tmp_path: Path) -> None:
    """configs/pool.yaml under --dask: the same results as without, each job in mode
    dask, and the human summary names the cluster."""
    config = str(ROOT / "configs" / "pool.yaml")
    plain = run_cli(config, "--json")
    scaled = run_cli(config, "--dask")
    assert (plain.code, scaled.code) == (0, 0), scaled
    summary = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    assert [j["results"] for j in summary["jobs"]] == \
        [j["results"] for j in plain.json()["jobs"]]
    assert {j["mode"] for j in summary["jobs"]} == {"dask"}
    assert summary["dask"]["embedded"] is True
    assert '\n  dask: scheduler "tcp://127.0.0.1:' in scaled.stdout
    assert ", embedded true, workers 2, threads 2\n" in scaled.stdout
    assert "\n  map: dask, 2 workers, 10 tasks, 10 ok" in scaled.stdout


def test_on_error_stop_starts_no_task_after_the_failure(
        run_cli: RunCLI, write_config: WriteConfig, tmp_path: Path) -> None:
    """The first failure under ``on_error: stop`` ends the run before any new task goes
    out: only the tasks already out (0 and 1) ever ran."""
    path = write_config("""\
        jobs:
          stop:
            function: tests.dask_tasks:fail_first
            mode: dask
            workers: 2
            map: [0, 1, 2, 3, 4, 5]
            chunksize: 1
            on_error: stop
        """)
    result = run_cli(str(path), "--json")
    assert result.code == 1, result
    job = jobs_of(result)["stop"]
    assert job["failed"] == 1 and job["results"][2:] == [None] * 4, job
    ran = {line["x"] for file in run_dir(tmp_path).glob("worker-*-*.jsonl")
           for line in read_strict(file) if line.get("event") == "ran"}
    assert ran <= {0, 1}, ran
