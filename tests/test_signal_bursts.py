"""Bursts of stop signals, in any timing, end the run cleanly (README, "When things go
wrong": a handler only sets flags and writes to a self-pipe).

Each trial starts the CLI on a pool job, waits until the job has started, waits a
random moment more (so that the burst lands while tasks run, while the runner is
stopping them, or while it writes the report), then sends a burst of 100 SIGINT,
SIGTERM and SIGHUP as fast as ``os.kill`` goes (a few µs apart), and in half the
trials a second burst a random moment later. Every trial must end within the grace
period plus the kill time (with a margin for start-up), exit 128 + one of the signals
sent, never by a signal, print one JSON document equal to ``summary.json``, release
the run lock, leave no traceback and no process. ``--run-slow`` runs 50 trials per
start method; the default suite runs 2.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from runner import runlock
from tests.conftest import ROOT
from tests.helpers import wait_until

START_METHODS = ["fork", "forkserver", "spawn"]
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP]
GRACE = 1.0
KILL_TIME = 2.0  # runner.groups.KILL_GRACE_SECONDS
MARGIN = 10.0  # start-up of the interpreter and workers, on a loaded machine

CONFIG = """\
jobs:
  naps:
    function: time:sleep
    mode: pool
    workers: 2
    map: [0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3, 0.3]
  later:
    function: time:sleep
    mode: pool
    args: [0.01]
"""


def _burst(pid: int, rng: random.Random) -> set[int]:
    sent = set()
    for _ in range(100):
        sig = rng.choice(SIGNALS)
        try:
            os.kill(pid, sig)
        except ProcessLookupError:  # it ended within the burst: that is allowed
            break
        sent.add(sig)
    return sent


def _trial(tmp_path: Path, start_method: str, rng: random.Random) -> None:
    folder = tmp_path / f"trial-{rng.getrandbits(32):08x}"
    folder.mkdir()
    config, logs, stderr_path = folder / "config.yaml", folder / "logs", folder / "stderr"
    config.write_text(CONFIG)
    with stderr_path.open("w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "runner", str(config), "--json", "--log-dir", str(logs),
             "--grace", str(GRACE), "--start-method", start_method],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=stderr, text=True)
    try:
        wait_until(lambda: proc.poll() is None and "naps: 8 tasks" in stderr_path.read_text(),
                   30, what="the job starting")
        family = [proc.pid, *(child.pid for child in
                              psutil.Process(proc.pid).children(recursive=True))]
        time.sleep(rng.uniform(0, 0.8))  # the moment of the burst is the trial's variable
        sent = _burst(proc.pid, rng)
        began = time.monotonic()
        if rng.random() < 0.5:
            time.sleep(rng.uniform(0, 0.5))
            sent |= _burst(proc.pid, rng)
        stdout, _ = proc.communicate(timeout=GRACE + KILL_TIME + MARGIN)
        took = time.monotonic() - began
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    stderr = stderr_path.read_text()
    assert proc.returncode > 0, f"ended by signal {-proc.returncode}: {stderr}"
    assert "Traceback" not in stderr, stderr
    if not sent:  # it had ended before the first signal: nothing to check but a clean end
        assert proc.returncode == 0
        return
    assert proc.returncode in {128 + sig for sig in sent}, (proc.returncode, sent, stderr)
    assert took < GRACE + KILL_TIME + MARGIN
    doc = json.loads(stdout)
    assert doc["exit_code"] == proc.returncode or doc["status"] != "interrupted", doc
    summary = json.loads((logs / "latest" / "summary.json").read_text())
    assert summary == doc
    assert runlock.holder(runlock.lock_path(logs, config)) == {}, "the run lock is held"
    _, alive = psutil.wait_procs([psutil.Process(pid) for pid in family
                                  if psutil.pid_exists(pid)], timeout=5)
    assert [p for p in alive if p.status() != psutil.STATUS_ZOMBIE] == [], alive


def _trials(tmp_path: Path, start_method: str, count: int) -> None:
    seed = random.randrange(1 << 32)
    rng = random.Random(seed)
    for number in range(count):
        try:
            _trial(tmp_path, start_method, rng)
        except BaseException as exc:
            raise AssertionError(f"trial {number + 1} of {count} failed "
                                 f"(seed {seed})") from exc


@pytest.mark.timeout(180)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_bursts_of_stop_signals_end_the_run_cleanly(tmp_path, start_method):
    _trials(tmp_path, start_method, 2)


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("start_method", START_METHODS)
def test_fifty_bursts_of_stop_signals_per_start_method(tmp_path, start_method):
    _trials(tmp_path, start_method, 50)
