"""Every seed example, run end to end through the CLI, gives the tutorial's answer."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.timeout(120)


def tutorial_cube_sum(n: int) -> int:
    """The seed's loop, written out here so the test does not trust jobs/tutorial.py."""
    return sum(i + i**2 + i**3 for i in range(n))


def test_process_prints_aaaaa(run_cli, start_method):
    """configs/process.yaml: one process runs job(1, 2), which prints aaaaa."""
    result = run_cli("configs/process.yaml", "--start-method", start_method)
    assert result.code == 0, result
    assert result.stdout.splitlines()[0] == "aaaaa"
    assert "process: process" in result.stdout


def test_queue_holds_both_cube_sums(run_cli, start_method):
    """configs/queue.yaml: two processes put their cube sums on one queue; both are left in it."""
    result = run_cli("configs/queue.yaml", "--json", "--start-method", start_method)
    assert result.code == 0, result
    items = result.json()["shared"]["q"]
    assert items == [tutorial_cube_sum(1000)] * 2
    assert sum(items) == 499_667_166_000


def test_comparison_same_results_in_every_mode(run_cli):
    """configs/comparison.yaml: serial, thread and process agree on the tutorial's total."""
    result = run_cli("configs/comparison.yaml", "--json")
    assert result.code == 0, result
    job = result.json()["jobs"][0]
    assert job["results"] == [tutorial_cube_sum(1_000_000)] * 2
    assert job["reduced"] == 2 * tutorial_cube_sum(1_000_000)
    assert [entry["mode"] for entry in job["compare"]] == ["serial", "thread", "process"]
    assert all(entry["same_results"] for entry in job["compare"])
    assert job["compare"][0]["speedup"] == 1.0
    assert all(entry["seconds"] > 0 for entry in job["compare"])


def test_comparison_prints_a_table(run_cli):
    """The human summary of a compare job is a table of seconds and speedup per mode."""
    result = run_cli("configs/comparison.yaml", env={"N": "20000"})
    assert result.code == 0, result
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "speedup" in line)
    assert header.split() == ["mode", "seconds", "speedup", "same", "results"]
    rows = lines[lines.index(header) + 1:lines.index(header) + 4]
    assert [row.split()[0] for row in rows] == ["serial", "thread", "process"]
    assert all(row.split()[-1] == "yes" for row in rows)


def test_pool_map_apply_and_separate_calls(run_cli, start_method):
    """configs/pool.yaml: map gives the squares, one call gives 4, ten calls the squares."""
    result = run_cli("configs/pool.yaml", "--json", "--start-method", start_method)
    assert result.code == 0, result
    jobs = {job["name"]: job for job in result.json()["jobs"]}
    squares = [x * x for x in range(10)]
    assert jobs["map"]["results"] == squares
    assert jobs["apply"]["results"] == [4]
    assert jobs["apply_many"]["results"] == squares
    assert jobs["apply_many"]["tasks"] == 10


def test_shared_value_and_array(run_cli, start_method):
    """configs/shared.yaml: workers see Value('i', 0), Value('d', 3.14), Array('i', [1..4])."""
    result = run_cli("configs/shared.yaml", "--json", "--start-method", start_method)
    assert result.code == 0, result
    doc = result.json()
    jobs = {job["name"]: job for job in doc["jobs"]}
    assert jobs["read"]["results"] == [[0, 3.14, [1, 2, 3, 4]]]
    assert jobs["square"]["results"] == [1, 4, 9, 16]
    assert doc["shared"] == {"value1": 4, "value2": 3.14, "array": [1, 4, 9, 16]}


def test_lock_counter_ends_at_40_with_each_process_together(run_cli, start_method):
    """configs/lock.yaml: 1 and 3 added ten times each under a lock: 40, lines grouped."""
    result = run_cli("configs/lock.yaml", "--start-method", start_method)
    assert result.code == 0, result
    printed = [int(line) for line in result.stdout.splitlines() if line.strip().isdigit()]
    one_first = list(range(1, 11)) + list(range(13, 41, 3))
    three_first = list(range(3, 31, 3)) + list(range(31, 41))
    assert printed in (one_first, three_first)
    assert "counter = 40" in result.stdout
