"""The mprun command, run as a subprocess: exit codes, stdout, stderr."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT
from tests.helpers import read_strict

pytestmark = pytest.mark.timeout(90)

FAILING = """
    jobs:
      items:
        function: tests.tasks:fail_on
        mode: pool
        workers: 2
        map: [1, 2, 3, 4]
      later:
        function: tests.tasks:square
        mode: serial
        args: [5]
"""


def run_folders(tmp_path: Path) -> list[Path]:
    logs = tmp_path / "logs"
    return sorted(p for p in logs.iterdir() if p.is_dir() and not p.is_symlink()) \
        if logs.exists() else []


def test_version_from_console_script_and_module(run_cli):
    """`mprun --version` and `python -m runner --version` both print the version."""
    script = Path(sys.executable).parent / "mprun"
    assert script.exists(), "pip install -e . should install the mprun console script"
    proc = subprocess.run([str(script), "--version"], capture_output=True, text=True,
                          timeout=30, check=False)
    assert proc.returncode == 0
    assert proc.stdout.strip() == "mprun 0.1.0"
    result = run_cli("--version")
    assert (result.code, result.stdout.strip()) == (0, "mprun 0.1.0")


def test_no_arguments_is_a_usage_error(run_cli):
    result = run_cli()
    assert result.code == 2
    assert "usage: mprun" in result.stderr
    assert result.stdout == ""


def test_unknown_option_is_a_usage_error(run_cli):
    result = run_cli("configs/pool.yaml", "--no-such-option")
    assert result.code == 2
    assert "unrecognized arguments: --no-such-option" in result.stderr


def test_invalid_config_exit_2_located_no_traceback_nothing_run(run_cli, write_config, tmp_path):
    """Each problem is FILE:LINE:COL: path: message on stderr; no run folder is made."""
    path = write_config("""\
        jobs:
          a:
            function: tests.tasks:square
            mode: cluster
            workers: 0
    """)
    result = run_cli(str(path))
    assert result.code == 2, result
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.strip().splitlines()
    assert (f"{path}:4:11: jobs.a.mode: 'cluster' is not one of serial, thread, process, "
            "pool, dask") in lines
    assert any(line.startswith(f"{path}:5:14: jobs.a.workers:") for line in lines), lines
    assert run_folders(tmp_path) == []


def test_missing_function_is_exit_2_before_anything_runs(run_cli, write_config, tmp_path):
    path = write_config("""\
        jobs:
          first:
            function: tests.tasks:square
            args: [2]
          second:
            function: tests.tasks:no_such_function
    """)
    result = run_cli(str(path))
    assert result.code == 2, result
    assert f"{path}:6:15: jobs.second.function: module 'tests.tasks' has no attribute " \
           "'no_such_function'" in result.stderr
    assert run_folders(tmp_path) == []


def test_missing_file_and_empty_file(run_cli, write_config):
    result = run_cli("no/such/config.yaml")
    assert result.code == 2
    assert "no/such/config.yaml: no such file" in result.stderr
    empty = write_config("", name="empty.yaml")
    result = run_cli(str(empty))
    assert result.code == 2
    assert "empty" in result.stderr


def test_validate_ok_and_bad(run_cli, write_config):
    """`mprun validate` checks without running: exit 0 and a line per config, or exit 2."""
    result = run_cli("validate", "configs/pool.yaml", "configs/lock.yaml")
    assert result.code == 0, result
    assert result.stdout.splitlines() == [
        "configs/pool.yaml: ok (3 jobs: map, apply, apply_many)",
        "configs/lock.yaml: ok (1 job: add)",
    ]
    bad = write_config("jobs: {a: {function: 'not a function'}}\n", name="bad.yaml")
    result = run_cli("validate", str(bad))
    assert result.code == 2
    assert f"{bad}:1:22: jobs.a.function:" in result.stderr


def test_validate_runs_nothing(run_cli, write_config, tmp_path):
    marker = tmp_path / "ran"
    path = write_config(f"""\
        jobs:
          touch:
            function: pathlib:Path.touch
            mode: serial
            args: ["{marker}"]
    """)
    # Path.touch needs a Path, so a real run would fail; validate must not even try.
    result = run_cli("validate", str(path))
    assert result.code == 0, result
    assert not marker.exists()


def test_schema_is_json_schema_of_the_config(run_cli):
    result = run_cli("schema")
    assert result.code == 0
    schema = json.loads(result.stdout)
    assert schema["$schema"].startswith("https://json-schema.org/")
    assert {"jobs", "shared", "defaults", "start_method"} <= set(schema["properties"])
    job = schema["$defs"]["Job"]
    assert job["additionalProperties"] is False
    assert "function" in job["required"]


def test_failed_task_exit_1_later_jobs_still_run(run_cli, write_config):
    result = run_cli(str(write_config(FAILING)))
    assert result.code == 1, result
    assert "task 2 failed: ValueError: bad item 3" in result.stdout
    assert "items: pool, 2 workers, 4 tasks, 3 ok, 1 failed" in result.stdout
    assert "later: serial, 1 worker, 1 task, 1 ok, 0 failed" in result.stdout
    assert result.stdout.strip().splitlines()[-1].startswith("failed (exit 1)")


def test_json_prints_only_the_document(run_cli, write_config):
    """With --json, stdout is one JSON document; task output (any mode) goes to stderr."""
    path = write_config("""\
        jobs:
          serial: {function: "tests.tasks:shout", mode: serial, args: [s]}
          thread: {function: "tests.tasks:shout", mode: thread, args: [t]}
          process: {function: "tests.tasks:shout", mode: process, args: [p]}
          pool: {function: "tests.tasks:shout", mode: pool, args: [o]}
    """)
    result = run_cli(str(path), "--json")
    assert result.code == 0, result
    doc = result.json()
    assert set(doc) == {"run_id", "config", "status", "exit_code", "seconds", "log_dir",
                        "jobs", "shared"}
    assert (doc["status"], doc["exit_code"]) == ("ok", 0)
    assert set(doc["jobs"][0]) == {"name", "mode", "workers", "status", "tasks", "ok",
                                   "failed", "not_run", "reused", "seconds", "results", "reduced",
                                   "errors", "compare", "slowest"}
    assert [job["results"] for job in doc["jobs"]] == [["s"], ["t"], ["p"], ["o"]]
    for word in "stop":
        assert f"task says {word}" in result.stderr
        assert f"task warns {word}" in result.stderr


def test_json_failed_task_entry(run_cli, write_config):
    result = run_cli(str(write_config(FAILING)), "--json")
    assert result.code == 1
    doc = result.json()
    assert doc["status"] == "failed"
    items = doc["jobs"][0]
    assert items["results"] == [1, 2, None, 4]
    assert items["errors"] == [{"task": 2, "type": "ValueError", "message": "bad item 3",
                                "attempts": 1}]


def test_quiet_prints_only_failed_task_lines_and_keeps_exit_code(run_cli, write_config):
    """--quiet: no summary, no progress; each failed task's one line on stderr (issue 10:
    it used to print nothing at all, so cron mail stayed silent)."""
    result = run_cli(str(write_config(FAILING)), "--quiet")
    assert result.code == 1
    assert result.stdout == ""
    assert result.stderr == "mprun: items[2] failed: ValueError: bad item 3\n"


def test_only_runs_named_jobs_and_rejects_unknown(run_cli, write_config):
    path = write_config(FAILING)
    result = run_cli(str(path), "--only", "later", "--json")
    assert result.code == 0, result
    assert [job["name"] for job in result.json()["jobs"]] == ["later"]
    result = run_cli(str(path), "--only", "nope")
    assert result.code == 2
    assert "no job named 'nope'" in result.stderr


def test_start_method_option_beats_config(run_cli, write_config, tmp_path):
    path = write_config("""\
        start_method: spawn
        jobs:
          one: {function: "tests.tasks:square", mode: pool, workers: 1, args: [3]}
    """)
    result = run_cli(str(path), "--start-method", "fork")
    assert result.code == 0, result
    started = read_strict(tmp_path / "logs" / "latest" / "runner.jsonl")[0]
    assert started["event"] == "run started"
    assert started["start_method"] == "fork"


def test_environment_variables_reach_the_config(run_cli, write_config):
    path = write_config("""\
        jobs:
          sq:
            function: tests.tasks:square
            mode: serial
            args:
              - ${X:-2}
    """)
    assert run_cli(str(path), "--json").json()["jobs"][0]["results"] == [4]
    assert run_cli(str(path), "--json", env={"X": "7"}).json()["jobs"][0]["results"] == [49]


def test_several_configs_run_in_turn_json_is_a_list(run_cli, tmp_path):
    result = run_cli("configs/pool.yaml", "configs/process.yaml", "--json")
    assert result.code == 0, result
    docs = result.json()
    assert [doc["config"] for doc in docs] == ["configs/pool.yaml", "configs/process.yaml"]
    # Each entry is its run's summary.json, the same bytes (each document written once).
    for doc in docs:
        summary = tmp_path / "logs" / doc["run_id"] / "summary.json"
        assert summary.read_bytes().rstrip(b"\n") in result.stdout.encode()
        assert json.loads(summary.read_bytes()) == doc


def test_one_invalid_config_of_several_runs_nothing(run_cli, write_config, tmp_path):
    bad = write_config("jobs: {}\n", name="bad.yaml")
    result = run_cli("configs/pool.yaml", str(bad))
    assert result.code == 2
    assert str(bad) in result.stderr
    assert run_folders(tmp_path) == []


def test_cli_module_imports_nothing_heavy():
    """Workers import the CLI as their main module: it must not pull in pydantic & co."""
    code = ("import sys, runner, runner.cli; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & "
            "{'pydantic', 'yaml', 'structlog', 'orjson', 'jobs', 'multiprocessing'}))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=ROOT, timeout=30, check=True, env={**os.environ})
    assert proc.stdout.strip() == "[]"


def test_options_may_come_before_the_config(run_cli, tmp_path):
    """`mprun --json --start-method fork CONFIG` is `mprun run --json ... CONFIG`."""
    result = run_cli("--json", "--start-method", "fork", "configs/pool.yaml")
    assert result.code == 0, result
    assert result.json()["jobs"][1]["results"] == [4]
