"""`--json` is one JSON document on stdout whatever happens; `--quiet` prints each failed
task's line on stderr; the human summary writes values as JSON does.

The CLI's behaviour is checked by running it as a subprocess (exit code, stdout,
stderr); the summary's formatting in-process, on report objects.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest

from runner.report import JobReport, RunReport, render
from runner.work import TaskError
from tests.conftest import MODES

pytestmark = pytest.mark.timeout(90)

# A job module that prints when it is imported: in the runner (loading the config)
# and, under spawn and forkserver, in every worker.
NOISY = '''\
print("noisy module imported")


def double(x=1):
    return 2 * x
'''


def noisy_config(tmp_path: Path, name: str, mode: str = "pool") -> Path:
    (tmp_path / "noisy_job.py").write_text(NOISY)
    path = tmp_path / name
    path.write_text(textwrap.dedent(f"""\
        jobs:
          twice:
            function: noisy_job:double
            mode: {mode}
            workers: 1
            args: [21]
    """))
    return path


def invalid_config(tmp_path: Path, name: str = "bad.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent("""\
        jobs:
          a:
            function: tests.tasks:square
            mode: cluster
    """))
    return path


def run_folders(tmp_path: Path) -> list[Path]:
    logs = tmp_path / "logs"
    return sorted(p for p in logs.iterdir() if p.is_dir() and not p.is_symlink()
                  and not p.name.startswith(".")) if logs.exists() else []


BAD_MODE = {"line": 4, "column": 11, "path": "jobs.a.mode",
            "message": "'cluster' is not one of serial, thread, process, pool, dask"}


# -- --json: import-time prints ------------------------------------------------------


@pytest.mark.parametrize(("command", "configs"), [
    ("run", 1), ("run", 2), ("validate", 1), ("validate", 2)])
def test_json_job_modules_import_time_prints_go_to_stderr(run_cli, tmp_path, start_method,
                                                          command, configs):
    """What a job module prints when imported (loading the config, and in workers) goes
    to stderr: stdout is exactly one JSON document, for run and validate, one config or
    several, under every start method."""
    paths = [str(noisy_config(tmp_path, f"c{i}.yaml")) for i in range(configs)]
    args = ["--start-method", start_method] if command == "run" else []
    result = run_cli(command, *paths, "--json", *args)
    assert result.code == 0, result
    doc = json.loads(result.stdout)  # the whole of stdout parses
    docs = doc if configs > 1 else [doc]
    assert isinstance(doc, list) == (configs > 1)
    assert [d["config"] for d in docs] == paths
    if command == "run":
        assert [d["jobs"][0]["results"] for d in docs] == [[42]] * configs
    else:
        assert docs == [{"config": p, "status": "ok", "exit_code": 0, "jobs": ["twice"],
                         "errors": []} for p in paths]
    assert "noisy module imported" not in result.stdout
    assert "noisy module imported" in result.stderr


def test_validate_without_json_also_keeps_import_time_prints_off_stdout(run_cli, tmp_path):
    """validate's stdout is its verdict, one line per config, with or without --json."""
    path = noisy_config(tmp_path, "c.yaml")
    result = run_cli("validate", str(path))
    assert result.code == 0, result
    assert result.stdout == f"{path}: ok (1 job: twice)\n"
    assert "noisy module imported" in result.stderr


# -- --json: invalid configs ---------------------------------------------------------


def test_validate_json_invalid_config_document(run_cli, tmp_path):
    """`validate --json` of an invalid config: one document with every located problem,
    exit 2; the FILE:LINE:COL lines still go to stderr."""
    bad = invalid_config(tmp_path)
    result = run_cli("validate", str(bad), "--json")
    assert result.code == 2, result
    assert result.json() == {"config": str(bad), "status": "invalid", "exit_code": 2,
                             "errors": [{"file": str(bad), **BAD_MODE}]}
    assert f"{bad}:4:11: jobs.a.mode: 'cluster' is not one of" in result.stderr


def test_validate_json_several_configs_is_a_list_valid_ones_ok(run_cli, tmp_path):
    """With several configs, one entry each in order: a valid one is `ok` with its jobs
    even when another is invalid (validation is per config); exit 2."""
    bad = invalid_config(tmp_path)
    result = run_cli("validate", "configs/lock.yaml", str(bad), "--json")
    assert result.code == 2, result
    assert result.json() == [
        {"config": "configs/lock.yaml", "status": "ok", "exit_code": 0, "jobs": ["add"],
         "errors": []},
        {"config": str(bad), "status": "invalid", "exit_code": 2,
         "errors": [{"file": str(bad), **BAD_MODE}]},
    ]


def test_run_json_invalid_config_is_one_document_nothing_run(run_cli, tmp_path):
    bad = invalid_config(tmp_path)
    result = run_cli(str(bad), "--json")
    assert result.code == 2, result
    assert result.json() == {"config": str(bad), "status": "invalid", "exit_code": 2,
                             "errors": [{"file": str(bad), **BAD_MODE}]}
    assert f"{bad}:4:11: jobs.a.mode:" in result.stderr
    assert "Traceback" not in result.stderr
    assert run_folders(tmp_path) == []


def test_run_json_one_invalid_of_several_runs_nothing_valid_ones_not_run(run_cli, tmp_path):
    """A valid config given with an invalid one is not run: its entry says `not_run`
    with the command's exit code 2; the invalid one's entry lists its problems."""
    good = noisy_config(tmp_path, "good.yaml", mode="serial")
    bad = invalid_config(tmp_path)
    result = run_cli(str(good), str(bad), "--json")
    assert result.code == 2, result
    assert result.json() == [
        {"config": str(good), "status": "not_run", "exit_code": 2, "errors": []},
        {"config": str(bad), "status": "invalid", "exit_code": 2,
         "errors": [{"file": str(bad), **BAD_MODE}]},
    ]
    assert run_folders(tmp_path) == []


def test_run_json_secret_in_a_config_error_is_masked(run_cli, tmp_path):
    secret = "s3cr3t-value-for-json"
    path = tmp_path / "secret.yaml"
    path.write_text('jobs:\n  j: {function: tests.tasks:echo, workers: "${MY_API_TOKEN}"}\n')
    result = run_cli(str(path), "--json", env={"MY_API_TOKEN": secret})
    assert result.code == 2, result
    (error,) = result.json()["errors"]
    assert error["path"] == "jobs.j.workers"
    assert "***" in error["message"]
    assert secret not in result.stdout + result.stderr


# -- --json: usage errors ------------------------------------------------------------


def test_json_unknown_only_job_checked_in_every_config_before_any_runs(run_cli, tmp_path,
                                                                       write_config):
    """--only names a job of the first config but not of the second: nothing runs (the
    first used to run before the second was refused); the second's entry says why."""
    marker = tmp_path / "ran"
    (tmp_path / "marking.py").write_text(
        "from pathlib import Path\n\n\ndef touch(path):\n    Path(path).touch()\n")
    first = write_config(f"""\
        jobs:
          touch: {{function: "marking:touch", mode: serial, args: ["{marker}"]}}
    """, name="first.yaml")
    second = write_config("jobs:\n  other: {function: tests.tasks:square, args: [2]}\n",
                          name="second.yaml")
    result = run_cli(str(first), str(second), "--only", "touch", "--json")
    assert result.code == 2, result
    message = f"--only: no job named 'touch' in {second} (jobs: other)"
    assert result.json() == [
        {"config": str(first), "status": "not_run", "exit_code": 2, "errors": []},
        {"config": str(second), "status": "invalid", "exit_code": 2,
         "errors": [{"file": str(second), "line": None, "column": None, "path": "",
                     "message": message}]},
    ]
    assert f"mprun: error: {message}" in result.stderr
    assert not marker.exists()
    assert run_folders(tmp_path) == []


def test_json_unknown_only_job_one_config(run_cli):
    result = run_cli("configs/pool.yaml", "--only", "nope", "--json")
    assert result.code == 2, result
    doc = result.json()
    assert (doc["config"], doc["status"], doc["exit_code"]) == ("configs/pool.yaml",
                                                                "invalid", 2)
    assert doc["errors"][0]["message"].startswith("--only: no job named 'nope'")


@pytest.mark.parametrize(("args", "message"), [
    (["configs/pool.yaml", "--wait", "soon"],
     "argument --wait: expected a number of seconds >= 0, got 'soon'"),
    (["configs/pool.yaml", "--force"], "--force goes with --resume RUN_ID"),
    (["configs/pool.yaml", "configs/lock.yaml", "--resume", "latest"],
     "--resume takes one config: a run id belongs to one config's run"),
    (["validate", "configs/pool.yaml", "--no-such-option"],
     "unrecognized arguments: --no-such-option"),
])
def test_json_command_line_errors_are_one_document_without_config(run_cli, args, message):
    """A command line that is wrong as a whole is one document for the command (no
    `config` key, even with several configs), exit 2; stderr keeps argparse's usage."""
    result = run_cli(*args, "--json")
    assert result.code == 2, result
    assert result.json() == {"status": "invalid", "exit_code": 2, "errors": [
        {"file": None, "line": None, "column": None, "path": "", "message": message}]}
    assert message in result.stderr


def test_command_line_errors_without_json_leave_stdout_empty(run_cli):
    result = run_cli("configs/pool.yaml", "--wait", "soon")
    assert (result.code, result.stdout) == (2, "")
    assert "usage: mprun run" in result.stderr


INTERRUPTING = '''\
import os
import signal


def interrupt_runner():
    os.kill(os.getpid(), signal.SIGINT)  # serial mode: the runner's own process
    return "done"
'''


def test_json_interrupted_run_lists_later_configs_as_not_run(run_cli, tmp_path):
    """A SIGINT during the first config's run: its document is `interrupted` (130), the
    second config is not started and its entry says `not_run` with exit code 130."""
    (tmp_path / "interrupting.py").write_text(INTERRUPTING)
    first = tmp_path / "first.yaml"
    first.write_text("jobs:\n  stop: {function: 'interrupting:interrupt_runner', "
                     "mode: serial}\n")
    second = noisy_config(tmp_path, "second.yaml", mode="serial")
    result = run_cli(str(first), str(second), "--json")
    assert result.code == 130, result
    docs = result.json()
    assert [(d["config"], d["status"], d["exit_code"]) for d in docs] == [
        (str(first), "interrupted", 130), (str(second), "not_run", 130)]
    assert len(run_folders(tmp_path)) == 1


# -- --quiet -------------------------------------------------------------------------


FAILING = """\
    jobs:
      items:
        function: tests.tasks:fail_on
        mode: {mode}
        workers: 2
        map: [1, 2, 3, 4, 5]
        kwargs: {{bad: {bad}}}
      later:
        function: tests.tasks:square
        mode: serial
        args: [5]
"""


@pytest.mark.parametrize("mode", MODES)
def test_quiet_prints_each_failed_task_line_on_stderr_only(run_cli, write_config, mode):
    """--quiet: stdout empty; stderr exactly one `mprun: JOB[TASK] failed: Type: message`
    line per failed task (task numbers from 0), in every mode; exit code 1 as before."""
    path = write_config(FAILING.format(mode=mode, bad=3))
    result = run_cli(str(path), "--quiet")
    assert result.code == 1, result
    assert result.stdout == ""
    assert result.stderr.splitlines() == ["mprun: items[2] failed: ValueError: bad item 3"]


def test_quiet_several_failures_retries_and_job_level_failures(run_cli, write_config):
    """Every failed task has its line (after retries: how many attempts); a failure of
    the job itself (its reduce) has a line without a task number."""
    path = write_config("""\
        jobs:
          items:
            function: tests.tasks:always_fail
            mode: pool
            workers: 2
            repeat: 2
            retries: 1
          summed:
            function: tests.tasks:echo
            mode: serial
            args: [x]
            reduce: sum
    """)
    result = run_cli(str(path), "--quiet")
    assert result.code == 1, result
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert lines[:2] == [
        "mprun: items[0] failed: RuntimeError: this task always fails (after 2 attempts)",
        "mprun: items[1] failed: RuntimeError: this task always fails (after 2 attempts)"]
    assert len(lines) == 3
    assert lines[2].startswith("mprun: summed failed: TypeError: reduce failed: ")


def test_quiet_a_multi_line_message_stays_one_line(run_cli, write_config, tmp_path):
    (tmp_path / "multiline.py").write_text(
        "def fail():\n    raise ValueError('first line\\nsecond line')\n")
    path = write_config("jobs:\n  j: {function: 'multiline:fail', mode: serial}\n")
    result = run_cli(str(path), "--quiet")
    assert result.code == 1, result
    assert result.stderr == "mprun: j[0] failed: ValueError: first line\\nsecond line\n"


def test_quiet_success_prints_nothing(run_cli):
    result = run_cli("configs/pool.yaml", "--quiet")
    assert (result.code, result.stdout, result.stderr) == (0, "", "")


def test_quiet_several_configs_prefix_each_line_with_its_config(run_cli, write_config):
    one = write_config(FAILING.format(mode="serial", bad=2), name="one.yaml")
    two = write_config(FAILING.format(mode="pool", bad=4), name="two.yaml")
    result = run_cli(str(one), str(two), "--quiet")
    assert result.code == 1, result
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        f"mprun: {one}: items[1] failed: ValueError: bad item 2",
        f"mprun: {two}: items[3] failed: ValueError: bad item 4"]


TOKEN = "tok-quiet-9f8e7d6c5b"


@pytest.mark.parametrize("mode", ["serial", "pool"])
def test_quiet_masks_secret_values_in_failure_lines(run_cli, write_config, mode):
    path = write_config(f"""\
        jobs:
          conn:
            function: tests.tasks:connect
            mode: {mode}
            kwargs: {{dsn: "pg://u:${{MY_API_TOKEN}}@db", auth: "${{MY_API_TOKEN}}", fail: true}}
    """)
    result = run_cli(str(path), "--quiet", env={"MY_API_TOKEN": TOKEN})
    assert result.code == 1, result
    assert result.stderr.splitlines() == [
        "mprun: conn[0] failed: ValueError: cannot connect to pg://u:***@db with ***"]
    assert TOKEN not in result.stdout + result.stderr


def test_quiet_with_json_document_on_stdout_failure_lines_on_stderr(run_cli, write_config):
    path = write_config(FAILING.format(mode="pool", bad=3))
    result = run_cli(str(path), "--quiet", "--json")
    assert result.code == 1, result
    assert result.json()["jobs"][0]["errors"][0]["task"] == 2
    assert result.stderr.splitlines() == ["mprun: items[2] failed: ValueError: bad item 3"]


# -- the human summary: values as JSON writes them -------------------------------------


def summary(results: list, *, reduced: object = None, shared: dict | None = None) -> str:
    job = JobReport(name="j", mode="serial", workers=1, status="ok", tasks=len(results),
                    ok=len(results), failed=0, seconds=0.5, results=results, reduced=reduced)
    return render(RunReport(run_id="r", config="c.yaml", status="ok", exit_code=0,
                            seconds=0.5, log_dir=None, jobs=[job], shared=shared or {}))


def line_of(text: str, start: str) -> str:
    return next(line.strip() for line in text.splitlines() if line.strip().startswith(start))


def test_summary_writes_values_as_json_does():
    """null, true, "text", numbers as they are, tuples as lists, mappings with ": ";
    a value JSON cannot hold as itself is its repr (bare at the top, as a JSON string
    inside a container, as in --json)."""
    text = summary([None, True, "it's", 1.5, 10**30, (1, 2), {"a": None}, float("nan"),
                    frozenset({1}), [frozenset({2})]],
                   reduced={"total": 3}, shared={"done": False, "counter": 40, "name": "x"})
    assert line_of(text, "results:") == (
        'results: [null, true, "it\'s", 1.5, 1000000000000000000000000000000, [1, 2], '
        '{"a": null}, null, frozenset({1}), ["frozenset({2})"]]')
    assert line_of(text, "reduced:") == 'reduced: {"total": 3}'
    assert line_of(text, "done =") == "done = false"
    assert line_of(text, "counter =") == "counter = 40"
    assert line_of(text, "name =") == 'name = "x"'


def test_summary_strings_keep_commas_colons_and_quotes_inside():
    text = summary(['a, b: "c"', {"k, x": "v: w"}])
    assert line_of(text, "results:") == \
        'results: ["a, b: \\"c\\"", {"k, x": "v: w"}]'


def test_summary_shortens_long_values_as_before():
    text = summary(["x" * 1000, list(range(100)), {"big": list(range(1000))}])
    shown = line_of(text, "results:")
    assert shown == ('results: ["' + "x" * 56 + '..., [0, 1, 2, 3, 4, 5, 6, 7, 8, 9... '
                     '(100 items)], {"big": [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13,'
                     ' 14...]')


TOUCHED: list[int] = []


class Watched:
    """Records each time it is written out (repr), to show what the summary touched."""

    def __init__(self, number: int) -> None:
        self.number = number

    def __repr__(self) -> str:
        TOUCHED.append(self.number)
        return f"Watched({self.number})"


def test_summary_never_writes_a_huge_nested_list_whole():
    """A result holding 10^7 items (in a mapping, in a short list) is previewed: items
    past what 60 characters can show are never written out."""
    TOUCHED.clear()
    huge = [Watched(i) for i in range(10**6)]
    text = summary([{"data": huge}, [huge], huge])
    assert len(TOUCHED) < 200, "only the shown items are written"
    assert line_of(text, "results:").startswith('results: [{"data": ["Watched(0)", ')
    assert "(1,000,000 items)]" in text


class Broken:
    def __repr__(self) -> str:
        raise RuntimeError("detached")


def test_summary_a_result_whose_repr_raises_still_renders():
    text = summary([Broken(), [Broken()]])
    assert line_of(text, "results:") == (
        'results: [<Broken: __repr__ raised RuntimeError>, '
        '["<Broken: __repr__ raised RuntimeError>"]]')


def test_summary_error_lines_are_unchanged_and_masked():
    job = JobReport(name="j", mode="pool", workers=2, status="failed", tasks=2, ok=1,
                    failed=1, seconds=0.1, results=["ok", None],
                    errors=[TaskError(task=1, type="ValueError", message="bad")])
    text = render(RunReport(run_id="r", config="c.yaml", status="failed", exit_code=1,
                            seconds=0.1, log_dir=None, jobs=[job], shared={}))
    assert line_of(text, "results:") == 'results: ["ok", null]'
    assert "task 1 failed: ValueError: bad" in text


def test_json_locked_config_has_its_document_the_others_still_run(run_cli, tmp_path):
    """A config whose lock another run holds: its entry is `locked` with exit code 75
    and the holder's message; the other config runs; the command exits 75."""
    from runner import runlock

    locked = noisy_config(tmp_path, "locked.yaml", mode="serial")
    free = noisy_config(tmp_path, "free.yaml", mode="serial")
    with runlock.locked(tmp_path / "logs", str(locked)):  # the test process holds it
        result = run_cli(str(locked), str(free), "--json")
    assert result.code == 75, result
    first, second = result.json()
    assert (first["config"], first["status"], first["exit_code"]) == (str(locked), "locked", 75)
    assert "is already running" in first["errors"][0]["message"]
    assert (second["config"], second["status"], second["jobs"][0]["results"]) == (
        str(free), "ok", [42])


def test_json_on_stdout_is_summary_json_byte_for_byte(tmp_path: Path):
    """The document is serialised once: ``--json`` prints the bytes of ``summary.json``,
    a reduced sum beyond 64 bits included."""
    import subprocess
    import sys

    config = tmp_path / "big.yaml"
    config.write_text(textwrap.dedent("""\
        jobs:
          cubes:
            function: tests.tasks:square
            mode: serial
            map: [10000000000, 20000000000]
            reduce: sum
        """))
    done = subprocess.run([sys.executable, "-m", "runner", str(config), "--json", "--quiet",
                           "--log-dir", str(tmp_path / "logs")],
                          capture_output=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr
    summary = (tmp_path / "logs" / "latest" / "summary.json").read_bytes()
    assert done.stdout == summary
    assert json.loads(summary)["jobs"][0]["reduced"] == 5 * 10**20
