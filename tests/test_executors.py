"""Executor contract tests: written once, bound to every mode and start method.

Each test runs a real config through ``runner.run()`` in-process (the library
API), so every mode goes through the same scheduler, plan and journal as a
user's run. Tests that are about processes run once per start method
(fork, forkserver, spawn); serial and thread modes, which start no
process, run once. After every run no worker process may be left behind.

Crash cases are a table (loky's ``test_reusable_executor.py`` style); every
test has a deadline so that a hang fails with a traceback instead of eating CI.
"""

from __future__ import annotations

import functools
import json
import multiprocessing
import os
import statistics
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from runner.report import JobReport, RunReport
from runner.shared import TYPECODES
from tests import helpers
from tests.conftest import MODES, START_METHODS
from tests.helpers import journal

pytestmark = pytest.mark.timeout(60)

PROCESS_MODES = ["process", "pool"]


@dataclass(frozen=True)
class Target:
    """A mode and, for modes that start processes, the start method."""

    mode: str
    start_method: str | None = None

    @property
    def uses_processes(self) -> bool:
        return self.mode in PROCESS_MODES

    def __str__(self) -> str:
        return self.mode if self.start_method is None else f"{self.mode}-{self.start_method}"


# serial and thread start no process: one run each; process and pool: one per start method;
# dask: one run, on an embedded cluster (its workers are dask's, not the start method's).
TARGETS = [Target(mode) if mode not in PROCESS_MODES else Target(mode, method)
           for mode in MODES for method in (START_METHODS if mode in PROCESS_MODES else [None])
           ] + [Target("dask")]
# Modes that have a barrier (dask has none: runner.daskconfig refuses it).
BARRIER_TARGETS = [t for t in TARGETS if t.mode != "dask"]
PROCESS_TARGETS = [t for t in TARGETS if t.uses_processes]


@pytest.fixture(params=TARGETS, ids=str)
def target(request: pytest.FixtureRequest) -> Target:
    """Every mode; process and pool once per start method."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture(params=PROCESS_TARGETS, ids=str)
def process_target(request: pytest.FixtureRequest) -> Target:
    """process and pool modes, once per start method."""
    return request.param  # type: ignore[no-any-return]


# -- helpers -------------------------------------------------------------------

_HELPERS = ("multiprocessing.forkserver import main",
            "multiprocessing.resource_tracker import main")


def stray_processes(ignore: frozenset[int] = frozenset()) -> list[str]:
    """Descendants of this process other than multiprocessing's long-lived helpers
    (and those in ``ignore``: what other tests may have left before a run began).

    The fork server and the resource tracker live as long as the test process
    (one per interpreter, reused by every run); workers forked by the fork
    server are its children, so they still show up here (``recursive=True``),
    with the fork server's command line.
    """
    strays = []
    for child in psutil.Process().children(recursive=True):
        if child.pid in ignore:
            continue
        try:
            cmdline = " ".join(child.cmdline())
            status = child.status()
            parent = child.ppid()
        except (psutil.NoSuchProcess, psutil.ZombieProcess):
            continue
        # Workers forked by the fork server share its command line: only our own
        # children can be the helpers.
        if parent == os.getpid() and status != psutil.STATUS_ZOMBIE and \
                any(helper in cmdline for helper in _HELPERS):
            continue
        strays.append(f"pid {child.pid} ({status}): {cmdline}")
    return strays


def descendants() -> frozenset[int]:
    return frozenset(child.pid for child in psutil.Process().children(recursive=True))


def test_the_leftover_check_sees_a_live_worker(start_method: str) -> None:
    """stray_processes(), which every run here is checked with, does see a worker
    (a grandchild, under forkserver) and does not count the long-lived helpers."""
    before = descendants()
    process = multiprocessing.get_context(start_method).Process(target=time.sleep, args=(30,))
    process.start()
    try:
        strays = stray_processes(before)
        assert [s.split()[1] for s in strays] == [str(process.pid)], strays
    finally:
        process.kill()
        process.join()
    assert stray_processes(before) == []


RunYaml = Callable[..., RunReport]


def run_config(folder: Path, text: str, start_method: str | None = None,
               **fmt: Any) -> RunReport:
    """``tests.helpers.run_config`` (``text`` formatted with ``fmt``, if given), checking
    that no process the run started is left running."""
    before = descendants()
    report = helpers.run_config(folder, text.format(**fmt) if fmt else text,
                                start_method=start_method)
    assert stray_processes(before) == [], "worker processes outlived the run"
    return report


@pytest.fixture
def run_yaml(tmp_path: Path) -> RunYaml:
    """``run_config`` in this test's tmp_path."""
    return functools.partial(run_config, tmp_path)


def job(report: RunReport, name: str) -> JobReport:
    (found,) = [j for j in report.jobs if j.name == name]
    return found


def first_task(line: dict[str, Any]) -> int:
    return int(line["task"] if "task" in line else line["first"])


def errors(j: JobReport) -> list[tuple[int, str, str]]:
    return [(e.task, e.type, e.message) for e in j.errors]


# -- results and their order ---------------------------------------------------

ORDER_CONFIG = """
defaults:
  mode: {mode}
  workers: 2
jobs:
  finish_reversed:          # task 0 sleeps longest: answers come back 2, 1, 0
    function: tests.tasks:sleep
    map: [0.4, 0.1, 0.0]
    chunksize: 1
  chunks_of_3:              # chunks [0.2, 0.1, 0.05] and [0.0]: the second is back first
    function: tests.tasks:sleep
    map: [0.2, 0.1, 0.05, 0.0]
    chunksize: 3
  range_chunks:             # range slices (2, 5) and (8,), then args and kwargs
    function: tests.tasks:add
    map: {{range: [2, 9, 3]}}
    chunksize: 2
    args: [10]
    kwargs: {{c: 100}}
  tasks:
    function: tests.tasks:sleep
    tasks:
      - args: [0.2]
      - args: [0.0]
      - kwargs: {{seconds: 0.1}}
  repeat:
    function: tests.tasks:add
    args: [1, 2]
    kwargs: {{c: 3}}
    repeat: 2
  no_args:
    function: tests.tasks:echo
  unpack:                   # chunksize auto; a list item spreads, a mapping overrides kwargs
    function: tests.tasks:echo
    map: [[1, 2], {{a: 1, k: mine}}, 3, []]
    args: [9]
    kwargs: {{k: default}}
    unpack: true
"""


def call(*args: Any, **kwargs: Any) -> dict[str, Any]:
    return {"args": list(args), "kwargs": kwargs}


def test_results_are_in_task_order_whatever_order_tasks_finish(
        run_yaml: RunYaml, target: Target) -> None:
    """Every call source gives its results in task order: map over a list (chunksize
    1, 3, auto) and a range (chunksize 2, with args and kwargs), tasks, args with
    repeat, no arguments, and unpack of list and mapping items."""
    report = run_yaml(ORDER_CONFIG, target.start_method, mode=target.mode)
    assert (report.status, report.exit_code) == ("ok", 0), report.jobs
    expected: dict[str, list[Any]] = {
        "finish_reversed": [0.4, 0.1, 0.0],
        "chunks_of_3": [0.2, 0.1, 0.05, 0.0],
        "range_chunks": [112, 115, 118],
        "tasks": [0.2, 0.0, 0.1],
        "repeat": [6, 6],
        "no_args": [call()],
        "unpack": [call(1, 2, 9, k="default"), call(9, a=1, k="mine"), call(3, 9, k="default"),
                   call(9, k="default")],
    }
    assert {j.name: j.results for j in report.jobs} == expected
    for j in report.jobs:
        assert (j.status, j.tasks, j.ok, j.failed, j.errors) == (
            "ok", len(expected[j.name]), len(expected[j.name]), 0, [])
        assert j.mode == target.mode
    if target.mode != "serial":
        # The check above means something only if answers did come back out of order
        # (any of the jobs whose first task sleeps longest will do).
        arrival = {name: [first_task(line) for line in journal(report, name)]
                   for name in ("finish_reversed", "chunks_of_3", "tasks")}
        assert any(order != sorted(order) for order in arrival.values()), arrival


# -- failures ------------------------------------------------------------------

FAILURE_CONFIG = """
defaults:
  mode: {mode}
  workers: 2
jobs:
  mixed:
    function: tests.tasks:maybe_fail
    tasks:
      - args: [0, true, 0.3]    # fails last
      - args: [1]
      - args: [2, true]         # fails first
      - args: [3]
    reduce: list
  base:
    function: tests.tasks:raise_base
    map: [exit, interrupt, base, fine]
    chunksize: 1
    reduce: count
  none_ok:
    function: tests.tasks:fail_on
    map: [3]
    reduce: sum
  nulls:                    # a task that returns None did succeed
    function: tests.tasks:identity
    map: [null, 1]
    reduce: count
  later:
    function: tests.tasks:square
    map: [3]
"""


@pytest.fixture(scope="module", params=TARGETS, ids=str)
def failures(request: pytest.FixtureRequest,
             tmp_path_factory: pytest.TempPathFactory) -> RunReport:
    """FAILURE_CONFIG, run once per mode and start method for the tests below."""
    target: Target = request.param
    return run_config(tmp_path_factory.mktemp("failures"), FAILURE_CONFIG,
                      target.start_method, mode=target.mode)


def test_a_raising_task_is_recorded_and_the_rest_still_runs(failures: RunReport) -> None:
    """A task that raises fails alone: its place holds None, its error names type
    and message, errors are sorted by task, later jobs run, and the run exits 1."""
    assert (failures.status, failures.exit_code, failures.not_run) == ("failed", 1, [])
    mixed = job(failures, "mixed")
    assert mixed.results == [None, 1, None, 3]
    assert (mixed.status, mixed.ok, mixed.failed) == ("failed", 2, 2)
    assert errors(mixed) == [(t, "ValueError", f"task {t} was told to fail") for t in (0, 2)]
    assert all(e.attempts == 1 and "ValueError" in e.traceback for e in mixed.errors)
    later = job(failures, "later")
    assert (later.status, later.results, later.errors) == ("ok", [9], [])


def test_system_exit_keyboard_interrupt_and_base_exception_fail_only_their_task(
        failures: RunReport) -> None:
    """sys.exit(), KeyboardInterrupt and a bare BaseException raised by task code
    fail that task only, in every mode (a worker or thread survives them)."""
    base = job(failures, "base")
    assert base.results == [None, None, None, "fine"]
    assert errors(base) == [(0, "SystemExit", "5"), (1, "KeyboardInterrupt", "stop here"),
                            (2, "BaseException", "plain BaseException")]


def test_reduce_runs_over_successful_results_only(failures: RunReport) -> None:
    """In every mode, reduce sees each successful result (None included) and no
    failed one; with none successful, ``reduced`` is None."""
    assert {j.name: j.reduced for j in failures.jobs} == {
        "mixed": [1, 3], "base": 1, "none_ok": None, "nulls": 2, "later": None}
    assert [j.status for j in failures.jobs] == ["failed", "failed", "failed", "ok", "ok"]


# -- where tasks run -----------------------------------------------------------

WHERE_CONFIG = """
jobs:
  where:
    function: tests.tasks:where
    mode: {mode}
    workers: 2
    map: {{range: 4}}
    chunksize: 1
  where_chunked:            # process mode: still one process per task
    function: tests.tasks:where
    mode: {mode}
    workers: 2
    map: {{range: 4}}
    chunksize: 2
  sigterm:
    function: tests.tasks:sigterm_handler
    mode: {mode}
"""


@pytest.fixture(scope="module", params=TARGETS, ids=str)
def where_run(request: pytest.FixtureRequest,
              tmp_path_factory: pytest.TempPathFactory) -> tuple[Target, RunReport]:
    """WHERE_CONFIG, run once per mode and start method for the tests below."""
    target: Target = request.param
    return target, run_config(tmp_path_factory.mktemp("where"), WHERE_CONFIG,
                              target.start_method, mode=target.mode)


def test_each_mode_runs_tasks_where_it_says(where_run: tuple[Target, RunReport]) -> None:
    """serial: the runner's main thread; thread: threads of the runner's process;
    process: a new process per task; pool: at most ``workers`` reused processes."""
    target, report = where_run
    assert report.exit_code == 0, report.jobs
    me = os.getpid()
    for name in ("where", "where_chunked"):
        results = job(report, name).results
        pids = [pid for pid, _ in results]
        threads = {thread for _, thread in results}
        if target.mode == "serial":
            assert pids == [me] * len(results)
            assert threads == {threading.main_thread().name}
        elif target.mode == "thread":
            assert pids == [me] * len(results)
            assert threading.main_thread().name not in threads
            assert 1 <= len(threads) <= 2
        elif target.mode == "process":
            assert me not in pids
            assert len(set(pids)) == len(results), "process mode: one process per task"
        else:  # pool, and dask: the cluster's two worker processes
            assert me not in pids
            assert len(set(pids)) <= 2, "pool mode: workers are reused"


def test_sigterm_in_a_worker_is_the_worker_s_own_handler(
        where_run: tuple[Target, RunReport]) -> None:
    """Worker processes handle SIGTERM with the worker's handler under every start method
    (it unwinds the task, then ends the worker: a forked worker used to inherit the
    runner's handler and raise Interrupted inside task code); in serial and thread mode,
    tasks run under the runner's handler."""
    target, report = where_run
    (handler,) = job(report, "sigterm").results
    if target.mode == "dask":  # a dask worker's own (distributed's): never the runner's
        assert "interrupts" not in handler and "_on_sigterm" not in handler, handler
    elif target.uses_processes:
        assert "worker._on_sigterm" in handler or "_on_sigterm" in handler, handler
        assert "interrupts" not in handler
    else:
        assert "interrupts.<locals>.on_signal" in handler, handler


WORKERS_CONFIG = """
shared:
  running3: {{type: value, typecode: i}}
  peak3: {{type: value, typecode: i}}
  running1: {{type: value, typecode: i}}
  peak1: {{type: value, typecode: i}}
  lock: lock
jobs:
  three:
    function: tests.tasks:track_concurrency
    mode: {mode}
    workers: 3
    map: {{range: 4}}
    chunksize: 1
    args: [!ref running3, !ref peak3, !ref lock, 0.3, {until}]
  one:
    function: tests.tasks:track_concurrency
    mode: {mode}
    workers: 1
    map: {{range: 3}}
    args: [!ref running1, !ref peak1, !ref lock, 0.05]
"""


def test_workers_limits_how_many_tasks_run_at_once(run_yaml: RunYaml, target: Target) -> None:
    """At most ``workers`` tasks are inside the function at once (measured with a
    shared Value under a Lock), and with enough tasks that many do run at once."""
    expected_peak = 1 if target.mode == "serial" else 3
    report = run_yaml(WORKERS_CONFIG, target.start_method, mode=target.mode,
                      until=expected_peak)
    assert report.exit_code == 0, report.jobs
    assert report.shared == {"running3": 0, "peak3": expected_peak, "running1": 0, "peak1": 1}
    assert job(report, "three").workers == (1 if target.mode == "serial" else 3)
    if target.mode == "pool":
        assert len(set(job(report, "three").results)) <= 3
        assert len(set(job(report, "one").results)) == 1


# -- shared primitives ---------------------------------------------------------

REFS_CONFIG = """
shared:
  total: {{type: value, typecode: i}}
  slots: {{type: array, typecode: i, init: [100, 200, 300]}}
  lock: lock
  rlock: {{type: rlock}}
  sem: {{type: semaphore, init: 1}}
  done: event
  q: queue
  ordered: {{type: queue, maxsize: 10}}
  gate: {{type: barrier, parties: {parties}}}
jobs:
  use:
    function: tests.tasks:use_primitives
    mode: {mode}
    workers: 2
    map: [0, 1, 2, 3]
    chunksize: 1
    args: [!ref total, !ref slots, !ref lock, !ref rlock, !ref sem, !ref done, !ref q, !ref gate]
  seen:                     # an event set in one job is set for the next
    function: tests.tasks:wait_event
    mode: {mode}
    args: [!ref done, 5]
  ordered:
    function: tests.tasks:put_item
    mode: {mode}
    workers: 1
    map: [a, b, c]
    args: [!ref ordered]
  nested:                   # refs inside tasks, kwargs, nested lists and mappings
    function: tests.tasks:type_names
    mode: {mode}
    tasks:
      - args: [!ref total, [!ref slots, {{e: !ref done}}]]
        kwargs: {{q: !ref q, locks: [!ref lock, !ref rlock, !ref sem, !ref gate], n: 1}}
"""


@pytest.mark.parametrize("target", BARRIER_TARGETS, ids=str)
def test_refs_reach_every_primitive_in_every_mode(run_yaml: RunYaml, target: Target) -> None:
    """``!ref`` hands Value, Array, Lock, RLock, Semaphore, Event, Queue and Barrier
    to tasks in every mode, pool included; the summary shows the final values."""
    parties = 1 if target.mode == "serial" else 2  # a barrier of `workers` parties
    report = run_yaml(REFS_CONFIG, target.start_method, mode=target.mode, parties=parties)
    assert (report.status, report.exit_code) == ("ok", 0), [j.errors for j in report.jobs]
    assert job(report, "use").results == [0, 1, 2, 3]
    assert job(report, "seen").results == [True]
    assert job(report, "ordered").results == ["a", "b", "c"]
    ((args, kwargs),) = [(r["args"], r["kwargs"]) for r in job(report, "nested").results]
    assert args == ["Synchronized", ["SynchronizedArray", {"e": "Event"}]]
    assert kwargs == {"q": "Queue", "locks": ["Lock", "RLock", "Semaphore", "Barrier"],
                      "n": "int"}
    shared = dict(report.shared)
    assert sorted(shared.pop("q")) == [0, 1, 2, 3]
    # lock, rlock, semaphore and barrier are omitted; a queue's leftovers are in order.
    assert shared == {"total": 10, "slots": [104, 204, 300], "done": True,
                      "ordered": ["a", "b", "c"]}


QUEUE_FLOOD_CONFIG = """
shared:
  q: queue
jobs:
  flood:                    # 150 kB a task: more than a pipe holds, and nobody reads
    function: tests.tasks:put_many
    mode: {mode}
    workers: 2
    tasks:
      - args: [!ref q, a, 150, 1000]
      - args: [!ref q, b, 150, 1000]
"""


def test_a_worker_blocked_on_a_full_queue_still_exits_and_nothing_is_lost(
        run_yaml: RunYaml, process_target: Target) -> None:
    """A worker cannot exit while its queue items are unread; the runner drains
    the queue while it waits, puts the items back, and leaves no process behind."""
    report = run_yaml(QUEUE_FLOOD_CONFIG, process_target.start_method, mode=process_target.mode)
    assert report.exit_code == 0, report.jobs
    items = report.shared["q"]
    assert len(items) == 300
    assert all(len(item) == 1000 for item in items)
    for tag in "ab":  # each task's items arrive whole and in the order it put them
        assert [item[:8] for item in items if item[0] == tag] == [
            f"{tag}-{i:06d}" for i in range(150)]


def _typecode_cases() -> dict[str, tuple[Any, Any, list[Any], list[Any]]]:
    """code -> (init value, new value, init array, new array): extremes of each range."""
    cases: dict[str, tuple[Any, Any, list[Any], list[Any]]] = {}
    for code, info in TYPECODES.items():
        if info.kind == "int":
            low, high = info.low, info.high
            cases[code] = (low, high, [low, 0, high], [high, 1, low])
        elif info.kind == "float":
            big = 1e300 if code == "d" else 2.0**127  # both exact in their C type
            cases[code] = (1.5, -0.25, [0.5, -2.0, 65536.0],
                           [0.1 if code == "d" else 0.125, -big, 0.0])
        else:
            cases[code] = ("x", "é", ["a", "b", "c"], ["☃", "é", "z"])
    return cases


TYPECODE_CASES = _typecode_cases()


def yaml_scalar(value: Any) -> str:
    """``value`` in YAML; a float always has a dot (PyYAML reads ``1e+300`` as a string)."""
    if isinstance(value, list):
        return "[" + ", ".join(map(yaml_scalar, value)) + "]"
    text = json.dumps(value)
    if isinstance(value, float) and "e" in text and "." not in text.split("e")[0]:
        text = text.replace("e", ".0e", 1)
    return text


def test_every_typecode_round_trips_through_a_value_and_an_array_in_a_worker(
        run_yaml: RunYaml, start_method: str) -> None:
    """Each typecode's extremes reach a worker process intact (init values), and
    what the worker writes is what the runner's summary shows."""
    lines = ["shared:"]
    for code, (init, _, init_items, _) in TYPECODE_CASES.items():
        lines.append(f"  v_{code}: {{type: value, typecode: {code}, init: {yaml_scalar(init)}}}")
        lines.append(f"  a_{code}: {{type: array, typecode: {code}, init: "
                     f"{yaml_scalar(init_items)}}}")
    lines += ["jobs:", "  roundtrip:", "    function: tests.tasks:roundtrip",
              "    mode: pool", "    workers: 2", "    tasks:"]
    for code, (_, new, _, new_items) in TYPECODE_CASES.items():
        lines.append(f"      - args: [!ref v_{code}, !ref a_{code}, {yaml_scalar(new)}, "
                     f"{yaml_scalar(new_items)}]")
    report = run_yaml("\n".join(lines) + "\n", start_method)
    assert report.exit_code == 0, report.jobs[0].errors
    seen = job(report, "roundtrip").results
    assert seen == [[init, items] for init, _, items, _ in TYPECODE_CASES.values()]
    for code, (_, new, _, new_items) in TYPECODE_CASES.items():
        assert report.shared[f"v_{code}"] == new, code
        assert report.shared[f"a_{code}"] == new_items, code


# -- reduce and compare --------------------------------------------------------

# reducer, what it gives over the successful results [1, 4] of fail_on([1, 3, 4])
REDUCERS = [
    ("sum", 5), ("min", 1), ("max", 4), ("count", 2), ("mean", statistics.fmean([1, 4])),
    ("list", [1, 4]), ('"tests.tasks:descending"', [4, 1]),
]


def test_every_reducer_sees_the_successful_results_only(run_yaml: RunYaml) -> None:
    """sum, min, max, count, mean, list and a "module:qualname" reducer (run in
    serial, the reference mode) skip failed tasks; failed jobs still reduce."""
    jobs = "\n".join(f"  job{i}: {{reduce: {name}}}" for i, (name, _) in enumerate(REDUCERS))
    report = run_yaml("defaults:\n  mode: serial\n  function: tests.tasks:fail_on\n"
                      "  map: [1, 3, 4]\njobs:\n" + jobs + "\n")
    assert [j.reduced for j in report.jobs] == [value for _, value in REDUCERS]
    assert all(j.results == [1, None, 4] and j.status == "failed" for j in report.jobs)
    assert report.exit_code == 1


COMPARE_CONFIG = """
jobs:
  same:
    function: tests.tasks:square
    map: {range: 3}
    compare: [serial, thread, process, pool]
    workers: 2
    reduce: sum
  differ:                   # [pid, thread name]: thread, process and pool each differ
    function: tests.tasks:where
    map: {range: 2}
    compare: [serial, thread, process, pool]
    workers: 2
  first_mode_wins:
    function: tests.tasks:thread_name
    map: [0, 1]
    compare: [thread, serial]
    workers: 2
"""


def test_compare_runs_every_mode_and_checks_they_agree(
        run_yaml: RunYaml, start_method: str) -> None:
    """compare: same results in every mode -> same_results true and the first mode's
    results; a mode-dependent function -> same_results false and a failed job."""
    report = run_yaml(COMPARE_CONFIG, start_method)
    assert (report.status, report.exit_code) == ("failed", 1)

    same = job(report, "same")
    assert (same.status, same.results, same.reduced, same.errors) == (
        "ok", [0, 1, 4], 5, [])
    assert same.compare is not None
    assert [(c.mode, c.same_results) for c in same.compare] == [
        (m, True) for m in ("serial", "thread", "process", "pool")]
    assert all(c.seconds > 0 for c in same.compare)
    assert same.compare[0].speedup == 1.0
    assert same.seconds >= sum(c.seconds for c in same.compare) * 0.99

    differ = job(report, "differ")
    assert differ.status == "failed"
    assert differ.results == [[os.getpid(), threading.main_thread().name]] * 2
    assert differ.compare is not None
    assert [c.same_results for c in differ.compare] == [True, False, False, False]
    assert [(e.task, e.type) for e in differ.errors] == [(-1, "ResultsDiffer")] * 3
    assert [m for m in ("thread", "process", "pool")
            if any(f"mode {m} " in e.message for e in differ.errors)] == [
        "thread", "process", "pool"]

    first = job(report, "first_mode_wins")
    assert first.mode == "thread"
    assert all(name.startswith("mprun-thread-") for name in first.results)
    assert first.compare is not None
    assert [c.same_results for c in first.compare] == [True, False]


# -- crashes -------------------------------------------------------------------

# mode, how the worker dies, chunksize, what the error message must say
CRASHES = [
    pytest.param("process", "exit", 1, "exited with code 3", id="process-os._exit(3)"),
    pytest.param("process", "kill", 1, "killed by SIGKILL", id="process-SIGKILL"),
    pytest.param("process", "term", 1, "SIGTERM", id="process-SIGTERM"),
    pytest.param("process", "segv", 1, "SIGSEGV: a crash in native code", id="process-segfault"),
    pytest.param("pool", "exit", 1, "exited with code 3", id="pool-os._exit(3)"),
    pytest.param("pool", "exit0", 1, "exited with code 0", id="pool-os._exit(0)"),
    pytest.param("pool", "segv", 1, "SIGSEGV: a crash in native code", id="pool-segfault"),
    pytest.param("pool", "term", 1, "SIGTERM", id="pool-SIGTERM"),
    # the chunk [0, 1, 2] dies at item 1: it is rerun item by item, so 0 and 2 succeed
    pytest.param("pool", "kill", 3, "killed by SIGKILL", id="pool-SIGKILL-chunk-of-3"),
]

CRASH_CONFIG = """
jobs:
  crash:
    function: tests.tasks:die_on
    mode: {mode}
    workers: 2
    map: [0, 1, 2, 3]
    chunksize: {chunksize}
    kwargs: {{bad: 1, how: {how}}}
  later:
    function: tests.tasks:square
    mode: {mode}
    map: [2]
"""


@pytest.mark.parametrize(("mode", "how", "chunksize", "says"), CRASHES)
def test_a_worker_that_dies_fails_only_its_task(
        run_yaml: RunYaml, start_method: str, mode: str, how: str, chunksize: int,
        says: str) -> None:
    """A worker killed mid-task (os._exit, SIGKILL, SIGTERM) fails that task with a message
    naming the pid and the exit code or signal; the other tasks and later jobs finish."""
    report = run_yaml(CRASH_CONFIG, start_method, mode=mode, how=how, chunksize=chunksize)
    assert (report.status, report.exit_code) == ("failed", 1)
    crash = job(report, "crash")
    assert crash.results == [0, None, 2, 3]
    assert (crash.ok, crash.failed) == (3, 1)
    ((task, kind, message),) = errors(crash)
    assert (task, kind) == (1, "WorkerCrashed")
    assert "worker pid " in message and says in message, message
    later = job(report, "later")
    assert (later.status, later.results) == ("ok", [4])


IDLE_DEATH_CONFIG = """
shared:
  victim: {type: value, typecode: q}
  killed: {type: value, typecode: b}
jobs:
  idle_death:
    function: tests.tasks:kill_idle_sibling
    mode: pool
    workers: 2
    map: [0, 1, 2, 3]
    chunksize: 2
    args: [!ref victim, !ref killed]
"""


def test_a_worker_that_dies_while_idle_gets_no_more_work(
        run_yaml: RunYaml, start_method: str) -> None:
    """A pool worker killed while it holds no task (the OOM killer's choice, say) is
    noticed when work is next sent to it: the work goes to a new worker, and no
    task fails for it. (Sending to it used to raise BrokenPipeError out of run().)"""
    report = run_yaml(IDLE_DEATH_CONFIG, start_method)
    j = job(report, "idle_death")
    # item 2 exits its worker every time; the chunk [2, 3] is rerun item by item
    assert j.results == [0, 1, None, 3]
    ((task, kind, message),) = errors(j)
    assert (task, kind) == (2, "WorkerCrashed")
    assert "exited with code 3" in message, message
    assert report.shared["killed"] == 1


UNPICKLABLE_CONFIG = """
jobs:
  one_by_one:
    function: tests.tasks:lambda_on
    mode: {mode}
    workers: 2
    map: [0, 1, 2]
    chunksize: 1
  in_one_chunk:
    function: tests.tasks:lambda_on
    mode: {mode}
    workers: 2
    map: [0, 1, 2]
    chunksize: 3
"""


def test_an_unpicklable_result_fails_only_its_task(
        run_yaml: RunYaml, process_target: Target) -> None:
    """A result that cannot be pickled (a lambda) fails its own task, with a message
    that says it could not be sent back; its neighbours, same chunk included, succeed."""
    report = run_yaml(UNPICKLABLE_CONFIG, process_target.start_method, mode=process_target.mode)
    assert (report.status, report.exit_code) == ("failed", 1)
    for name in ("one_by_one", "in_one_chunk"):
        j = job(report, name)
        assert j.results == [0, None, 2], name
        ((task, kind, message),) = errors(j)
        assert (task, kind) == (1, "ResultError")
        assert "cannot be sent back" in message and "lambda" in message, message


# -- scale ---------------------------------------------------------------------

LARGE_CONFIG = """
jobs:
  large:
    function: tests.tasks:square
    mode: pool
    workers: 2
    map: {range: 100000}
    reduce: sum
"""


def test_a_large_map_completes_in_order(run_yaml: RunYaml, start_method: str) -> None:
    """100,000 map items in pool mode: every result, in order, in few journal lines."""
    report = run_yaml(LARGE_CONFIG, start_method)
    large = job(report, "large")
    assert (large.status, large.ok, large.failed) == ("ok", 100_000, 0)
    assert large.results == [i * i for i in range(100_000)]
    assert large.reduced == sum(i * i for i in range(100_000))
    lines = journal(report, "large")
    assert len(lines) <= 16, "chunks of successes share a journal line"
    assert sorted(line["first"] for line in lines)[0] == 0


@pytest.mark.timeout(60)
def test_a_short_task_never_queues_behind_a_long_one(run_yaml: RunYaml) -> None:
    """While one worker runs a long task, the short ones all go to the other worker
    (nothing is prefetched onto the busy worker when tasks are not tiny)."""
    report = run_yaml("""\
        jobs:
          mixed:
            function: tests.tasks:sleep_then_where
            mode: pool
            workers: 2
            tasks: [{args: [1.5]}, {args: [0.05]}, {args: [0.05]}, {args: [0.05]}]
    """, start_method="fork")
    results = job(report, "mixed").results
    long_pid = results[0][0]
    assert [pid for pid, _ in results[1:]] == [results[1][0]] * 3
    assert results[1][0] != long_pid


@pytest.mark.timeout(60)
def test_tasks_that_meet_at_a_barrier_never_queue_behind_each_other(
        run_yaml: RunYaml, monkeypatch: pytest.MonkeyPatch) -> None:
    """Tasks pairing up at a Barrier each go to a free worker, never queued behind a task
    that waits at the barrier for them, even where chunks are quick enough to prefetch."""
    import runner.executors.pool

    monkeypatch.setattr(runner.executors.pool, "PREFETCH_BELOW_SECONDS", 1e9)
    report = run_yaml("""\
        shared:
          gate: {type: barrier, parties: 2}
        jobs:
          pairs:
            function: tests.tasks:meet
            mode: pool
            workers: 2
            map: [[0, 0], [1, 0.3], [2, 0], [3, 0]]   # task 1 lingers after meeting 0
            unpack: true
            chunksize: 1
            args: [!ref gate]
    """, start_method="fork")
    assert report.jobs[0].errors == []
    assert report.jobs[0].results == list(range(4))
