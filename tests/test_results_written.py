"""Results that cannot be written as JSON fail only their task, in every mode.

A result whose ``__repr__`` (or ``isoformat()``, or ``dataclasses.asdict()``)
raises, even ``SystemExit`` or a ``BaseException`` of its own, one holding such a
dict key, one that makes the exact JSON path raise, or one nested deeper than 255
levels (100,000 in serial and thread mode, where nothing pickles it) fails its own
task as ``ResultError``, with a message that names the problem. The rest of its
chunk keeps its results, later jobs run, ``summary.json``, the ``--json`` document
and the human summary are written, and ``--resume`` over that run completes. Never a
traceback. Each case runs the CLI as a subprocess, in every mode of the registry,
and under every start method in the modes that start processes.
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from runner.errors import Interrupted
from runner.executors import executor_for, modes
from runner.vet import MAX_DEPTH, problem, vet
from runner.work import Outcome
from tests.conftest import CLIResult
from tests.helpers import read_strict

pytestmark = pytest.mark.timeout(120)

IN_RUNNER = [mode for mode in modes() if executor_for(mode).in_runner_process]
# The modes whose workers come from the start method (dask's do not: once is enough).
BY_START_METHOD = [mode for mode in modes() if executor_for(mode).uses_start_method]

# kind (tests/written_tasks.py) -> what the failure's message says
CASES = {
    "repr": "the result's __repr__ raised ValueError: instance is not bound to a session",
    "repr_exit": "the result's __repr__ raised SystemExit: 3",
    "repr_base": "the result's __repr__ raised Abort: aborted",
    "repr_recursion": "the result's __repr__ raised RecursionError: maximum recursion depth",
    "key_repr": "the result holds a Key whose __repr__ raised ValueError: key of a closed",
    "asdict": "the result's dataclasses.asdict() raised TypeError: cannot copy a live",
    "isoformat": "the result's isoformat() raised ValueError: no time zone database",
    "unsized": "the result could not be written as JSON: ValueError: length unknown",
    "deep": f"the result is nested deeper than {MAX_DEPTH} levels",
    "very_deep": f"the result is nested deeper than {MAX_DEPTH} levels",
}
# Where pickle refuses first (tests/test_results_travel.py covers that message).
NOT_PICKLED = {"unsized": "cannot be sent back to the runner: ValueError: cannot iterate"}


def config(mode: str, kinds: list[str], chunksize: int = 4) -> str:
    """A job per kind (task 1's result is of that kind, in one chunk of 4), then a job
    that must still run."""
    jobs = "".join(
        f"  {kind}: {{function: 'tests.written_tasks:result_of', mode: {mode}, workers: 2, "
        f"chunksize: {chunksize}, map: [0, 1, 2, 3], kwargs: {{kind: {kind}}}}}\n"
        for kind in kinds)
    return f"jobs:\n{jobs}  later: {{function: 'tests.tasks:square', mode: {mode}, args: [3]}}\n"


def kinds_for(mode: str) -> list[str]:
    # 100,000 levels cannot be pickled at all: process modes fail it before the runner.
    return [kind for kind in CASES if kind != "very_deep" or mode in IN_RUNNER]


def says(kind: str, mode: str) -> str:
    return CASES[kind] if mode in IN_RUNNER else NOT_PICKLED.get(kind, CASES[kind])


def written(lines: list[dict[str, Any]]) -> dict[int, Any]:
    """task -> value, for the successes in journal ``lines`` (task and chunk lines)."""
    values = {line["task"]: line["value"] for line in lines
              if line["status"] == "ok" and "task" in line}
    values.update((task, value) for line in lines if "first" in line
                  for task, value in enumerate(line["values"], line["first"]))
    return values


def tmp_logs(config: Path) -> Path:
    return config.parent / "logs"  # where run_cli puts them


def run_dir(result: CLIResult) -> Path:
    return Path(result.json()["log_dir"])


def check_only_task_1_failed(result: CLIResult, mode: str, kinds: list[str]) -> None:
    """Exit 1, no traceback; each kind's job failed task 1 only, as ResultError with its
    message, in the --json document, summary.json and the journal; the later job ran."""
    assert result.code == 1, result
    assert "Traceback" not in result.stderr, result
    doc = result.json()
    assert json.loads((run_dir(result) / "summary.json").read_text()) == doc
    jobs = {job["name"]: job for job in doc["jobs"]}
    assert (jobs["later"]["status"], jobs["later"]["results"]) == ("ok", [9])
    lines = read_strict(run_dir(result) / "results.jsonl")
    for kind in kinds:
        job = jobs[kind]
        assert job["results"] == [0, None, 2, 3], (kind, job)
        ((error),) = job["errors"]
        assert (error["task"], error["type"]) == (1, "ResultError"), (kind, error)
        assert says(kind, mode) in error["message"], (kind, error["message"])
        mine = [line for line in lines if line["job"] == kind]
        failed = [line for line in mine if line["status"] == "failed"]
        assert [(line["task"], line["error"]["type"]) for line in failed] == [(1, "ResultError")]
        assert sorted(written(mine)) == [0, 2, 3], (kind, mine)


@pytest.mark.parametrize("mode", modes())
def test_a_result_that_cannot_be_written_fails_only_its_task(
        mode: str, run_cli: Callable[..., CLIResult], write_config: Callable[..., Path]) -> None:
    kinds = kinds_for(mode)
    result = run_cli("run", str(write_config(config(mode, kinds))), "--json")
    check_only_task_1_failed(result, mode, kinds)


@pytest.mark.parametrize("mode", BY_START_METHOD)
def test_a_result_that_cannot_be_written_fails_only_its_task_under_every_start_method(
        mode: str, start_method: str, run_cli: Callable[..., CLIResult],
        write_config: Callable[..., Path]) -> None:
    kinds = ["repr", "repr_exit", "deep"]
    result = run_cli("run", str(write_config(config(mode, kinds))), "--json",
                     "--start-method", start_method)
    check_only_task_1_failed(result, mode, kinds)


@pytest.mark.parametrize("mode", IN_RUNNER)
@pytest.mark.parametrize("chunksize", [1, 4], ids=["one-by-one", "one-chunk"])
def test_a_result_nested_100_000_deep_fails_only_its_task(
        mode: str, chunksize: int, run_cli: Callable[..., CLIResult],
        write_config: Callable[..., Path]) -> None:
    """In serial and thread mode nothing pickles the result: the runner writes it."""
    result = run_cli("run", str(write_config(config(mode, ["very_deep"], chunksize))),
                     "--json")
    check_only_task_1_failed(result, mode, ["very_deep"])


@pytest.mark.parametrize("mode", modes())
def test_resume_over_a_run_with_unwritable_results_completes(
        mode: str, run_cli: Callable[..., CLIResult], write_config: Callable[..., Path]) -> None:
    """The failed tasks run again (and fail again); the others are reused."""
    kinds = ["repr", "repr_exit", "deep"]
    path = write_config(config(mode, kinds))
    first = run_cli("run", str(path), "--json")
    check_only_task_1_failed(first, mode, kinds)
    second = run_cli("run", str(path), "--json", "--resume", first.json()["run_id"])
    assert second.code == 1, second
    assert "Traceback" not in second.stderr, second
    doc = second.json()
    assert doc["resumed_from"] == first.json()["run_id"]
    for job in doc["jobs"][:-1]:
        assert (job["reused"], job["results"]) == (3, [0, None, 2, 3]), job
        assert [error["task"] for error in job["errors"]] == [1], job
    assert doc["jobs"][-1]["results"] == [9]


HUMAN_CONFIG = """
jobs:
  detached: {function: 'tests.written_tasks:result_of', mode: serial, map: [0, 1, 2]}
  fine: {function: 'tests.written_tasks:fine_unsized', mode: serial, map: [0, 1]}
  reduced:
    function: tests.tasks:square
    mode: serial
    map: [1, 2]
    reduce: tests.written_tasks:reduce_to_detached
"""


def test_the_human_summary_and_the_quiet_lines_are_written(
        run_cli: Callable[..., CLIResult], write_config: Callable[..., Path]) -> None:
    """Without --json: the summary names the failure; a list subclass whose __len__ and
    __iter__ raise, which orjson writes from its items, is shown as those items; a
    reducer's unwritable value fails the job's reduce, not the run."""
    result = run_cli("run", str(write_config(textwrap.dedent(HUMAN_CONFIG))))
    assert result.code == 1, result
    assert "Traceback" not in result.stderr, result
    assert f"task 1 failed: ResultError: {CASES['repr']}" in result.stdout, result
    assert "results: [[0, 1], [1, 2]]" in result.stdout, result
    assert f"task -1 failed: ResultError: reduce failed: {CASES['repr']}" in result.stdout
    quiet = run_cli("run", str(write_config(textwrap.dedent(HUMAN_CONFIG))), "--quiet")
    assert quiet.code == 1, quiet
    assert f"mprun: detached[1] failed: ResultError: {CASES['repr']}" in quiet.stderr, quiet


def test_a_shared_value_that_cannot_be_written_is_a_note_in_the_summary(
        run_cli: Callable[..., CLIResult], write_config: Callable[..., Path]) -> None:
    """An object a task left in a shared queue is no result of a task: nothing fails, and
    the summary shows why it is not written."""
    path = write_config("""
        shared: {q: queue}
        jobs:
          leave: {function: 'tests.written_tasks:leave_detached', mode: serial, args: [!ref q]}
        """)
    for output in ("--json", "--quiet"):
        result = run_cli("run", str(path), output)
        assert (result.code, result.stdout if output == "--quiet" else "") == (0, ""), result
        assert "Traceback" not in result.stderr, result
    summary = json.loads((tmp_logs(path) / "latest" / "summary.json").read_text())
    assert summary["shared"]["q"] == ("<not written: shared q holds a Detached whose __repr__ "
                                      "raised ValueError: instance is not bound to a session>")


@pytest.mark.parametrize("mode", IN_RUNNER)
def test_a_value_that_passes_is_written_the_same_everywhere(
        mode: str, run_cli: Callable[..., CLIResult], write_config: Callable[..., Path]) -> None:
    """The journal, summary.json and --json write a value JSON can hold only with
    written_as (a list subclass whose own __iter__ raises, here) alike."""
    path = write_config(f"jobs:\n  fine: {{function: 'tests.written_tasks:fine_unsized', "
                        f"mode: {mode}, map: [0, 1]}}\n")
    result = run_cli("run", str(path), "--json")
    assert result.code == 0, result
    (job,) = result.json()["jobs"]
    assert job["results"] == [[0, 1], [1, 2]]
    lines = read_strict(run_dir(result) / "results.jsonl")
    assert written(lines) == {0: [0, 1], 1: [1, 2]}


def test_vet_keeps_an_outcome_it_can_write_and_lets_an_interrupt_through() -> None:
    """Plain values and an int beyond 64 bits pass as the same object; the run's own
    Interrupted, raised inside a result's __repr__ (a signal), is never a task failure."""
    plain = Outcome(0, [1, "a", None, [2**70]], [], 0.0, 1)
    assert vet(plain, "job") is plain

    class Signalled:
        def __repr__(self) -> str:
            raise Interrupted(2)

    with pytest.raises(Interrupted):
        vet(Outcome(0, [1, Signalled()], [], 0.0, 1), "job")
    with pytest.raises(Interrupted):
        problem({"key": Signalled()})


@pytest.mark.parametrize(("depth", "fails"), [(MAX_DEPTH, False), (MAX_DEPTH + 1, True)])
def test_the_depth_limit(depth: int, fails: bool) -> None:
    value: Any = 2**70  # an int beyond 64 bits: the exact path, past orjson's own limit
    for _ in range(depth):
        value = [value]
    assert (problem(value) is not None) is fails


def test_a_compare_job_whose_results_cannot_be_compared_records_a_difference(
        run_cli: Callable[..., CLIResult], write_config: Callable[..., Path]) -> None:
    """A result whose == raises (a numpy array) makes the modes differ; the run goes on."""
    modes_ = ", ".join(IN_RUNNER)
    path = write_config(f"jobs:\n  arrays: {{function: 'tests.written_tasks:uncomparable', "
                        f"mode: serial, compare: [{modes_}], map: [0, 1]}}\n"
                        f"  later: {{function: 'tests.tasks:square', mode: serial, args: [3]}}\n")
    result = run_cli("run", str(path), "--json")
    assert result.code == 1, result
    assert "Traceback" not in result.stderr, result
    arrays, later = result.json()["jobs"]
    assert [entry["same_results"] for entry in arrays["compare"]][1:] == [False]
    assert [error["type"] for error in arrays["errors"]] == ["ResultsDiffer"]
    assert later["results"] == [9]
