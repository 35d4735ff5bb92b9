"""``--resume latest`` means the newest run of *this* config (``LOG_DIR/latest-NAME``).

Several configs share one log folder; the folder-wide ``latest`` is whichever
ran last, so resuming by it would pick another config's run (and then suggest
``--force``). Each config's newest run has its own link, ``latest-NAME``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(90)

FAILING = """
jobs:
  items: {function: "tests.tasks:fail_on", mode: serial, map: [1, 2, 3, 4]}
"""
PASSING = """
jobs:
  squares: {function: "tests.tasks:square", mode: serial, map: [1, 2]}
"""


def test_resume_latest_takes_this_configs_newest_run_not_the_folders(
        run_cli, tmp_path: Path) -> None:
    a, b = tmp_path / "a.yaml", tmp_path / "b.yaml"
    a.write_text(FAILING)
    b.write_text(PASSING)
    first_a = run_cli(str(a), "--json")
    assert first_a.code == 1, first_a
    first_b = run_cli(str(b), "--json")
    assert first_b.code == 0, first_b
    logs = tmp_path / "logs"
    assert os.readlink(logs / "latest") == first_b.json()["run_id"]
    assert os.readlink(logs / "latest-a") == first_a.json()["run_id"]
    assert os.readlink(logs / "latest-b") == first_b.json()["run_id"]

    resumed = run_cli(str(a), "--json", "--resume", "latest")
    assert resumed.code == 1, resumed  # task 2 fails again; the others are reused
    doc = resumed.json()
    assert doc["resumed_from"] == first_a.json()["run_id"]
    assert doc["resume_notes"] == []
    assert (doc["jobs"][0]["reused"], doc["jobs"][0]["results"]) == (3, [1, 2, None, 4])
    assert os.readlink(logs / "latest-a") == doc["run_id"]
    assert os.readlink(logs / "latest-b") == first_b.json()["run_id"]


def test_resume_latest_without_an_earlier_run_of_the_config_is_refused(
        run_cli, tmp_path: Path) -> None:
    other, fresh = tmp_path / "other.yaml", tmp_path / "fresh.yaml"
    other.write_text(PASSING)
    fresh.write_text(PASSING)
    assert run_cli(str(other)).code == 0
    result = run_cli(str(fresh), "--resume", "latest")
    assert result.code == 2, result
    assert "--resume latest: no earlier run of 'fresh'" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "logs" / "latest-fresh").exists()


def test_a_config_name_with_odd_characters_gets_a_safe_link(run_cli, tmp_path: Path) -> None:
    path = tmp_path / "odd.yaml"
    path.write_text('name: "nightly / eu west"\n' + PASSING)
    result = run_cli(str(path), "--json")
    assert result.code == 0, result
    assert os.readlink(tmp_path / "logs" / "latest-nightly___eu_west") == result.json()["run_id"]
