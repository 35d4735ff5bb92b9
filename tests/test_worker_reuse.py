"""Pool workers are the run's (runner.executors.processes): a later pool job takes the
idle workers an earlier one left, instead of starting its own; process mode and a
compare job's modes do not; a worker that died while it waited is replaced."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(120)


def run(tmp_path: Path, body: str, *extra: str) -> tuple[dict[str, Any], Path]:
    config = tmp_path / "c.yaml"
    config.write_text(textwrap.dedent(body))
    logs = tmp_path / "logs"
    proc = subprocess.run([sys.executable, "-m", "runner", str(config), "--json", "--log-dir",
                           str(logs), *extra], cwd=ROOT, capture_output=True, text=True,
                          timeout=90, check=False)
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    return {job["name"]: job for job in doc["jobs"]}, logs / doc["run_id"]


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_later_pool_job_runs_on_the_workers_an_earlier_one_left(tmp_path: Path,
                                                                  method: str) -> None:
    jobs, run_dir = run(tmp_path, """\
        defaults:
          function: tests.reuse_tasks:pid_after
          mode: pool
          workers: 2
          chunksize: 1
        jobs:
          first:
            map: {range: 6}
          second:
            map: {range: 6}
          third:
            workers: 1
            map: {range: 3}
        """, "--start-method", method)
    first = set(jobs["first"]["results"])
    assert len(first) == 2
    assert set(jobs["second"]["results"]) <= first
    assert set(jobs["third"]["results"]) <= first
    # One log file per worker process of the run: two, for the three jobs.
    assert len(list(run_dir.glob("worker-*.jsonl"))) == 2


def test_process_mode_and_compare_modes_start_their_own(tmp_path: Path) -> None:
    jobs, run_dir = run(tmp_path, """\
        defaults:
          function: tests.reuse_tasks:pid_after
          workers: 2
          chunksize: 1
        jobs:
          pool:
            mode: pool
            map: {range: 4}
          process:
            mode: process
            map: {range: 4}
          compared:
            function: tests.tasks:square
            compare: [pool, serial]
            map: {range: 4}
          after:
            mode: pool
            map: {range: 4}
        """)
    pool = set(jobs["pool"]["results"])
    process = jobs["process"]["results"]
    assert len(set(process)) == 4 and not set(process) & pool  # a process per task
    # Worker processes of the run: the first pool job's 2, process mode's 4, and the 2
    # the compare job's pool mode started for its timing; the last job started none.
    logs = {int(path.stem.removeprefix("worker-")) for path in run_dir.glob("worker-*.jsonl")}
    assert len(logs) == 8
    compared = logs - pool - set(process)
    assert len(compared) == 2
    assert set(jobs["after"]["results"]) <= pool | compared


def test_a_worker_that_dies_while_it_waits_is_replaced(tmp_path: Path) -> None:
    pidfile = tmp_path / "pid"
    jobs, _ = run(tmp_path, f"""\
        jobs:
          leaves:
            function: tests.reuse_tasks:pid_then_die
            mode: pool
            workers: 1
            args: ["{pidfile}"]
          waits:
            function: tests.reuse_tasks:wait_until_gone
            mode: serial
            args: ["{pidfile}"]
          next:
            function: tests.reuse_tasks:pid_after
            mode: pool
            workers: 1
            map: [0, 1]
        """)
    (dead,) = jobs["leaves"]["results"]
    assert jobs["waits"]["results"] == [True]
    assert jobs["next"]["status"] == "ok" and jobs["next"]["failed"] == 0
    assert dead not in jobs["next"]["results"]
