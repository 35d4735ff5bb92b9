"""Load: many tasks complete, and a run leaves nothing behind (issue #4, item 14).

10,000 tasks in ``process`` mode (one process each, ``workers: 2``) and
1,000,000 in ``pool`` mode complete with every result right, and leave this
process as they found it. Each test runs ``runner.run()`` in-process, so that
it can count its own resources (:class:`Resources`) before and after:

- open file descriptors (``/proc/self/fd``);
- POSIX semaphores mapped into this process (``/proc/self/maps``), and the
  named ones it created (``/dev/shm/sem.mp-*``: under forkserver and spawn a
  Lock's name stays there until the Lock is collected);
- threads, and descendant processes other than multiprocessing's fork server
  and resource tracker, which live as long as the interpreter by design.

A warm-up run of the same config comes first, so that what is made once per
interpreter (the fork server, the resource tracker, imported modules, the
runner's open log file) is not counted as a leak. The configs share a Lock, a
Value and a Queue, so semaphores and queue pipes are part of every count.

Full sizes that cost minutes on two cores (10,000 processes: about 2.5 min
each under fork and forkserver in a pytest process; spawn costs ~0.2 s a
process, ~30 min for 10,000, so it runs only the small count) are marked
``slow`` and run with ``--run-slow``; the default run keeps smaller counts of
the same tests (about 30 s in all).
"""

from __future__ import annotations

import contextlib
import gc
import multiprocessing.synchronize
import os
import threading
import time
from collections import Counter
from dataclasses import dataclass
from multiprocessing import resource_tracker
from pathlib import Path
from typing import Any

import pytest

import runner
from runner.report import JobReport, RunReport
from tests.helpers import journal
from tests.test_executors import descendants, stray_processes

# How long clean-up that finishes after run() returns may take: a shared queue's
# feeder thread ends once the queue is collected, the fork server reaps its
# workers. Whatever is still there after this is a leak.
SETTLE_SECONDS = 5.0
# Descriptors the runner may hold beyond its idle count while a job runs: with
# workers: 2, a pipe end and a sentinel pair per live worker, the journal, the run
# lock, a heap arena (~19 in all, measured). Descriptors kept per finished worker
# go past this within a few dozen tasks.
PEAK_EXTRA_FDS = 32

SHARED = """\
shared:
  total: {{type: value, typecode: q}}
  peak_fds: {{type: value, typecode: q}}
  lock: lock
  q: queue
"""
LOAD_ARGS = "[{pid}, !ref total, !ref peak_fds, !ref lock, !ref q]"

PROCESS_CONFIG = "start_method: {start_method}\n" + SHARED + """\
jobs:
  load:
    function: tests.tasks:load_task
    mode: process
    workers: 2
    map: {{range: {tasks}}}
    args: """ + LOAD_ARGS + """
    reduce: sum
"""

POOL_CONFIG = "start_method: {start_method}\n" + SHARED + """\
defaults:
  mode: pool
  workers: 2
  reduce: sum
jobs:
  range:
    function: tests.tasks:square
    map: {{range: {tasks}}}
  file:
    function: tests.tasks:square
    map: {{file: items.jsonl}}
  shared:
    function: tests.tasks:load_task
    map: {{range: {shared_tasks}}}
    args: """ + LOAD_ARGS + """
"""


# -- counting this process's resources ---------------------------------------------


@dataclass(frozen=True)
class Resources:
    """What this process holds that a run could leak."""

    fds: tuple[str, ...]  # what each open descriptor points to
    semaphores: int  # POSIX semaphores mapped into this process, named or unlinked
    named_semaphores: tuple[str, ...]  # of those this process created, the ones still in /dev/shm
    threads: tuple[str, ...]
    strays: tuple[str, ...]  # descendant processes, but for the interpreter's helpers

    def leaks_since(self, before: Resources) -> list[str]:
        """What this snapshot holds beyond ``before``, in words (empty: nothing)."""
        leaks = []
        if len(self.fds) != len(before.fds):
            gained = Counter(self.fds) - Counter(before.fds)
            lost = Counter(before.fds) - Counter(self.fds)
            leaks.append(f"{len(self.fds) - len(before.fds):+d} open file descriptors "
                         f"(now open: {sorted(gained.elements())}; "
                         f"closed since: {sorted(lost.elements())})")
        if self.semaphores != before.semaphores:
            leaks.append(f"{self.semaphores - before.semaphores:+d} mapped POSIX semaphores")
        if self.named_semaphores:
            leaks.append(f"named semaphores left in /dev/shm: {list(self.named_semaphores)}")
        if sorted(self.threads) != sorted(before.threads):
            leaks.append(f"threads {sorted(before.threads)} became {sorted(self.threads)}")
        if self.strays:
            leaks.append(f"processes left: {list(self.strays)}")
        return leaks


def snapshot(created: list[str], ignore: frozenset[int] = frozenset()) -> Resources:
    """This process's resources now, after a garbage collection; ``created`` names the
    semaphores it made, ``ignore`` the descendants that are not the run's to answer for."""
    gc.collect()
    fds = []
    for name in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own descriptor, closed by now
            fds.append(os.readlink(f"/proc/self/fd/{name}"))
    with open("/proc/self/maps") as maps:
        semaphores = sum(1 for line in maps if "/dev/shm/sem." in line)
    named = tuple(name for name in created if os.path.exists(f"/dev/shm/sem.{name.lstrip('/')}"))
    return Resources(tuple(fds), semaphores, named,
                     tuple(t.name for t in threading.enumerate()),
                     tuple(stray_processes(ignore)))


@pytest.fixture
def created_semaphores(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The names of the POSIX semaphores this process creates from now on
    (multiprocessing names each Lock, Semaphore and Value lock ``/mp-XXXXXXXX``)."""
    names: list[str] = []
    make_name = getattr(multiprocessing.synchronize.SemLock, "_make_name")  # noqa: B009 -- private

    def recording_make_name() -> str:
        name: str = make_name()
        names.append(name)
        return name

    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "_make_name",
                        staticmethod(recording_make_name))
    return names


class Baseline:
    """Resources after a warm-up run, and the check that a later run left no more."""

    def __init__(self, created: list[str]) -> None:
        self.created = created
        self.ignore = descendants()
        self.resources = snapshot(created, self.ignore)

    def assert_nothing_left(self, settle: float = SETTLE_SECONDS) -> None:
        deadline = time.monotonic() + settle
        while True:
            leaks = snapshot(self.created, self.ignore).leaks_since(self.resources)
            if not leaks or time.monotonic() >= deadline:
                break
            time.sleep(0.05)
        assert not leaks, "the run leaked:\n" + "\n".join(leaks)

    def assert_peak_fds(self, report: RunReport) -> None:
        """The most descriptors the runner held while tasks ran (its tasks record it)."""
        extra = report.shared["peak_fds"] - len(self.resources.fds)
        if extra > PEAK_EXTRA_FDS:
            raise AssertionError(f"while the run went on the runner held up to {extra} "
                                 f"descriptors more than when idle (at most {PEAK_EXTRA_FDS} "
                                 "expected)")


# -- helpers -----------------------------------------------------------------------


def write_config(folder: Path, template: str, items: int | None = None, **values: Any) -> Path:
    """``template`` filled in, as ``folder/config.yaml``; with ``items``, an
    ``items.jsonl`` of 0 .. items-1 beside it."""
    folder.mkdir()
    if items is not None:
        (folder / "items.jsonl").write_text("".join(f"{i}\n" for i in range(items)))
    path = folder / "config.yaml"
    path.write_text(template.format(pid=os.getpid(), **values))
    return path


def squares_sum(n: int) -> int:
    """0² + 1² + ... + (n-1)²."""
    return (n - 1) * n * (2 * n - 1) // 6


def assert_all_ok(report: RunReport) -> None:
    failures = {job.name: [e.as_dict() for e in job.errors[:3]] for job in report.jobs}
    assert (report.status, report.exit_code) == ("ok", 0), failures


def assert_counted(job: JobReport, tasks: int) -> None:
    assert (job.status, job.tasks, job.ok, job.failed, job.not_run) == ("ok", tasks, tasks, 0, 0)


def assert_shared_load(report: RunReport, tasks: int) -> None:
    """What ``tests.tasks:load_task`` over range(tasks) leaves in the shared primitives."""
    assert report.shared["total"] == tasks * (tasks - 1) // 2
    assert sorted(report.shared["q"]) == list(range(0, tasks, 1000))


# -- process mode ------------------------------------------------------------------


PROCESS_CASES = [
    pytest.param("fork", 500, marks=pytest.mark.timeout(120), id="fork-500"),
    pytest.param("forkserver", 60, marks=pytest.mark.timeout(120), id="forkserver-60"),
    pytest.param("spawn", 30, marks=pytest.mark.timeout(60), id="spawn-30"),
    pytest.param("fork", 10_000, marks=[pytest.mark.slow, pytest.mark.timeout(600)],
                 id="fork-10000"),
    pytest.param("forkserver", 10_000, marks=[pytest.mark.slow, pytest.mark.timeout(600)],
                 id="forkserver-10000"),
]


@pytest.mark.parametrize(("start_method", "tasks"), PROCESS_CASES)
def test_process_mode_runs_every_task_and_leaks_nothing(
        tmp_path: Path, created_semaphores: list[str], start_method: str, tasks: int) -> None:
    """``tasks`` tasks in process mode, one process each, two at a time: every task
    runs once and is counted and journaled; the shared Value, Lock and Queue see each
    one; afterwards this process holds no more descriptors, semaphores, threads or
    processes than before, and while it ran it never held a descriptor per task."""
    logs = tmp_path / "logs"
    warm_up = write_config(tmp_path / "warm-up", PROCESS_CONFIG, start_method=start_method,
                           tasks=4)
    assert_all_ok(runner.run(warm_up, log_dir=logs))
    baseline = Baseline(created_semaphores)

    config = write_config(tmp_path / "load", PROCESS_CONFIG, start_method=start_method,
                          tasks=tasks)
    report = runner.run(config, log_dir=logs)

    assert_all_ok(report)
    (load,) = report.jobs
    assert_counted(load, tasks)
    assert load.reduced == squares_sum(tasks)
    assert_shared_load(report, tasks)
    lines = journal(report, "load")
    assert len(lines) == tasks, "process mode journals one line per task"
    assert sorted(line["task"] for line in lines) == list(range(tasks))
    assert all(line["status"] == "ok" and line["value"] == line["task"] ** 2 for line in lines)
    baseline.assert_nothing_left()
    baseline.assert_peak_fds(report)


# -- pool mode ---------------------------------------------------------------------

POOL_TASKS = 1_000_000
POOL_SHARED_TASKS = 10_000
# A million under fork; the other start methods differ only in how workers start, so
# the default run gives them a fifth of it, and --run-slow the million.
POOL_CASES = [
    pytest.param("fork", POOL_TASKS, id="fork-1000000"),
    pytest.param("forkserver", POOL_TASKS // 5, id="forkserver-200000"),
    pytest.param("spawn", POOL_TASKS // 5, id="spawn-200000"),
    pytest.param("forkserver", POOL_TASKS, marks=pytest.mark.slow, id="forkserver-1000000"),
    pytest.param("spawn", POOL_TASKS, marks=pytest.mark.slow, id="spawn-1000000"),
]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("start_method", "pool_tasks"), POOL_CASES)
def test_a_million_pool_tasks_complete_and_leak_nothing(
        tmp_path: Path, created_semaphores: list[str], start_method: str,
        pool_tasks: int) -> None:
    """1,000,000 map items from a range and 1,000,000 from a .jsonl file in pool mode
    (200,000 under forkserver and spawn without --run-slow), and a job that uses the
    shared Lock, Value and Queue: every result right and in order, the journal a few
    chunk lines per job, and nothing left behind."""
    logs = tmp_path / "logs"
    warm_up = write_config(tmp_path / "warm-up", POOL_CONFIG, items=100,
                           start_method=start_method, tasks=100, shared_tasks=10)
    assert_all_ok(runner.run(warm_up, log_dir=logs))
    baseline = Baseline(created_semaphores)

    config = write_config(tmp_path / "load", POOL_CONFIG, items=pool_tasks,
                          start_method=start_method, tasks=pool_tasks,
                          shared_tasks=POOL_SHARED_TASKS)
    report = runner.run(config, log_dir=logs)

    assert_all_ok(report)
    jobs = {job.name: job for job in report.jobs}
    for name, tasks in [("range", pool_tasks), ("file", pool_tasks),
                        ("shared", POOL_SHARED_TASKS)]:
        job = jobs[name]
        assert_counted(job, tasks)
        assert job.reduced == squares_sum(tasks), name
        assert job.results == [i * i for i in range(tasks)], name
        lines = sorted(journal(report, name), key=lambda line: line["first"])
        assert len(lines) <= 64, "a chunk of map items is one journal line"
        assert [line["first"] for line in lines] == \
            [0, *(line["first"] + len(line["values"]) for line in lines[:-1])]
        assert [v for line in lines for v in line["values"]] == job.results, name
    assert_shared_load(report, POOL_SHARED_TASKS)
    baseline.assert_nothing_left()
    baseline.assert_peak_fds(report)


# -- the check itself --------------------------------------------------------------


@pytest.mark.timeout(60)
def test_the_leak_check_sees_a_descriptor_a_semaphore_and_a_thread(
        created_semaphores: list[str]) -> None:
    """Baseline.assert_nothing_left(), which every load run is checked with, does
    fail on one more open descriptor, named semaphore or thread."""
    resource_tracker.ensure_running()  # once per interpreter; not this check's business
    baseline = Baseline(created_semaphores)
    reader, writer = os.pipe()
    lock = multiprocessing.get_context("spawn").Lock()  # not fork: its Locks have no name
    stop = threading.Event()
    thread = threading.Thread(target=stop.wait, name="load-test-leak")
    thread.start()
    try:
        with pytest.raises(AssertionError) as failed:
            baseline.assert_nothing_left(settle=0)
    finally:
        stop.set()
        thread.join()
        os.close(reader)
        os.close(writer)
        del lock
    message = str(failed.value)
    assert "+2 open file descriptors" in message
    assert "+1 mapped POSIX semaphores" in message
    assert "named semaphores left in /dev/shm" in message
    assert "load-test-leak" in message
    baseline.assert_nothing_left()
