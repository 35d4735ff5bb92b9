"""What ``mprun run`` leaves for CI: --junit-xml (read back with junitparser), the
Markdown summary (--summary-md, $GITHUB_STEP_SUMMARY), ::error annotations under
GitHub Actions, --durations and ``slowest``, and each failure's type, message and attempts."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from junitparser import Error, Failure, JUnitXml, Skipped

# ok tasks, a raising task, a crashing worker and a timeout, in one run (fork: fast).
MIXED = """\
jobs:
  good: {function: "tests.ci_tasks:ok", mode: pool, workers: 2, map: {range: 20}, chunksize: 5}
  bad:
    function: "tests.ci_tasks:fails_on_odd"
    mode: pool
    workers: 2
    map: {range: 4}
  crashed: {function: "tests.ci_tasks:crash", mode: pool, workers: 1, map: [0, 1, 2]}
  slow: {function: "tests.ci_tasks:hang", mode: pool, workers: 1, map: [0, 1], timeout: 0.5}
"""

STOPS = """\
jobs:
  first:
    function: "tests.ci_tasks:fails_on_odd"
    mode: pool
    workers: 1
    chunksize: 1
    on_error: stop
    map: {range: 6}
  later: {function: "tests.ci_tasks:ok", mode: serial, map: [1]}
"""

SLEEPS = """\
jobs:
  naps: {function: "tests.ci_tasks:sleep_for", mode: pool, workers: 2,
         map: [0.0, 0.3, 0.0, 0.2, 0.0, 0.1], chunksize: 1}
"""

FORK = ("--start-method", "fork")


def _cases(path: Path) -> dict[str, dict[str, object]]:
    """Each testcase of the JUnit file: its suite, time and result (None: passed)."""
    cases = {}
    for suite in JUnitXml.fromfile(str(path)):
        for case in suite:
            cases[case.name] = {"suite": suite.name, "time": case.time,
                                "result": case.result[0] if case.result else None}
    return cases


@pytest.mark.timeout(60)
def test_junit_of_a_failing_run(run_cli, write_config, tmp_path):
    """Chunk lines as JOB[F-L], an exception a <failure>, a crash and a timeout an
    <error>; the file is written though the run failed (exit 1); the suites' counts."""
    xml = tmp_path / "out" / "junit.xml"
    xml.parent.mkdir()
    result = run_cli("run", str(write_config(MIXED)), "--junit-xml", str(xml), *FORK)
    assert result.code == 1, result
    cases = _cases(xml)
    assert [name for name in cases if name.startswith("good")] == [
        "good[0-4]", "good[5-9]", "good[10-14]", "good[15-19]"]
    assert all(cases[name]["result"] is None for name in ("good[0-4]", "bad[0]", "bad[2]"))
    failure = cases["bad[1]"]["result"]
    assert isinstance(failure, Failure) and failure.type == "ValueError"
    assert failure.message == "odd item 1: 100% bad, <a & b>\nsecond line"
    assert "Traceback" in failure.text and "fails_on_odd" in failure.text
    crash, timeout = cases["crashed[1]"]["result"], cases["slow[1]"]["result"]
    assert isinstance(crash, Error) and crash.type == "WorkerCrashed"
    assert isinstance(timeout, Error) and timeout.type == "TaskTimeout"
    assert float(cases["slow[1]"]["time"]) >= 0.4  # type: ignore[arg-type]
    suites = {suite.name: suite for suite in JUnitXml.fromfile(str(xml))}
    assert [(s.tests, s.failures, s.errors, s.skipped) for s in suites.values()] == [
        (4, 0, 0, 0), (4, 2, 0, 0), (3, 0, 1, 0), (2, 0, 1, 0)]
    assert float(suites["slow"].time) >= 0.4


@pytest.mark.timeout(30)
def test_junit_skips_what_on_error_stop_left(run_cli, write_config, tmp_path):
    xml = tmp_path / "junit.xml"
    result = run_cli("run", str(write_config(STOPS)), "--junit-xml", str(xml), *FORK)
    assert result.code == 1, result
    cases = _cases(xml)
    assert list(cases) == ["first[0]", "first[1]", "first[2-5]", "later"]
    assert isinstance(cases["first[1]"]["result"], Failure)
    assert isinstance(cases["first[2-5]"]["result"], Skipped)
    assert isinstance(cases["later"]["result"], Skipped)
    first = next(suite for suite in JUnitXml.fromfile(str(xml)) if suite.name == "first")
    assert (first.tests, first.failures, first.skipped) == (3, 1, 1)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("option", ["--junit-xml", "--summary-md"])
@pytest.mark.parametrize("where", ["missing folder", "a directory", "under a file",
                                   "read-only folder"])
def test_unwritable_path_is_exit_2_with_nothing_run(run_cli, write_config, tmp_path,
                                                    option, where):
    config = write_config(STOPS)
    readonly = tmp_path / "ro"
    readonly.mkdir()
    path = {"missing folder": tmp_path / "nope" / "out.xml", "a directory": tmp_path,
            "under a file": config / "out.xml", "read-only folder": readonly / "out.xml"}[where]
    if where == "read-only folder":
        if os.geteuid() == 0:
            pytest.skip("root writes into a read-only folder")
        readonly.chmod(0o555)
    result = run_cli("run", str(config), option, str(path), *FORK)
    assert result.code == 2, result
    assert result.stderr.startswith(f"mprun: error: {option} {path}: "), result.stderr
    assert len(result.stderr.splitlines()) == 1 and "Traceback" not in result.stderr
    assert not (tmp_path / "logs").exists()  # no run folder: nothing ran


@pytest.mark.timeout(30)
def test_step_summary_is_appended(run_cli, write_config, tmp_path):
    summary = tmp_path / "summary.md"
    summary.write_text("# earlier step\n")
    config = write_config(STOPS)
    env = {"GITHUB_STEP_SUMMARY": str(summary)}
    for _ in range(2):
        assert run_cli("run", str(config), *FORK, env=env).code == 1
    text = summary.read_text()
    assert text.startswith("# earlier step\n")
    assert text.count(f"mprun `{config}`: failed (exit 1)") == 2
    assert text.count("| first | pool | 6 | 1 | 1 |") == 2
    assert text.count("| later | | | | | not run |") == 2
    assert text.count("- `first[1]` ValueError: odd item 1") == 2
    md = tmp_path / "also.md"
    assert run_cli("run", str(config), *FORK, "--summary-md", str(md)).code == 1
    assert "**Failures**" in md.read_text() and "**Slowest**" in md.read_text()


@pytest.mark.timeout(30)
def test_github_error_annotations(run_cli, write_config):
    config = write_config(MIXED)
    result = run_cli("run", str(config), "--only", "bad", "--only", "crashed", *FORK,
                     env={"GITHUB_ACTIONS": "true"})
    assert result.code == 1, result
    errors = [line for line in result.stderr.splitlines() if line.startswith("::error")]
    prop = str(config).replace(":", "%3A").replace(",", "%2C")
    assert errors[:2] == [
        f"::error file={prop},line=3::bad[{n}] ValueError: odd item {n}: 100%25 bad, "
        "<a & b>%0Asecond line" for n in (1, 3)]
    assert errors[2].startswith(f"::error file={prop},line=8::crashed[1] WorkerCrashed: ")
    assert len(errors) == 3
    quiet = run_cli("run", str(config), "--only", "bad", *FORK)
    assert "::error" not in quiet.stderr  # only under GitHub Actions


@pytest.mark.timeout(30)
def test_durations_in_summary_and_json(run_cli, write_config):
    config = write_config(SLEEPS)
    result = run_cli("run", str(config), "--durations", "2", *FORK)
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    at = lines.index("  slowest:")
    assert [line.split()[0] for line in lines[at + 1:at + 3]] == ["naps[1]", "naps[3]"]
    assert not lines[at + 3].startswith("    naps[")
    doc = run_cli("run", str(config), "--durations", "2", "--json", *FORK).json()
    slowest = doc["jobs"][0]["slowest"]
    assert [entry["task"] for entry in slowest] == [1, 3]
    assert slowest[0]["seconds"] >= slowest[1]["seconds"] >= 0.2
    assert all(isinstance(entry["pid"], int) for entry in slowest)
    none = run_cli("run", str(config), "--durations", "0", "--json", *FORK).json()
    assert none["jobs"][0]["slowest"] == []


@pytest.mark.timeout(30)
def test_chunk_in_slowest_has_first_and_last(run_cli, write_config):
    config = write_config("""\
        jobs:
          chunked: {function: "tests.ci_tasks:ok", mode: pool, workers: 1,
                    map: {range: 10}, chunksize: 5}
        """)
    doc = run_cli("run", str(config), "--json", *FORK).json()
    slowest = doc["jobs"][0]["slowest"]
    assert sorted((entry["first"], entry["last"]) for entry in slowest) == [(0, 4), (5, 9)]


@pytest.mark.timeout(30)
def test_each_failure_has_its_type_message_and_attempts(run_cli, write_config):
    config = write_config(MIXED)
    result = run_cli("run", str(config), "--only", "bad", *FORK)
    assert result.code == 1, result
    failed = [line.strip() for line in result.stdout.splitlines() if " failed: " in line]
    assert [line.split(" failed:")[0] for line in failed] == ["task 1", "task 3"], result.stdout


@pytest.mark.timeout(30)
def test_junit_written_when_interrupted(write_config, tmp_path):
    """SIGINT mid-run: exit 130, and the file has the task that ran and the rest skipped."""
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT
    from tests.helpers import wait_until

    config = write_config("""\
        jobs:
          naps: {function: "tests.ci_tasks:sleep_for", mode: pool, workers: 1,
                 map: [0.0, 20, 20], chunksize: 1}
        """)
    xml = tmp_path / "junit.xml"
    proc = subprocess.Popen([sys.executable, "-m", "runner", "run", str(config), *FORK,
                             "--log-dir", str(tmp_path / "logs"), "--grace", "0",
                             "--junit-xml", str(xml)], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        wait_until(lambda: any(path.stat().st_size for path in
                               (tmp_path / "logs").glob("*/results.jsonl")),
                   what="the first task's journal line")
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 130
    finally:
        proc.kill()
        proc.wait()
    cases = _cases(xml)
    assert list(cases) == ["naps[0]", "naps[1-2]"]
    assert cases["naps[0]"]["result"] is None
    assert isinstance(cases["naps[1-2]"]["result"], Skipped)
