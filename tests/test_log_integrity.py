"""Log integrity: every line written is one whole JSON line; a kill tears at most one."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import warnings
from collections import Counter

import pytest

from runner import log
from runner.log import TornLineWarning, read_jsonl
from tests import tasks
from tests.helpers import read_strict, wait_until

PROCESSES = 4
LINES = 500
THREADS = 8


@pytest.fixture
def quiet_log():
    """Tests that configure logging in this process leave it as it was, their file closed."""
    with log.configured(path=None, run_id="test", process="runner"):
        yield


@pytest.mark.timeout(60)
def test_processes_writing_their_own_files_lose_and_tear_nothing(tmp_path, start_method):
    """N processes x M lines through runner.log: exactly N x M whole lines, each once."""
    context = multiprocessing.get_context(start_method)
    paths = [tmp_path / f"worker-{index}.jsonl" for index in range(PROCESSES)]
    procs = [context.Process(target=tasks.write_log_lines, args=(str(path), LINES, str(index)))
             for index, path in enumerate(paths)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    for index, path in enumerate(paths):
        lines = read_strict(path)
        assert [line["seq"] for line in lines] == list(range(LINES))
        assert {line["tag"] for line in lines} == {str(index)}
        assert {line["pid"] for line in lines} == {lines[0]["pid"]} != {os.getpid()}
    assert sum(len(read_strict(path)) for path in paths) == PROCESSES * LINES


@pytest.mark.timeout(60)
def test_processes_appending_to_one_file_never_interleave(tmp_path):
    """Each line is one append-mode write: even N processes sharing a file (and lines
    longer than a pipe's atomic size) give N x M whole lines."""
    context = multiprocessing.get_context("fork")
    path = tmp_path / "shared.jsonl"
    procs = [context.Process(target=tasks.write_log_lines,
                             args=(str(path), LINES, str(index), 8192))
             for index in range(PROCESSES)]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(30)
        assert proc.exitcode == 0
    lines = read_strict(path)
    assert len(lines) == PROCESSES * LINES
    assert Counter(line["tag"] for line in lines) == {str(i): LINES for i in range(PROCESSES)}
    for index in range(PROCESSES):
        assert [line["seq"] for line in lines if line["tag"] == str(index)] == list(range(LINES))


@pytest.mark.timeout(60)
def test_threads_writing_one_file_lose_and_tear_nothing(tmp_path, quiet_log):
    """T threads x M lines to one file (as thread-mode tasks share runner.jsonl)."""
    path = tmp_path / "runner.jsonl"
    log.configure(path=str(path), run_id="threads", process="runner")
    start = threading.Barrier(THREADS)

    def write(index: int) -> None:
        logger = log.logger(thread=index)
        start.wait()
        for seq in range(LINES):
            logger.info("line", seq=seq, pad="y" * (seq % 7 * 300))

    threads = [threading.Thread(target=write, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    lines = read_strict(path)
    assert len(lines) == THREADS * LINES
    for index in range(THREADS):
        assert [line["seq"] for line in lines if line["thread"] == index] == list(range(LINES))


@pytest.mark.timeout(60)
@pytest.mark.parametrize("pad", [100, 200_000])
def test_a_process_killed_mid_write_leaves_at_most_one_torn_line(tmp_path, pad):
    """SIGKILL a process logging as fast as it can: every line but perhaps the last is
    whole; a torn last line is skipped with a warning and the rest is read."""
    path = tmp_path / "worker.jsonl"
    proc = multiprocessing.get_context("fork").Process(
        target=tasks.log_until_killed, args=(str(path), pad))
    proc.start()
    seen = {"offset": 0, "lines": 0}

    def twenty_whole_lines() -> bool:
        """What the test asserts below (not a byte count: 20 * pad bytes are fewer than 20
        lines, as every line holds more than its padding). Reads each byte once, and no
        further than the 20th newline's block, so the kill is not delayed by re-reading a
        file that grows fast."""
        assert proc.exitcode is None, "the writer ended before it was killed"
        if not path.exists():
            return False
        with path.open("rb") as file:
            file.seek(seen["offset"])
            while seen["lines"] < 20 and (block := file.read(1 << 20)):
                seen["offset"] += len(block)
                seen["lines"] += block.count(b"\n")
        return seen["lines"] >= 20

    try:
        wait_until(twenty_whole_lines, timeout=30, interval=0.01,
                   what="20 whole lines in the log")
        os.kill(proc.pid, signal.SIGKILL)
        proc.join(10)
    finally:
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == -signal.SIGKILL
    data = path.read_bytes()
    whole = data.count(b"\n")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        lines = read_jsonl(path)
    assert len(lines) == whole >= 20
    assert [line["seq"] for line in lines] == list(range(whole))
    torn = [w for w in caught if issubclass(w.category, TornLineWarning)]
    if data.endswith(b"\n"):
        assert torn == []
    else:  # killed inside a write: the tail after the last newline is the torn line
        assert len(torn) == 1
        assert f"line {whole + 1}" in str(torn[0].message)


def test_a_torn_line_written_by_hand_is_skipped_with_a_warning(tmp_path):
    path = tmp_path / "runner.jsonl"
    path.write_bytes(b'{"event": "a", "seq": 0}\n{"event": "b", "seq": 1}\n\n'
                     b'{"event": "c", "seq": 2}\n{"event": "d", "se')
    with pytest.warns(TornLineWarning, match=r"runner\.jsonl: skipped 1 torn line \(line 5\)"):
        lines = read_jsonl(path)
    assert [line["event"] for line in lines] == ["a", "b", "c"]


def test_every_line_that_is_not_a_json_object_is_skipped_and_named(tmp_path):
    """A torn line followed by more lines (a file appended after a crash), bad UTF-8,
    or a JSON value that is not an object: all skipped, named in one warning."""
    path = tmp_path / "results.jsonl"
    path.write_bytes(b'{"a": 1}\n{"a": 2, "b\n{"a": 3}\n\xff\xfe\n[1, 2]\n{"a": 4}\n')
    with pytest.warns(TornLineWarning, match=r"skipped 3 torn lines \(line 2, 4, 5\)"):
        lines = read_jsonl(path)
    assert [line["a"] for line in lines] == [1, 3, 4]


def test_a_whole_file_reads_without_warnings(tmp_path):
    path = tmp_path / "ok.jsonl"
    path.write_text('{"a": 1}\n{"a": 10000000000000000000000000000000}\n')
    assert read_strict(path) == [{"a": 1}, {"a": 10**31}]
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    assert read_strict(empty) == []
