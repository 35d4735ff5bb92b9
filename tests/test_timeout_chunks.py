"""timeout inside a chunk: the item past its time fails alone, and the chunk keeps its size.

Each worker's shared slot (``runner.slots``) names the item it runs and since when;
the runner stops the worker when that item's time is up, fails that item as
``TaskTimeout``, keeps the results the worker sends of the items it finished, and
runs the rest of the chunk again. ``tests.tasks.hang_at`` leaves a file per run of
an item, so that a test counts how often each item ran.
"""

from __future__ import annotations

import collections
import multiprocessing
import os
import time
from pathlib import Path
from typing import Any

import pytest

from runner.errors import TaskTimeout
from runner.executors import timeouts
from runner.observe import Observer, Started
from runner.slots import Slot
from runner.work import Call, Chunk, Outcome
from tests.helpers import journal, run_config, wait_until

pytestmark = pytest.mark.timeout(60)

ITEMS, HANG = 8, 3


class _Starts(Observer):
    """Every chunk's start, as the runner announces it."""

    def __init__(self) -> None:
        self.chunks: list[tuple[int, int]] = []

    def started(self, event: Started) -> None:
        self.chunks.append((event.first, event.count))


def _runs(calls: Path) -> dict[int, int]:
    """How many times each item ran."""
    names = [name for name in os.listdir(calls) if name != "hung"]
    return dict(collections.Counter(int(name.split("-")[0]) for name in names))


def _run(tmp_path: Path, how: str, *, start_method: str = "fork", extra: str = "",
         **options: Any) -> tuple[Any, _Starts, Path]:
    calls = tmp_path / "calls"
    calls.mkdir(exist_ok=True)
    starts = _Starts()
    report = run_config(tmp_path, f"""\
        jobs:
          hangs:
            function: tests.tasks:hang_at
            mode: pool
            workers: 1
            chunksize: {ITEMS}
            map: {{range: {ITEMS}}}
            args: [{HANG}, {str(calls)!r}, {how}]
            timeout: 2
            {extra}
    """, start_method=start_method, observers=[starts], **options)
    return report, starts, calls


def test_a_timeout_keeps_the_chunksize(tmp_path):
    """chunksize: auto is what it would be without a timeout: ceil(40 / (4 * 2))."""
    starts = _Starts()
    report = run_config(tmp_path, """\
        jobs:
          squares: {function: tests.tasks:square, mode: pool, workers: 2, timeout: 30,
                    map: {range: 40}}
    """, start_method="fork", observers=[starts])
    assert report.jobs[0].results == [x * x for x in range(40)]
    assert sorted(starts.chunks) == [(first, 5) for first in range(0, 40, 5)]


def _others_succeed(job: Any) -> None:
    assert job.results == [None if x == HANG else x * 10 for x in range(ITEMS)]


def test_the_item_past_its_timeout_fails_alone_and_the_others_run_once(tmp_path,
                                                                       start_method):
    """A worker answering SIGTERM sends the results of the items it finished: they are
    not run again; the items after the one that hung run as one chunk."""
    report, starts, calls = _run(tmp_path, "sleep", start_method=start_method)
    (job,) = report.jobs
    _others_succeed(job)
    (error,) = job.errors
    assert (error.task, error.type, error.attempts) == (HANG, "TaskTimeout", 1)
    assert error.message.startswith("timed out after 2s; its worker (pid ")
    assert error.message.endswith("stopped with SIGTERM")
    assert _runs(calls) == dict.fromkeys(range(ITEMS), 1)
    assert starts.chunks == [(0, ITEMS), (HANG + 1, ITEMS - HANG - 1)], "chunksize kept"
    lines = journal(report, "hangs")
    assert [(line.get("first"), line.get("task"), line["status"]) for line in lines] == [
        (0, None, "ok"), (None, HANG, "failed"), (HANG + 1, None, "ok")]
    assert lines[1]["error"]["type"] == "TaskTimeout"


def test_a_worker_deaf_to_sigterm_takes_its_results_along(tmp_path):
    """A worker SIGKILLed after ignoring SIGTERM says nothing: the items it finished run
    again (and a warning says so); the hung item still fails alone."""
    report, starts, calls = _run(tmp_path, "deaf")
    (job,) = report.jobs
    _others_succeed(job)
    (error,) = job.errors
    assert (error.task, error.type) == (HANG, "TaskTimeout")
    assert "killed with SIGKILL after ignoring SIGTERM" in error.message
    assert _runs(calls) == {**dict.fromkeys(range(ITEMS), 1), **dict.fromkeys(range(HANG), 2)}
    assert starts.chunks == [(0, ITEMS), (0, HANG), (HANG + 1, ITEMS - HANG - 1)]
    runner_log = next((tmp_path / "logs" / "latest").glob("runner*.jsonl")).read_text()
    assert "finished items were lost with it; running them again" in runner_log


def test_a_timed_out_item_of_a_chunk_is_retried(tmp_path):
    """retry_on: [TaskTimeout] runs the timed-out item again, alone, as attempt 2; the
    journal keeps the timeout of attempt 1."""
    report, starts, calls = _run(tmp_path, "once",
                                 extra="retries: 1\n            retry_on: [TaskTimeout]")
    (job,) = report.jobs
    assert job.results == [x * 10 for x in range(ITEMS)]
    assert job.errors == []
    assert _runs(calls) == {**dict.fromkeys(range(ITEMS), 1), HANG: 2}
    assert starts.chunks[-1] == (HANG, 1)
    failed = [line for line in journal(report, "hangs") if line["status"] == "failed"]
    assert [(line["task"], line["attempt"], line["error"]["type"]) for line in failed] == [
        (HANG, 1, "TaskTimeout")]


def test_resume_runs_only_the_timed_out_item(tmp_path):
    """--resume after a timeout inside a chunk runs that item alone."""
    first, _, calls = _run(tmp_path, "once")
    assert [error.task for error in first.jobs[0].errors] == [HANG]
    resumed, starts, _ = _run(tmp_path, "once", resume="latest")
    assert resumed.jobs[0].results == [x * 10 for x in range(ITEMS)]
    assert starts.chunks == [(HANG, 1)]
    assert _runs(calls) == {**dict.fromkeys(range(ITEMS), 1), HANG: 2}


# -- the slot itself, and the settling of a timed-out chunk --------------------------


def _run_timed(array: Any, first: int, count: int, gate: Any) -> None:
    slot, done = Slot(array), []
    step = slot.timing(lambda item: gate.wait(30), first, done)
    for item in range(count):
        done.append(step(item))


@pytest.mark.parametrize("method", ["fork", "spawn"])
def test_the_slot_names_the_item_a_worker_runs_and_since_when(method):
    """A worker process names each item as it begins; the runner's reader sees it, with
    a start time on the runner's own monotonic clock; idle after clear()."""
    ctx = multiprocessing.get_context(method)
    slot = Slot.create(ctx)
    assert slot.running() is None
    slot.hand_over(40, 0.5)
    assert slot.running() == (40, 0.5)
    gate = ctx.Barrier(2)
    before = time.monotonic()
    child = ctx.Process(target=_run_timed, args=(slot.array, 40, 2, gate))
    child.start()
    try:
        def named(task: int, since_after: float) -> tuple[int, float] | None:
            running = slot.running()
            return running if running is not None and running[0] == task \
                and running[1] > since_after else None

        task, since = wait_until(lambda: named(40, 0.5))  # the worker's own write
        assert task == 40 and before <= since <= time.monotonic()
        gate.wait(30)
        _, since2 = wait_until(lambda: named(41, since))
        assert since2 > since
        gate.wait(30)
    finally:
        child.join(30)
    assert child.exitcode == 0
    assert not slot.expired()
    slot.expire()
    assert slot.expired()
    slot.clear()
    assert slot.running() is None


def _chunk(first: int = 10, count: int = 6) -> Chunk:
    return Chunk(Call("j", "m:f", timeout=1.0), first, list(range(count)), attempt=2)


def _done(chunk: Chunk, count: int) -> Outcome:
    return Outcome(chunk.first, list(chunk.items[:count]), [], 0.1, 7)


@pytest.mark.parametrize(("reported", "outcomes", "again", "lost"), [
    # tasks the worker reports done | (first, count) of each outcome | chunks again | lost
    (3, [(10, 3), (13, 1)], [(14, 2)], range(13, 13)),  # it told all it finished
    (None, [(13, 1)], [(10, 3), (14, 2)], range(10, 13)),  # it said nothing
    (1, [(10, 1), (13, 1)], [(11, 2), (14, 2)], range(11, 13)),  # it told less
    # Its answer crossed the signal: the runner's word stands, the task timed out.
    (5, [(10, 3), (13, 1)], [(14, 2)], range(13, 13)),
])
def test_settle_keeps_what_the_worker_reports_and_runs_the_rest_again(
        reported, outcomes, again, lost):
    """Tasks before the one that timed out keep the results their worker sent (the
    others run again); that task fails as TaskTimeout, on the chunk's attempt."""
    chunk = _chunk()
    failure = TaskTimeout(1.0, 7, "stopped with SIGTERM")
    told = None if reported is None else _done(chunk, reported)
    settled = timeouts.settle(chunk, 13, told, failure, seconds=1.2, pid=7)
    assert [(o.first, len(o.values)) for o in settled.outcomes] == outcomes
    assert [(c.first, len(c.items), c.attempt) for c in settled.again] == [
        (first, count, 2) for first, count in again]
    assert settled.lost == lost
    (error,) = settled.outcomes[-1].errors
    assert (error.task, error.type, error.attempts) == (13, "TaskTimeout", 2)


def test_the_deadline_is_the_running_items_own():
    """The slot's item, when it is one of the chunk's; else the first, from hand-over."""
    ctx = multiprocessing.get_context("fork")
    slot, chunk = Slot.create(ctx), _chunk()
    assert timeouts.deadline(chunk, slot, 5.0) == 6.0  # idle: the hand-over counts
    slot.hand_over(12, 50.0)
    assert timeouts.running_task(chunk, slot, 5.0) == (12, 50.0)
    assert timeouts.deadline(chunk, slot, 5.0) == 51.0
    slot.hand_over(99, 50.0)  # not this chunk's
    assert timeouts.running_task(chunk, slot, 5.0) == (10, 5.0)
