"""The console's mprun skips the interpreter's teardown after a run only when nothing
needs it (runner.quickexit): atexit handlers still run, and a run whose job code ran in
the runner's own process (serial, thread) exits as Python normally does, so that what
that code left (a buffered file, a running thread) is not lost."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.timeout(90)


def _mprun(tmp_path: Path, job: str, *options: str
           ) -> tuple[subprocess.CompletedProcess[str], Path]:
    config = tmp_path / "c.yaml"
    config.write_text(f"jobs:\n  j:\n{job}")
    mark = tmp_path / "mark.txt"
    env = {**os.environ, "MPRUN_TEST_EXIT_MARK": str(mark)}
    proc = subprocess.run([sys.executable, "-m", "runner", str(config), "--json", "-q",
                           "--log-dir", str(tmp_path / "logs"), *options], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=80, check=False)
    return proc, mark


@pytest.mark.parametrize("method", ["fork", "forkserver", "spawn"])
def test_a_pool_run_ends_quickly_and_still_runs_atexit_handlers(tmp_path: Path,
                                                                 method: str) -> None:
    proc, mark = _mprun(tmp_path, "    function: tests.exit_tasks:square\n    mode: pool\n"
                                  "    workers: 2\n    map: {range: 5}\n"
                                  "    reduce: sum\n", "--start-method", method)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["jobs"][0]["reduced"] == 30
    assert mark.read_text() == "atexit ran\n"
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(("function", "mode", "written"), [
    ("leave_buffered", "serial", "written by a task\n"),  # flushed only by finalization
    ("leave_thread", "thread", "written by a thread\n"),  # a normal exit waits for it
])
def test_what_job_code_in_the_runner_left_is_not_lost(tmp_path: Path, function: str, mode: str,
                                                      written: str) -> None:
    out = tmp_path / "out.txt"
    proc, mark = _mprun(tmp_path, f"    function: tests.exit_tasks:{function}\n"
                                  f"    mode: {mode}\n    args: [{str(out)!r}]\n")
    assert proc.returncode == 0, proc.stderr
    assert out.read_text() == written
    assert mark.read_text() == "atexit ran\n"


def test_what_a_job_modules_import_left_buffered_is_flushed(tmp_path: Path) -> None:
    """The runner imports each job's module to check its function: that code ran here."""
    trace = tmp_path / "trace.txt"
    config = tmp_path / "c.yaml"
    config.write_text("jobs:\n  j:\n    function: tests.exit_tasks:square\n    mode: pool\n"
                      "    workers: 2\n    map: {range: 3}\n")
    env = {**os.environ, "MPRUN_TEST_IMPORT_TRACE": str(trace)}
    proc = subprocess.run([sys.executable, "-m", "runner", str(config), "-q",
                           "--log-dir", str(tmp_path / "logs")], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=80, check=False)
    assert proc.returncode == 0, proc.stderr
    assert trace.read_text() == "imported in the runner\n"
    assert proc.stdout.count("printed by C at import\n") == 1, proc.stdout
