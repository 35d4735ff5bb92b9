"""The run's own files (#10 point 5): a log folder that cannot be written, before or during
the run, is one line ``mprun: cannot write PATH: REASON`` and exit 74, never a traceback,
with the report still on stdout; a full disk tears no line in the middle of a file; a
worker whose log fails goes on; the log folder is fixed before any task can move the
working directory; an empty one is exit 2; a deleted working directory is no obstacle
when every path is absolute."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from runner.errors import RunFilesError
from runner.runfiles import AppendFile
from tests import run_files_tasks
from tests.conftest import ROOT, START_METHODS

# (mode, start method) pairs: the in-runner modes once, the process modes under each method.
MODES = [("serial", None), ("thread", None),
         *[(mode, method) for mode in ("process", "pool") for method in START_METHODS]]
MODE_IDS = [mode if method is None else f"{mode}-{method}" for mode, method in MODES]
# The human report is the same code in every mode: --json everywhere, human in two.
FILL_CASES = [pytest.param(mode, method, True, id=f"json-{case}")
              for (mode, method), case in zip(MODES, MODE_IDS, strict=True)] + [
    pytest.param("serial", None, False, id="human-serial"),
    pytest.param("pool", "fork", False, id="human-pool-fork")]


def mprun(*args: str, cwd: Path = ROOT, env: dict[str, str] | None = None,
          shell: str | None = None) -> subprocess.CompletedProcess[str]:
    """``python -m runner ARGS`` as a subprocess (through ``sh -c`` when ``shell`` is a
    command to run first, such as removing the folder it runs in)."""
    argv = [sys.executable, "-m", "runner", *args]
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    if shell is not None:
        argv = ["sh", "-c", f'{shell} && exec "$@"', "sh", *argv]
    return subprocess.run(argv, capture_output=True, text=True, check=False, cwd=cwd,
                          env=full_env, timeout=90, stdin=subprocess.DEVNULL)


def write(path: Path, text: str) -> Path:
    path.write_text(textwrap.dedent(text))
    return path


def cannot_write_lines(stderr: str) -> list[str]:
    """The runner's ``mprun: cannot write`` lines (a worker's lines name the worker)."""
    return [line for line in stderr.splitlines() if line.startswith("mprun: cannot write ")]


def assert_failed_files(result: subprocess.CompletedProcess[str], pattern: str) -> None:
    """Exit 74, no traceback, and one ``mprun: cannot write`` line matching ``pattern``."""
    assert result.returncode == 74, result
    assert "Traceback" not in result.stderr, result.stderr
    lines = cannot_write_lines(result.stderr)
    assert len(lines) == 1 and re.fullmatch(pattern, lines[0]), result.stderr


def assert_whole_lines(path: Path) -> None:
    """``path`` holds whole JSON lines only: no torn line anywhere, not even at its end."""
    data = path.read_bytes()
    assert data == b"" or data.endswith(b"\n"), data[-200:]
    for line in data.splitlines():
        assert isinstance(json.loads(line), dict)


@contextlib.contextmanager
def tmpfs(path: Path, options: str = "size=256k") -> Iterator[Path]:
    """A small tmpfs mounted at ``path`` for the block; skipped where mounting is not
    permitted (it needs root)."""
    path.mkdir(exist_ok=True)
    if shutil.which("mount") is None:
        pytest.skip("no mount command: cannot make a small file system to fill")
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (needs root): {proc.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False, capture_output=True)


# -- a log folder that cannot be written at all -------------------------------------

UNWRITABLE = ["a-file", "proc", "proc-from-env", "read-only"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize("json_flag", [False, True], ids=["human", "json"])
@pytest.mark.parametrize("case", UNWRITABLE)
def test_an_unwritable_log_folder_is_one_line_and_exit_74(tmp_path: Path, case: str,
                                                          json_flag: bool) -> None:
    """--log-dir naming a file, /proc (also from MPRUN_LOG_DIR) or a read-only file system:
    nothing runs, one line names the path and the reason, exit 74; --json still prints
    one document saying so."""
    config = write(tmp_path / "c.yaml", """
        jobs:
          sq: {function: "tests.tasks:square", mode: pool, workers: 2, map: [1, 2, 3]}
    """)
    args = [str(config), *(["--json"] if json_flag else [])]
    env = None
    with contextlib.ExitStack() as stack:
        if case == "a-file":
            (tmp_path / "a-file").write_text("not a folder\n")
            args += ["--log-dir", str(tmp_path / "a-file")]
            pattern = re.escape(f"mprun: cannot write {tmp_path}/a-file/.locks: ")
            pattern += "Not a directory"
        elif case == "read-only":
            mount = stack.enter_context(tmpfs(tmp_path / "ro", "ro,size=64k"))
            args += ["--log-dir", str(mount / "logs")]
            pattern = re.escape(f"mprun: cannot write {mount}/logs") + r"\S*: Read-only file system"
        else:
            if case == "proc":
                args += ["--log-dir", "/proc"]
            else:
                env = {"MPRUN_LOG_DIR": "/proc"}
            pattern = r"mprun: cannot write /proc/\S+: .+"
        result = mprun(*args, cwd=tmp_path, env=env)
    assert_failed_files(result, pattern)
    if json_flag:
        doc = json.loads(result.stdout)
        assert doc["status"] == "failed" and doc["exit_code"] == 74
        assert doc["errors"][0]["message"] in cannot_write_lines(result.stderr)[0]
    else:
        assert result.stdout == ""


@pytest.mark.timeout(60)
@pytest.mark.parametrize("json_flag", [False, True], ids=["human", "json"])
def test_a_full_disk_before_the_run_is_one_line_and_exit_74(tmp_path: Path,
                                                            json_flag: bool) -> None:
    """A log folder on a file system with no space left: nothing runs, exit 74."""
    config = write(tmp_path / "c.yaml", """
        jobs:
          sq: {function: "tests.tasks:square", mode: serial, map: [1, 2, 3]}
    """)
    with tmpfs(tmp_path / "full") as mount:
        run_files_tasks.fill(str(mount))
        result = mprun(str(config), "--log-dir", str(mount), *(["--json"] * json_flag))
    assert_failed_files(result, re.escape(f"mprun: cannot write {mount}/") +
                        r"\S+: No space left on device")
    if json_flag:
        assert json.loads(result.stdout)["exit_code"] == 74


# -- the disk fills up, or the folder goes, mid-run ----------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize(("mode", "method", "json_flag"), FILL_CASES)
def test_a_disk_that_fills_mid_run_stops_it_with_the_report_and_no_torn_line(
        tmp_path: Path, mode: str, method: str | None, json_flag: bool) -> None:
    """A task fills the disk: the journal line that no longer fits is cut back, not left
    torn; no more tasks start; the report, from memory, is on stdout; one line says which
    file and why; exit 74; summary.json is whole or absent, never empty."""
    with tmpfs(tmp_path / "disk") as mount:
        config = write(tmp_path / "c.yaml", f"""
            jobs:
              fill:
                function: "tests.run_files_tasks:fill_disk_at"
                mode: {mode}
                workers: 2
                chunksize: 1
                map: {{range: 8}}
                args: ["{mount}"]
              later: {{function: "tests.tasks:square", mode: serial, map: [1]}}
        """)
        args = [str(config), "--log-dir", str(mount), *(["--json"] * json_flag)]
        result = mprun(*args, *(["--start-method", method] if method else []))
        assert_failed_files(result, re.escape(f"mprun: cannot write {mount}/") +
                            r"[^/]+/results\.jsonl: No space left on device")
        run_dir = (mount / "latest").resolve()
        assert_whole_lines(run_dir / "results.jsonl")
        assert_whole_lines(run_dir / "runner.jsonl")
        summary = run_dir / "summary.json"
        if summary.exists():
            json.loads(summary.read_text())
    if json_flag:
        doc = json.loads(result.stdout)
        assert (doc["status"], doc["exit_code"]) == ("failed", 74)
        assert doc["error"]["path"].endswith("/results.jsonl")
        assert doc["not_run"] == ["later"]
        job = doc["jobs"][0]
        # Threads may finish every task before the failed write is seen: not_run may be 0.
        assert job["status"] == "failed" and job["ok"] >= 1
    else:
        assert "failed (exit 74)" in result.stdout, result
        assert "error: cannot write " in result.stdout


@pytest.mark.timeout(90)
@pytest.mark.parametrize(("mode", "method"), MODES, ids=MODE_IDS)
def test_a_run_folder_removed_mid_run_is_exit_74_and_workers_go_on(
        tmp_path: Path, mode: str, method: str | None) -> None:
    """A task deletes the run's folder: every task still runs (a worker that cannot open
    its log says so once and goes on), the report is on stdout, and summary.json, which
    cannot be written, is the one line; exit 74."""
    logs = tmp_path / "logs"
    config = write(tmp_path / "c.yaml", f"""
        jobs:
          rm:
            function: "tests.run_files_tasks:remove_run_folder_at"
            mode: {mode}
            workers: 2
            chunksize: 1
            map: {{range: 6}}
            args: ["{logs}"]
    """)
    result = mprun(str(config), "--log-dir", str(logs), "--json",
                   *(["--start-method", method] if method else []))
    assert_failed_files(result, re.escape(f"mprun: cannot write {logs}/") +
                        r"[^/]+/summary\.json: No such file or directory")
    doc = json.loads(result.stdout)
    assert (doc["status"], doc["exit_code"]) == ("failed", 74)
    assert doc["jobs"][0]["results"] == list(range(6))
    told = re.findall(r"^mprun: worker (\d+): cannot write .*$", result.stderr, re.M)
    assert len(told) == len(set(told)), result.stderr  # each worker says it once


# -- writes: whole lines or nothing ---------------------------------------------------

@pytest.mark.timeout(30)
def test_a_write_the_disk_takes_only_part_of_is_cut_back(tmp_path: Path) -> None:
    """On a full disk write(2) takes what fits: the rest is tried, and when it does not
    fit the file is cut back to its last whole line, then RunFilesError."""
    with tmpfs(tmp_path / "disk") as mount:
        journal = AppendFile(str(mount / "results.jsonl"))
        journal.write(b'{"task": 0}\n')
        run_files_tasks.fill(str(mount))
        with pytest.raises(RunFilesError) as caught:
            journal.write(b'{"task": 1, "value": "' + b"x" * 8000 + b'"}\n')
        journal.close()
        assert caught.value.reason == "No space left on device"
        assert caught.value.path == str(mount / "results.jsonl")
        assert (mount / "results.jsonl").read_bytes() == b'{"task": 0}\n'


@pytest.mark.timeout(30)
def test_a_process_whose_log_cannot_be_written_goes_on_and_says_so_once() -> None:
    """A worker's log on a full disk (/dev/full): logging never raises, the process goes
    on, and stderr has one line about it."""
    if not Path("/dev/full").exists():
        pytest.skip("needs /dev/full")
    code = textwrap.dedent("""
        from runner import log
        log.configure(path="/dev/full", run_id="r", process="worker")
        for n in range(100):
            log.logger().info("line", n=n)
        print("still running")
    """)
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=False, timeout=30, cwd=ROOT)
    assert proc.returncode == 0, proc
    assert proc.stdout == "still running\n"
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert re.fullmatch(r"mprun: worker \d+: cannot write /dev/full: No space left on device;"
                        r" its log lines are dropped from here on", lines[0])


# -- where the log folder is --------------------------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize(("mode", "method"), MODES, ids=MODE_IDS)
def test_a_task_that_moves_the_working_directory_moves_no_log(
        tmp_path: Path, mode: str, method: str | None) -> None:
    """The relative default ``logs/`` is made absolute before any task runs: after a task's
    os.chdir("/") the run's files still land in ./logs of the folder mprun started in."""
    config = write(tmp_path / "c.yaml", f"""
        jobs:
          move: {{function: "tests.run_files_tasks:chdir_root", mode: {mode}, workers: 2,
                  chunksize: 1, map: {{range: 4}}}}
          after: {{function: "tests.tasks:square", mode: {mode}, map: [1, 2]}}
    """)
    stray_before = Path("/logs").exists()
    result = mprun(str(config), "--json", *(["--start-method", method] if method else []),
                   cwd=tmp_path)
    assert result.returncode == 0, result
    doc = json.loads(result.stdout)
    run_dir = tmp_path / "logs" / doc["run_id"]
    assert doc["log_dir"] == str(run_dir)
    assert json.loads((run_dir / "summary.json").read_text())["status"] == "ok"
    journal = [json.loads(line) for line in (run_dir / "results.jsonl").read_text().splitlines()]
    assert sorted(line["job"] for line in journal) == ["after"] * 2 + ["move"] * 4
    assert Path("/logs").exists() == stray_before


@pytest.mark.timeout(60)
def test_the_library_makes_the_log_folder_absolute_before_tasks_run(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``runner.run(log_dir="logs")`` resolves it against the working directory at the
    start: a serial task's os.chdir("/") (in this very process) changes nothing."""
    import runner

    monkeypatch.chdir(tmp_path)
    config = write(tmp_path / "c.yaml", """
        jobs:
          move: {function: "tests.run_files_tasks:chdir_root", mode: serial, map: [1, 2]}
    """)
    report = runner.run(config, log_dir="logs")
    assert report.exit_code == 0
    assert report.log_dir == str(tmp_path / "logs" / report.run_id)
    assert (tmp_path / "logs" / report.run_id / "summary.json").exists()


@pytest.mark.timeout(30)
@pytest.mark.parametrize("how", ["flag", "env"])
def test_an_empty_log_folder_is_exit_2_and_runs_nothing(tmp_path: Path, how: str) -> None:
    """``--log-dir ""`` or ``MPRUN_LOG_DIR=""`` would write into the working directory:
    exit 2 with one line, and nothing runs or is written."""
    config = write(tmp_path / "c.yaml", """
        jobs:
          sq: {function: "tests.tasks:square", mode: serial, map: [1]}
    """)
    if how == "flag":
        result = mprun(str(config), "--log-dir", "", cwd=tmp_path)
    else:
        result = mprun(str(config), cwd=tmp_path, env={"MPRUN_LOG_DIR": ""})
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith("mprun: error: the log folder is empty"), result.stderr
    assert sorted(path.name for path in tmp_path.iterdir()) == ["c.yaml"]


# -- a deleted working directory ------------------------------------------------------

@pytest.mark.timeout(90)
@pytest.mark.parametrize(("mode", "method"), MODES, ids=MODE_IDS)
def test_a_deleted_working_directory_is_fine_when_every_path_is_absolute(
        tmp_path: Path, mode: str, method: str | None) -> None:
    """mprun started in a folder that no longer exists: with an absolute config and log
    folder it runs (spawn and the fork server need a working directory: mprun moves to
    the config's folder first)."""
    config = write(tmp_path / "c.yaml", f"""
        jobs:
          sq: {{function: "tests.tasks:square", mode: {mode}, workers: 2, map: [1, 2, 3]}}
    """)
    gone = tmp_path / "gone"
    gone.mkdir()
    result = mprun(str(config), "--log-dir", str(tmp_path / "logs"), "--json",
                   *(["--start-method", method] if method else []),
                   cwd=gone, shell=f"rmdir {gone}")
    assert result.returncode == 0, result
    assert json.loads(result.stdout)["jobs"][0]["results"] == [1, 4, 9]


@pytest.mark.timeout(30)
def test_a_deleted_working_directory_with_a_relative_path_is_exit_2(tmp_path: Path) -> None:
    """A relative path cannot be found from a deleted folder: exit 2, one clear line."""
    gone = tmp_path / "gone"
    gone.mkdir()
    result = mprun("c.yaml", "--log-dir", str(tmp_path / "logs"), cwd=gone,
                   shell=f"rmdir {gone}")
    assert result.returncode == 2, result
    assert "Traceback" not in result.stderr
    assert "mprun: error: the working directory no longer exists, so 'c.yaml' cannot be " \
           "found" in result.stderr
