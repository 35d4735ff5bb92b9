"""``--resume RUN_ID``: only the tasks that did not succeed run again; results are merged.

Tasks here are ``tests.tasks:tally``, which leaves a file per call, so each test
sees exactly which tasks a run ran.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from runner.log import read_jsonl
from runner.resume import _match_tasks
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(90)

CONFIG = """
    jobs:
      squares:
        function: tests.tasks:tally
        mode: {mode}
        workers: 2
        args: [CALLS, FLAG]
        map: {items}
"""

# A second job whose calls are tallied too.
MORE = """
      more:
        function: tests.tasks:tally
        mode: serial
        args: [CALLS]
        map: [7, 8]
"""


class Runs:
    """Runs of one config; ``calls()`` says which items the last run ran."""

    def __init__(self, tmp_path: Path, run_cli) -> None:
        self.tmp = tmp_path
        self.run_cli = run_cli
        self.calls_dir = tmp_path / "calls"
        self.calls_dir.mkdir()
        self.flag = tmp_path / "flag"
        self.config = tmp_path / "config.yaml"

    def write(self, text: str) -> None:
        self.config.write_text(text.replace("CALLS", str(self.calls_dir))
                               .replace("FLAG", str(self.flag)))

    def run(self, *args: str, code: int | None = None):
        for call in self.calls_dir.iterdir():
            call.unlink()
        result = self.run_cli(str(self.config), "--json", *args)
        if code is not None:
            assert result.code == code, result
        return result

    def calls(self) -> list[int | str]:
        items = [call.name.rsplit("-", 1)[0] for call in self.calls_dir.iterdir()]
        return sorted(int(item) if item.lstrip("-").isdigit() else item for item in items)

    def folders(self) -> list[str]:
        logs = self.tmp / "logs"
        return sorted(p.name for p in logs.iterdir() if p.is_dir() and not p.is_symlink()
                      and not p.name.startswith("."))


@pytest.fixture
def runs(tmp_path, run_cli) -> Runs:
    return Runs(tmp_path, run_cli)


@pytest.mark.parametrize("mode", ["serial", "thread", "process", "pool"])
def test_only_the_failed_tasks_run_again_and_results_are_merged(runs, mode):
    runs.write(CONFIG.format(mode=mode, items="{range: 10}"))
    runs.flag.touch()
    first = runs.run(code=1).json()
    assert first["jobs"][0]["failed"] == 4
    runs.flag.unlink()

    second = runs.run("--resume", first["run_id"], code=0).json()
    assert runs.calls() == [0, 3, 6, 9]
    job = second["jobs"][0]
    assert job["results"] == [x * x for x in range(10)]
    assert (job["ok"], job["failed"], job["reused"], job["not_run"]) == (10, 0, 6, 0)
    assert second["resumed_from"] == first["run_id"]
    assert second["resume_notes"] == []

    # The resumed run's journal holds every result, so it can be resumed in turn.
    third = runs.run("--resume", "latest", code=0).json()
    assert runs.calls() == []
    assert third["jobs"][0]["reused"] == 10
    assert third["jobs"][0]["results"] == [x * x for x in range(10)]
    assert third["resumed_from"] == second["run_id"]


def test_a_killed_run_resumes_from_what_its_journal_kept(runs, tmp_path):
    """SIGKILL leaves no summary; the journal alone says what finished."""
    runs.write(CONFIG.format(mode="pool", items="{range: 40}")
               .replace("workers: 2", "workers: 2\n        chunksize: 1")
               .replace("tests.tasks:tally", "tests.tasks:tally_slowly"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", str(runs.config), "--log-dir", str(tmp_path / "logs")],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    journal = tmp_path / "logs" / "latest" / "results.jsonl"
    deadline = time.monotonic() + 30
    while not (journal.exists() and len(journal.read_bytes().splitlines()) >= 3):
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=10)
    (killed,) = runs.folders()
    assert not (tmp_path / "logs" / killed / "summary.json").exists()
    kept = {line["task"] for line in read_jsonl(journal) if line["status"] == "ok"}
    assert 3 <= len(kept) < 40

    doc = runs.run("--resume", killed, code=0).json()
    assert runs.calls() == sorted(set(range(40)) - kept)
    assert doc["jobs"][0]["results"] == [x * x for x in range(40)]
    assert doc["jobs"][0]["reused"] == len(kept)


def test_an_interrupted_run_resumes_with_the_tasks_it_never_started(runs, tmp_path):
    runs.write(CONFIG.format(mode="pool", items="{range: 30}")
               .replace("workers: 2", "workers: 2\n        chunksize: 1")
               .replace("tests.tasks:tally", "tests.tasks:tally_slowly"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "runner", str(runs.config), "--json", "--log-dir",
         str(tmp_path / "logs")], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 30
    while len(list(runs.calls_dir.iterdir())) < 4:
        assert time.monotonic() < deadline and proc.poll() is None
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    stdout, _ = proc.communicate(timeout=30)
    assert proc.returncode == 130
    first = json.loads(stdout)
    done = first["jobs"][0]["ok"]
    assert 0 < done < 30 and first["jobs"][0]["not_run"] == 30 - done

    second = runs.run("--resume", first["run_id"], code=0).json()
    assert len(runs.calls()) == 30 - done
    assert second["jobs"][0]["results"] == [x * x for x in range(30)]


def test_reordered_tasks_run_nothing_again(runs):
    runs.write(CONFIG.format(mode="pool", items="[1, 2, 3, 4, 5, 6]"))
    runs.flag.touch()
    first = runs.run(code=1).json()
    runs.flag.unlink()
    runs.write(CONFIG.format(mode="pool", items="[6, 5, 4, 3, 2, 1]"))
    second = runs.run("--resume", first["run_id"], code=0).json()
    assert runs.calls() == [3, 6], "only the tasks that failed ran"
    assert second["jobs"][0]["results"] == [36, 25, 16, 9, 4, 1]
    assert second["jobs"][0]["reused"] == 4
    assert second["resume_notes"] == []


def test_changed_tasks_are_refused_unless_forced(runs):
    runs.write(CONFIG.format(mode="pool", items="[1, 2, 3, 4]"))
    first = runs.run(code=0).json()
    runs.write(CONFIG.format(mode="pool", items="[1, 2, 30, 40, 50]"))
    before = runs.folders()

    refused = runs.run("--resume", first["run_id"], code=2)
    # --json: stdout is one document, the refusal as an invalid run (#10 point 9).
    assert (refused.json()["status"], refused.json()["exit_code"]) == ("invalid", 2)
    assert "the tasks changed since that run" in refused.json()["errors"][0]["message"]
    assert f"--resume {first['run_id']}: the tasks changed since that run" in refused.stderr
    assert "jobs.squares: 3 tasks new or changed, 2 earlier tasks gone" in refused.stderr
    assert "--force" in refused.stderr
    assert runs.calls() == [] and runs.folders() == before, "something ran"

    forced = runs.run("--resume", first["run_id"], "--force", code=0).json()
    assert runs.calls() == [30, 40, 50]
    assert forced["jobs"][0]["results"] == [1, 4, 900, 1600, 2500]
    assert forced["resume_notes"] == ["jobs.squares: 3 tasks new or changed, "
                                      "2 earlier tasks gone"]


def test_a_changed_function_or_argument_is_a_changed_task(runs):
    runs.write(CONFIG.format(mode="serial", items="[1, 2]"))
    first = runs.run(code=0).json()
    runs.write(CONFIG.format(mode="serial", items="[1, 2]").replace("tally", "echo"))
    result = runs.run("--resume", first["run_id"], code=2)
    assert "2 tasks new or changed, 2 earlier tasks gone" in result.stderr
    runs.write(CONFIG.format(mode="serial", items="[1, 2]").replace("FLAG", "other"))
    result = runs.run("--resume", first["run_id"], code=2)
    assert "jobs.squares" in result.stderr


def test_other_settings_may_change(runs):
    """Workers, mode and retries are not what a task is: a resume keeps its results."""
    runs.write(CONFIG.format(mode="pool", items="{range: 6}"))
    runs.flag.touch()
    first = runs.run(code=1).json()
    runs.flag.unlink()
    runs.write(CONFIG.format(mode="thread", items="{range: 6}").replace(
        "workers: 2", "workers: 3\n        retries: 1\n        chunksize: 1"))
    second = runs.run("--resume", first["run_id"], code=0).json()
    assert runs.calls() == [0, 3]
    assert second["jobs"][0]["mode"] == "thread"


def test_a_removed_job_or_another_config_is_a_change(runs, write_config):
    two_jobs = CONFIG.format(mode="serial", items="[1]") + """
      more:
        function: tests.tasks:square
        mode: serial
        args: [3]
"""
    runs.write(two_jobs)
    first = runs.run(code=0).json()
    runs.write(CONFIG.format(mode="serial", items="[1]"))
    result = runs.run("--resume", first["run_id"], code=2)
    assert f"job 'more' of run {first['run_id']} is not in the config" in result.stderr

    other = write_config(two_jobs.replace("CALLS", str(runs.calls_dir))
                         .replace("FLAG", str(runs.flag)), name="other.yaml")
    result = runs.run_cli(str(other), "--resume", first["run_id"])
    assert result.code == 2, result
    assert f"was of {runs.config}, not {other}" in result.stderr


def test_only_jobs_not_in_the_earlier_run_run_in_full(runs):
    text = CONFIG.format(mode="serial", items="[1, 2]") + MORE
    runs.write(text)
    first = runs.run("--only", "squares", code=0).json()
    second = runs.run("--resume", first["run_id"], code=0).json()
    assert runs.calls() == [7, 8]
    assert [job["reused"] for job in second["jobs"]] == [2, 0]


def test_compare_jobs_run_again_in_full(runs):
    runs.write(CONFIG.format(mode="serial", items="[1, 2]").replace(
        "mode: serial", "compare: [serial, thread]"))
    first = runs.run(code=0).json()
    second = runs.run("--resume", first["run_id"], code=0).json()
    assert runs.calls() == [1, 1, 2, 2]
    assert second["jobs"][0]["reused"] == 0


@pytest.mark.parametrize(("args", "message"), [
    (["--resume", "nope"], "--resume: no run 'nope' under"),
    (["--resume", "../x"], "is not a run id"),
    (["--force"], "--force goes with --resume RUN_ID"),
])
def test_bad_resume_requests_exit_2(runs, args, message):
    runs.write(CONFIG.format(mode="serial", items="[1]"))
    result = runs.run(*args, code=2)
    assert message in result.stderr
    assert runs.calls() == []


def test_resume_takes_one_config(run_cli):
    result = run_cli("configs/pool.yaml", "configs/process.yaml", "--resume", "latest")
    assert result.code == 2
    assert "--resume takes one config" in result.stderr


def test_a_folder_without_a_manifest_is_refused(runs, tmp_path):
    runs.write(CONFIG.format(mode="serial", items="[1]"))
    (tmp_path / "logs" / "20200101T000000Z-beef").mkdir(parents=True)
    result = runs.run("--resume", "20200101T000000Z-beef", code=2)
    assert "has no tasks.json" in result.stderr


# -- matching, unit level ------------------------------------------------------


def _entry(items: list[object]) -> dict[str, object]:
    return {"function": "m:f", "kind": "tasks", "args": [], "kwargs": {}, "unpack": False,
            "items": items}


def test_identical_calls_stay_separate():
    """Three identical calls of which two succeeded: a reordered run reuses two, not three."""
    old = _entry([[[1], {}], [[1], {}], [[1], {}], [[2], {}]])
    new = _entry([[[2], {}], [[1], {}], [[1], {}], [[1], {}]])
    reused, change = _match_tasks(old, new, {0: "a0", 2: "a2"})
    assert change == ""
    assert reused == {1: "a0", 2: "a2"}


def test_keyword_order_does_not_make_a_task_new():
    old = _entry([[[], {"a": 1, "b": 2}]])
    new = _entry([[[], {"b": 2, "a": 1}]])
    assert _match_tasks(old, new, {0: "v"}) == ({0: "v"}, "")


def test_tasks_json_masks_secrets_and_resume_still_matches(runs, tmp_path):
    """tasks.json holds arguments, so it masks secrets as the logs do; a resume with the
    same secret matches every task."""
    secret = "s3cr3t-value-42"
    runs.write("""
    jobs:
      squares:
        function: tests.tasks:tally
        mode: serial
        args: [CALLS, FLAG]
        map: [3, 4, "${MY_API_TOKEN}"]
""")
    runs.flag.touch()
    first = runs.run_cli(str(runs.config), "--json", env={"MY_API_TOKEN": secret})
    assert first.code == 1, first
    manifest = (tmp_path / "logs" / first.json()["run_id"] / "tasks.json").read_text()
    assert secret not in manifest and "***" in manifest
    runs.flag.unlink()
    for call in runs.calls_dir.iterdir():
        call.unlink()
    second = runs.run_cli(str(runs.config), "--json", "--resume", "latest",
                          env={"MY_API_TOKEN": secret})
    assert second.code == 0, second
    assert runs.calls() == [3]
    assert second.json()["jobs"][0]["results"] == [9, 16, secret]


def test_a_job_that_now_compares_modes_runs_in_full(runs):
    runs.write(CONFIG.format(mode="serial", items="[1, 2]"))
    first = runs.run(code=0).json()
    runs.write(CONFIG.format(mode="serial", items="[1, 2]").replace(
        "mode: serial", "compare: [serial, thread]"))
    second = runs.run("--resume", first["run_id"], code=0).json()
    assert runs.calls() == [1, 1, 2, 2]
    assert second["jobs"][0]["reused"] == 0


def test_a_resumed_run_stopped_early_keeps_every_reused_result(runs):
    """Run 2 reuses results of two jobs but stops at the first (on_error: stop); run 3,
    resuming run 2, still reuses the second job's results from run 1."""
    text = CONFIG.format(mode="serial", items="[1, 2, 3]").replace(
        "workers: 2", "workers: 2\n        on_error: stop") + MORE
    runs.write(text)
    runs.flag.touch()
    first = runs.run(code=1).json()
    assert first["not_run"] == ["more"]
    runs.flag.unlink()
    second = runs.run("--only", "more", code=0).json()  # a separate run fills in "more"
    runs.flag.touch()
    third = runs.run("--resume", second["run_id"], code=1).json()
    assert third["not_run"] == ["more"]
    runs.flag.unlink()
    fourth = runs.run("--resume", third["run_id"], code=0).json()
    assert runs.calls() == [3]
    assert [job["reused"] for job in fourth["jobs"]] == [2, 2]


def test_results_json_cannot_hold_run_again(runs):
    """A result written as its repr (a complex number) is not reused as a string."""
    runs.write("""
    jobs:
      z:
        function: tests.tasks:complex_of
        mode: serial
        map: [1, 2]
        reduce: sum
      fine:
        function: tests.tasks:tally
        mode: serial
        args: [CALLS]
        map: [5]
""")
    first = runs.run(code=0).json()
    second = runs.run("--resume", first["run_id"], code=0).json()
    assert runs.calls() == []
    z, fine = second["jobs"]
    assert (z["reused"], fine["reused"]) == (0, 1)
    assert z["reduced"] == "(3+3j)"


def test_journal_marks_values_json_would_change():
    """Such values are written, marked lossy, so that a resume runs their tasks again."""
    import dataclasses
    import datetime
    import json as json_module

    from runner.journal import _dump

    @dataclasses.dataclass
    class Point:
        x: int

    def line(value: object) -> dict[str, object]:
        return json_module.loads(_dump({"job": "j", "task": 0, "status": "ok", "value": value}))

    for changed in [complex(1, 2), {1, 2}, datetime.datetime(2024, 1, 2, 3, 4, 5),
                    Point(1), {(1, 2): 3}, [2**70, {3}]]:
        assert line(changed).get("lossy") is True, changed
    assert line(datetime.date(2024, 1, 2))["value"] == "2024-01-02"
    assert line(Point(1))["value"] == {"x": 1}
    for kept in [1, "a", [1, 2.5], {"a": [None, True]}, 2**70]:
        written = line(kept)
        assert "lossy" not in written and written["value"] == kept
