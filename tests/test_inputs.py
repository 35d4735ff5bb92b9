"""What jobs get as input, end to end: map files, the config's folder, big queue items."""

from __future__ import annotations

import pytest

import runner
from tests.helpers import journal, run_config

pytestmark = pytest.mark.timeout(90)


def test_map_file_jsonl_csv_and_text(write_config, tmp_path):
    """A map file is relative to the config: .jsonl values, .csv row mappings, text lines."""
    data = tmp_path / "data"
    data.mkdir()
    (data / "items.jsonl").write_text('{"a": 1}\n\n[1, 2]\n"three"\n4\n')
    (data / "rows.csv").write_text("name,size\nx,1\ny,22\n")
    (data / "lines.txt").write_text("first line\n  second  \n")
    path = write_config("""\
        jobs:
          jsonl: {function: "tests.tasks:echo", mode: serial, map: {file: data/items.jsonl}}
          csv: {function: "tests.tasks:echo", mode: pool, workers: 2,
                map: {file: data/rows.csv}, unpack: true}
          text: {function: "builtins:len", mode: thread, map: {file: data/lines.txt}}
    """)
    report = run_config(tmp_path, path)
    assert report.exit_code == 0, report.jobs
    jsonl, csv, text = (job.results for job in report.jobs)
    assert [r["args"][0] for r in jsonl] == [{"a": 1}, [1, 2], "three", 4]
    assert csv == [{"args": [], "kwargs": {"name": "x", "size": "1"}},
                   {"args": [], "kwargs": {"name": "y", "size": "22"}}]
    assert text == [len("first line"), len("  second  ")]


@pytest.mark.parametrize("before", [1, 200_000], ids=["near the start", "at the end"])
def test_bad_map_file_line_is_a_config_error_and_nothing_runs(write_config, tmp_path, run_cli,
                                                              before):
    """A bad line is exit 2 naming FILE:LINE, and nothing runs, also past 200,000 good lines
    (the file is checked in one pass before the first job starts)."""
    (tmp_path / "items.jsonl").write_text("".join(f"{i}\n" for i in range(before))
                                          + '{"broken": \n3\n')
    path = write_config("""\
        jobs:
          first: {function: "tests.tasks:square", mode: serial, args: [2]}
          items: {function: "tests.tasks:echo", map: {file: items.jsonl}}
    """)
    result = run_cli(str(path))
    assert result.code == 2, result
    assert f"{tmp_path / 'items.jsonl'}:{before + 1}:" in result.stderr
    assert "jobs.items.map.file: not a JSON value" in result.stderr
    assert not (tmp_path / "logs").exists()


def test_functions_in_the_config_folder_import_in_every_worker(write_config, tmp_path,
                                                               start_method):
    """The config's folder is importable in the runner and in workers of every start method."""
    (tmp_path / "localjobs.py").write_text(
        "import os\n\ndef triple(x):\n    return (3 * x, os.getpid())\n")
    path = write_config("""\
        jobs:
          local: {function: "localjobs:triple", mode: pool, workers: 2, map: [1, 2, 3]}
    """)
    report = run_config(tmp_path, path, start_method=start_method)
    assert report.exit_code == 0, report.jobs[0].errors
    assert [value for value, _ in report.jobs[0].results] == [3, 6, 9]


@pytest.mark.parametrize("mode", ["process", "pool"])
def test_big_queue_items_do_not_deadlock_the_join(write_config, tmp_path, mode):
    """Items larger than a pipe's buffer, left in a queue, do not hang the workers' exit."""
    path = write_config(f"""\
        shared:
          q: queue
        jobs:
          put:
            function: tests.tasks:put_big
            mode: {mode}
            workers: 2
            map: [a, b, c]
            args: [!ref q]
    """)
    report = run_config(tmp_path, path, start_method="fork")
    assert report.exit_code == 0, report.jobs[0].errors
    items = report.shared["q"]
    assert sorted(item[0] for item in items) == ["a", "b", "c"]
    assert all(len(item) == 1_000_000 for item in items)


def test_journal_for_a_big_map_is_a_few_lines(write_config, tmp_path):
    """100,000 map items under chunksize auto are journaled per chunk, not per item."""
    path = write_config("""\
        jobs:
          many: {function: "tests.tasks:square", mode: pool, workers: 2, map: {range: 100000}}
    """)
    report = run_config(tmp_path, path, start_method="fork")
    assert report.jobs[0].results == [x * x for x in range(100_000)]
    lines = journal(report)
    assert len(lines) == 8  # ceil(100000 / (4 * 2)) items per chunk
    values = [v for line in lines for v in line["values"]]
    assert sorted(values) == [x * x for x in range(100_000)]


def test_unpicklable_arguments_are_a_job_error_before_anything_runs(tmp_path):
    """A Config built in Python can hold a lambda; process modes refuse it up front."""
    from runner.config import Config
    from runner.errors import ConfigError

    config = Config.validate({"jobs": {
        "first": {"function": "tests.tasks:square", "mode": "serial", "args": [2]},
        "bad": {"function": "tests.tasks:echo", "mode": "pool", "args": [lambda: 1]},
    }})
    with pytest.raises(ConfigError) as info:
        runner.run(config, log_dir=tmp_path / "logs")
    (issue,) = info.value.issues
    assert issue.path == "jobs.bad"
    assert "cannot be sent to a worker process" in issue.message
    assert not (tmp_path / "logs").exists()
    serial = Config.validate({"jobs": {
        "ok": {"function": "tests.tasks:echo", "mode": "thread", "args": [lambda: 1]}}})
    report = runner.run(serial, log_dir=tmp_path / "logs")
    assert report.exit_code == 0
