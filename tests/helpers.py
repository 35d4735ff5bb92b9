"""Helpers the test modules share (imported as ``tests.helpers``, as ``tests.conftest`` is):
run a config in-process, read JSON-lines files and a run's journal, wait for a condition."""

from __future__ import annotations

import textwrap
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import runner
from runner.log import TornLineWarning, read_jsonl
from runner.report import RunReport

T = TypeVar("T")


def run_config(tmp_path: Path, config: str | Path, **options: Any) -> RunReport:
    """Run a config through ``runner.run()`` with its logs under ``tmp_path / "logs"``.

    ``config`` is YAML text (dedented and written to ``tmp_path / "config.yaml"``) or
    the path of a config already written. ``options`` go to ``runner.run()`` as they
    are (``start_method="fork"``, ``grace=0``, ...).
    """
    if isinstance(config, str):
        path = tmp_path / "config.yaml"
        path.write_text(textwrap.dedent(config))
    else:
        path = config
    return runner.run(path, log_dir=tmp_path / "logs", **options)


def read_strict(path: str | Path) -> list[dict[str, Any]]:
    """``runner.log.read_jsonl``, failing on any torn line (for files a finished run wrote;
    a file a live process is still writing may end in a torn line: use ``read_jsonl``)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", TornLineWarning)
        return read_jsonl(path)


def journal(report: RunReport, job: str | None = None) -> list[dict[str, Any]]:
    """The lines of the run's ``results.jsonl``, in order; only ``job``'s if given."""
    assert report.log_dir is not None
    lines = read_strict(Path(report.log_dir) / "results.jsonl")
    return lines if job is None else [line for line in lines if line["job"] == job]


def wait_until(predicate: Callable[[], T], timeout: float = 30, interval: float = 0.02,
               what: str = "the condition") -> T:
    """Call ``predicate`` every ``interval`` seconds until it returns something true, and
    return that; fail if ``timeout`` seconds pass first. ``predicate`` may itself assert
    (that the process it waits on is still alive, say)."""
    deadline = time.monotonic() + timeout
    while True:
        result = predicate()
        if result:
            return result
        assert time.monotonic() < deadline, f"{what} did not happen within {timeout:g}s"
        time.sleep(interval)
