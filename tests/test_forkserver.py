"""The fork server ``mprun`` forks as it starts (runner.forkserver), against the stock one.

A config's first run (a cache miss) gets multiprocessing's exec'd server; its
second (a hit) gets the forked one. Each test compares the two as the worker
sees them (tests/server_tasks.py reads its parent's /proc entry).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from runner import forkserver

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parent.parent
STOCK = "from multiprocessing.forkserver import main"


def _config(tmp_path: Path, function: str = "server", args: str = "[0]") -> Path:
    # The job module sits in the config's folder, not in the working directory.
    shutil.copy(ROOT / "tests" / "server_tasks.py", tmp_path / "server_job.py")
    path = tmp_path / "config.yaml"
    path.write_text(f"jobs:\n  where: {{function: \"server_job:{function}\", mode: pool, "
                    f"workers: 1, args: {args}}}\n")
    return path


def _start(tmp_path: Path, config: Path, *, command: list[str] | None = None,
           pass_fds: tuple[int, ...] = ()) -> subprocess.Popen[str]:
    argv = [*(command or [sys.executable, "-m", "runner"]), str(config), "--json",
            "--start-method", "forkserver", "--log-dir", str(tmp_path / "logs")]
    env = {**os.environ, "MPRUN_CACHE_DIR": str(tmp_path / "cache")}
    return subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL,
                            pass_fds=pass_fds, start_new_session=True)


def _facts(tmp_path: Path, config: Path, **options: Any) -> tuple[int, dict[str, Any], str]:
    proc = _start(tmp_path, config, **options)
    out, err = proc.communicate(timeout=100)
    assert proc.returncode == 0, err
    doc = json.loads(out)
    return proc.pid, doc["jobs"][0]["results"][0], err


def _gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as file:
            return file.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def _wait_until(condition: Any, what: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.01)


def test_a_cache_hit_forks_the_server_and_it_matches_the_stock_one(tmp_path: Path) -> None:
    config = _config(tmp_path)
    miss_pid, miss, _ = _facts(tmp_path, config)
    hit_pid, hit, _ = _facts(tmp_path, config)
    assert STOCK in " ".join(miss["cmdline"])  # exec'd
    assert STOCK not in " ".join(hit["cmdline"])  # forked: mprun's own command line
    assert hit["cmdline"][:3] == [sys.executable, "-m", "runner"]
    assert (miss["parent"], hit["parent"]) == (miss_pid, hit_pid)
    # The signals a worker's parent ignores and catches are the stock server's.
    assert (hit["ignored"], hit["caught"]) == (miss["ignored"], miss["caught"])
    # Preloaded from the config's folder: the worker did not import the module itself.
    # (The stock server imports from the working directory only, so its worker did.)
    assert hit["imported_in"] == hit["pid"]
    assert miss["imported_in"] != miss["pid"]


def test_the_forked_server_holds_no_descriptor_mprun_inherited(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _facts(tmp_path, config)
    read, write = os.pipe()
    try:
        pipe = f"pipe:[{os.fstat(write).st_ino}]"
        _, hit, _ = _facts(tmp_path, config, pass_fds=(write,))
    finally:
        os.close(read)
        os.close(write)
    assert STOCK not in " ".join(hit["cmdline"])
    assert pipe not in hit["fds"], hit["fds"]


def test_the_forked_server_ends_with_mprun(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _facts(tmp_path, config)
    _, hit, _ = _facts(tmp_path, config)
    assert STOCK not in " ".join(hit["cmdline"])  # the forked server, not the stock one
    _wait_until(lambda: _gone(hit["pid"]), f"the fork server {hit['pid']} outlived mprun")


def test_under_the_console_script_too(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "mprun"
    if not script.exists():
        pytest.skip(f"no console script beside {sys.executable} (not installed with pip)")
    config = _config(tmp_path)
    _facts(tmp_path, config, command=[str(script)])
    _, hit, _ = _facts(tmp_path, config, command=[str(script)])
    assert hit["cmdline"][1:3] == [str(script), str(config)]
    assert hit["main"] == str(script)
    assert hit["imported_in"] == hit["pid"]


def test_json_stays_one_document_when_the_server_preloads_a_noisy_module(
        tmp_path: Path) -> None:
    """What a job module prints as the fork server imports it goes to stderr (before,
    a cache hit's early stock server printed it on stdout, into --json's document)."""
    config = _config(tmp_path)
    job = tmp_path / "server_job.py"
    job.write_text(job.read_text() + '\nprint("noisy module imported")\n')
    _facts(tmp_path, config)
    _, hit, err = _facts(tmp_path, config)  # stdout parsed as one document
    assert hit["imported_in"] == hit["pid"]
    assert err.count("noisy module imported") == 2  # the runner's import, the server's


def test_a_module_that_fails_in_the_server_is_left_to_the_worker(tmp_path: Path) -> None:
    """A module that raises as the fork server preloads it does not take the server
    down, nor print a traceback: the worker imports it itself."""
    config = _config(tmp_path)
    job = tmp_path / "server_job.py"
    job.write_text(job.read_text() + (
        "\nif any(frame.name == '_import' and frame.filename.endswith('forkserver.py')\n"
        "       for frame in __import__('traceback').extract_stack()):\n"
        "    raise RuntimeError('fails in the fork server only')\n"))
    _facts(tmp_path, config)
    _, hit, err = _facts(tmp_path, config)
    assert STOCK not in " ".join(hit["cmdline"])
    assert hit["imported_in"] != hit["pid"]  # the worker's own import
    assert "Traceback" not in err, err


def _interrupted(tmp_path: Path, config: Path, marker: Path) -> dict[str, Any]:
    proc = _start(tmp_path, config)
    _wait_until(marker.exists, "the task did not start")
    worker, parent = marker.read_text().split("\n", 1)
    os.killpg(proc.pid, signal.SIGTERM)
    out, err = proc.communicate(timeout=100)
    marker.unlink()
    assert proc.returncode == 128 + signal.SIGTERM, err
    _wait_until(lambda: _gone(int(worker)), "the worker outlived the run")
    doc: dict[str, Any] = json.loads(out)
    doc["server"] = parent
    return doc


def test_sigterm_to_the_group_ends_a_run_with_a_forked_server(tmp_path: Path) -> None:
    marker = tmp_path / "started"
    config = _config(tmp_path, "wait_for_signal", json.dumps([str(marker)]))
    miss = _interrupted(tmp_path, config, marker)
    hit = _interrupted(tmp_path, config, marker)  # a hit: the fork server was forked
    assert miss["status"] == hit["status"] == "interrupted"
    assert miss["exit_code"] == hit["exit_code"] == 128 + signal.SIGTERM
    assert STOCK in miss["server"] and STOCK not in hit["server"]


def test_start_declines_while_another_thread_runs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forking with a second thread alive could copy a lock it holds: the stock start."""
    from multiprocessing import forkserver as stock

    monkeypatch.setattr(stock._forkserver, "_forkserver_pid", None)  # as if none ran yet
    release = threading.Event()
    thread = threading.Thread(target=release.wait)
    thread.start()
    try:
        assert forkserver.start(["json"], [], []) is False
    finally:
        release.set()
        thread.join()
    assert stock._forkserver._forkserver_pid is None


def test_a_job_folder_does_not_shadow_what_mprun_imports(tmp_path: Path) -> None:
    """The config's folder goes on the path only for the jobs' modules: a logging.py or
    uuid.py beside the config is not the standard library's for the worker's modules."""
    config = _config(tmp_path)
    for name in ("logging", "uuid", "string", "heapq"):
        (tmp_path / f"{name}.py").write_text("raise ImportError('a stand-in')\n")
    _facts(tmp_path, config)
    _, hit, err = _facts(tmp_path, config)
    assert STOCK not in " ".join(hit["cmdline"])
    assert hit["imported_in"] == hit["pid"], err


def test_with_several_configs_each_runs_its_own_module(tmp_path: Path) -> None:
    """Two configs whose folders each hold a server_job.py: the server preloads neither,
    so each config's workers import their own."""
    configs = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        (folder / "server_job.py").write_text(f"def server(_=None):\n    return {name!r}\n")
        configs.append(folder / "config.yaml")
        configs[-1].write_text('jobs:\n  where: {function: "server_job:server", mode: pool, '
                               'workers: 1, args: [0]}\n')
    argv = [sys.executable, "-m", "runner", *map(str, configs), "--json", "--start-method",
            "forkserver", "--log-dir", str(tmp_path / "logs")]
    env = {**os.environ, "MPRUN_CACHE_DIR": str(tmp_path / "cache")}
    for _ in range(2):  # a miss, then a hit
        proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=100, check=False)
        assert proc.returncode == 0, proc.stderr
        assert [doc["jobs"][0]["results"] for doc in json.loads(proc.stdout)] == [
            ["one"], ["two"]]


def test_ctrl_c_while_the_server_imports_is_no_traceback(tmp_path: Path) -> None:
    """A SIGINT to the group while the forked server imports the job modules: mprun
    ends 130 with its one line; the server ends quietly."""
    config = _config(tmp_path)
    _facts(tmp_path, config)
    importing = tmp_path / "importing"
    job = tmp_path / "server_job.py"
    job.write_text(job.read_text() + (
        "\nif any(frame.name == '_import' and frame.filename.endswith('forkserver.py')\n"
        "       for frame in __import__('traceback').extract_stack()):\n"
        f"    open({str(importing)!r}, 'w').close()\n"
        "    __import__('time').sleep(2)\n"))
    _facts(tmp_path, config)  # the edit is the module's, not the config's: still a hit
    importing.unlink()
    proc = _start(tmp_path, config)
    _wait_until(importing.exists, "the server did not import the job module")
    os.killpg(proc.pid, signal.SIGINT)
    _, err = proc.communicate(timeout=100)
    assert proc.returncode == 128 + signal.SIGINT, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err


def test_a_closed_stdin_leaves_the_servers_stdout_and_stderr(tmp_path: Path) -> None:
    config = _config(tmp_path)
    _facts(tmp_path, config)
    argv = [sys.executable, "-m", "runner", str(config), "--json", "--start-method",
            "forkserver", "--log-dir", str(tmp_path / "logs")]
    command = " ".join(f"'{part}'" for part in argv) + " <&-"
    env = {**os.environ, "MPRUN_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run(["sh", "-c", command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=100, check=False)
    assert proc.returncode == 0, proc.stderr
    hit = json.loads(proc.stdout)["jobs"][0]["results"][0]
    assert STOCK not in " ".join(hit["cmdline"])  # forked, and it kept its stdio
    assert hit["imported_in"] == hit["pid"]


def test_main_called_in_process_starts_the_stock_server_with_json_clean(
        tmp_path: Path) -> None:
    """``runner.cli.main(argv)`` from a program of one's own: mprun does not fork that
    program; the early stock server's stdout is stderr under --json, so what a job
    module prints as it imports stays off stdout."""
    config = _config(tmp_path)
    job = tmp_path / "server_job.py"
    job.write_text(job.read_text() + '\nprint("noisy module imported")\n')
    caller = ["-c", "import sys; from runner.cli import main; sys.exit(main(sys.argv[1:]))"]
    _facts(tmp_path, config, command=[sys.executable, *caller])
    _, hit, err = _facts(tmp_path, config, command=[sys.executable, *caller])
    assert STOCK in " ".join(hit["cmdline"])
    assert "noisy module imported" in err


def test_this_pythons_fork_server_is_the_one_it_drives() -> None:
    """Python 3.11 (what CI runs): the fork is used; a Python whose forkserver.main
    changed (3.14 takes an authentication key) gets the stock start instead."""
    assert forkserver.supported() is (sys.version_info < (3, 14))
