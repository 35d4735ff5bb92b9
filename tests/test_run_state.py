"""Nothing of a run outlives ``runner.run()``.

Its log file is closed, structlog is put back as it was, and a second run
in the same process writes only into its own folder; no ResourceWarning.
"""

from __future__ import annotations

import gc
import textwrap
import warnings
from pathlib import Path

import psutil
import pytest
import structlog
from structlog.testing import LogCapture

import runner
from runner.report import RunReport
from tests.helpers import read_strict, run_config

pytestmark = pytest.mark.timeout(60)

CONFIG = """
jobs:
  squares: {function: tests.tasks:square, mode: serial, map: [1, 2, 3]}
"""


def run_once(tmp_path: Path, name: str) -> RunReport:
    path = tmp_path / f"{name}.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    report = run_config(tmp_path, path)
    assert report.status == "ok"
    return report


def runner_log(report: RunReport) -> list[dict]:
    assert report.log_dir is not None
    return read_strict(Path(report.log_dir) / "runner.jsonl")


def test_logging_after_a_run_does_not_land_in_its_folder(tmp_path: Path) -> None:
    report = run_once(tmp_path, "one")
    lines = runner_log(report)
    assert lines[-1]["event"] == "run finished"
    runner.get_logger().info("after the run", marker="x")
    assert runner_log(report) == lines


def test_a_second_run_writes_only_into_its_own_folder(tmp_path: Path) -> None:
    first = run_once(tmp_path, "one")
    second = run_once(tmp_path, "two")
    assert first.run_id != second.run_id
    assert {line["run_id"] for line in runner_log(first)} == {first.run_id}
    assert {line["run_id"] for line in runner_log(second)} == {second.run_id}
    assert [line["event"] for line in runner_log(first)].count("run started") == 1


def test_a_callers_structlog_configuration_is_put_back(tmp_path: Path) -> None:
    capture = LogCapture()
    structlog.configure(processors=[capture])
    try:
        run_once(tmp_path, "one")
        structlog.get_logger().info("mine")
        assert [entry["event"] for entry in capture.entries] == ["mine"]
    finally:
        structlog.reset_defaults()


def test_an_unconfigured_structlog_is_left_unconfigured(tmp_path: Path) -> None:
    structlog.reset_defaults()
    run_once(tmp_path, "one")
    assert not structlog.is_configured()


def test_a_run_leaves_no_file_open(tmp_path: Path) -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        report = run_once(tmp_path, "one")
        still_open = [f.path for f in psutil.Process().open_files()
                      if f.path.startswith(str(report.log_dir))]
        gc.collect()
    assert still_open == []
    leaked = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert leaked == []
