"""summary.json's results are the journal's JSON, joined, never encoded twice (Tally's
encoded_results): byte for byte what orjson writes of the list, and only when the chunks'
JSON holds every task in order; any gap (a failure, a reused or unrun task) writes the
results afresh."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from runner.observe import Finished, Tally
from runner.vet import vetted
from runner.work import Outcome, TaskError

ROOT = Path(__file__).resolve().parent.parent
values = st.lists(st.one_of(st.integers(-2**63, 2**64 - 1), st.floats(allow_nan=False),
                            st.text(max_size=5), st.none(), st.booleans(),
                            st.lists(st.integers(0, 9), max_size=3)), max_size=40)


def _finish(tally: Tally, first: int, chunk: list[Any], errors: list[TaskError] | None = None,
            attempt: int = 1) -> None:
    outcome, encoded, refused = vetted(Outcome(first, chunk, errors or [], 0.0, 1), "j")
    tally.finished(Finished("j", outcome, attempt, None, encoded, refused))


@given(values, st.lists(st.integers(1, 7), min_size=1, max_size=10), st.randoms())
def test_whole_chunks_in_any_order_join_to_the_lists_json(
        results: list[Any], sizes: list[int], rng: Any) -> None:
    chunks, at = [], 0
    while at < len(results):
        size = sizes[len(chunks) % len(sizes)]
        chunks.append((at, results[at:at + size]))
        at += size
    rng.shuffle(chunks)  # chunks finish in any order
    tally = Tally(len(results), {})
    for first, chunk in chunks:
        _finish(tally, first, chunk)
    assert tally.results == results
    assert tally.encoded_results() == orjson.dumps(results, option=orjson.OPT_NON_STR_KEYS)


def test_a_gap_means_no_joined_json() -> None:
    failed = Tally(4, {})
    _finish(failed, 0, [1, 2])
    _finish(failed, 2, [None, 4], [TaskError(2, "ValueError", "bad")])
    assert failed.encoded_results() is None
    _finish(failed, 2, [3], attempt=2)  # the retry: task 3's value came in a failed chunk
    assert failed.results == [1, 2, 3, 4] and failed.encoded_results() is None
    reused = Tally(3, {0: "old"})
    _finish(reused, 1, [1, 2])
    assert reused.encoded_results() is None
    unrun = Tally(3, {})
    _finish(unrun, 0, [0, 1])
    assert unrun.encoded_results() is None
    huge = Tally(2, {})
    _finish(huge, 0, [1, 2**70])  # orjson refuses it: written by the slow path
    assert huge.encoded_results() is None and huge.refused
    assert Tally(0, {}).encoded_results() == b"[]"


@pytest.mark.timeout(120)
@pytest.mark.parametrize("tasks", [5000, 2_000_003])  # the second's sum is beyond 64 bits
def test_summary_json_results_are_the_journals(tmp_path: Path, tasks: int) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("jobs:\n  sq:\n    function: tests.tasks:square\n    mode: pool\n"
                      f"    workers: 2\n    map: {{range: {tasks}}}\n    reduce: sum\n")
    proc = subprocess.run([sys.executable, "-m", "runner", str(config), "--json", "-q",
                           "--log-dir", str(tmp_path / "logs")], capture_output=True,
                          cwd=ROOT, timeout=110, check=False)
    assert proc.returncode == 0, proc.stderr.decode()
    run_dir = next(path for path in (tmp_path / "logs").iterdir() if path.name[0].isdigit())
    written = (run_dir / "summary.json").read_bytes()
    assert proc.stdout == written
    job = json.loads(written)["jobs"][0]
    assert job["results"] == [x * x for x in range(tasks)]
    assert job["reduced"] == sum(x * x for x in range(tasks))
    journal = [json.loads(line) for line in (run_dir / "results.jsonl").open()]
    assert sorted(v for line in journal for v in line["values"]) == job["results"]


@pytest.mark.timeout(60)
def test_a_reducer_that_sorts_its_list_leaves_the_results_as_they_came(tmp_path: Path) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("jobs:\n  sq:\n    function: tests.tasks:square\n    mode: pool\n"
                      "    workers: 2\n    map: {range: 5}\n"
                      "    reduce: tests.tasks:sort_in_place\n")
    proc = subprocess.run([sys.executable, "-m", "runner", str(config), "--log-dir",
                           str(tmp_path / "logs")], capture_output=True, text=True,
                          cwd=ROOT, timeout=50, check=False)
    assert proc.returncode == 0, proc.stderr
    run_dir = next(path for path in (tmp_path / "logs").iterdir() if path.name[0].isdigit())
    job = json.loads((run_dir / "summary.json").read_text())["jobs"][0]
    assert (job["results"], job["reduced"]) == ([0, 1, 4, 9, 16], 16)
    assert "results: [0, 1, 4, 9, 16]" in proc.stdout, proc.stdout
