"""Writing to stdout: a reader that goes away ends the output quietly; any other failure
to write (a full disk, a closed stdout, an encoding that cannot hold the text) is one
line on stderr and exit 74. Never a traceback, and the run's files are complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(90)

CONFIG = """
jobs:
  squares: {function: "tests.tasks:square", mode: serial, map: [1, 2, 3]}
"""


def mprun(tmp_path: Path, *args: str, shell_tail: str = "", env: dict[str, str] | None = None,
          config: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run mprun on CONFIG through sh, so that ``shell_tail`` can redirect stdout."""
    path = config or tmp_path / "config.yaml"
    if config is None:
        path.write_text(CONFIG)
    argv = " ".join([sys.executable, "-m", "runner", str(path), "--log-dir",
                     str(tmp_path / "logs"), *args])
    return subprocess.run(["sh", "-c", f"exec {argv} {shell_tail}"], capture_output=True,
                          check=False, text=True, cwd=ROOT, timeout=60,
                          env={**os.environ, **(env or {})}, stdin=subprocess.DEVNULL)


def summary(tmp_path: Path) -> dict:
    return json.loads((tmp_path / "logs" / "latest" / "summary.json").read_text())


def test_a_reader_that_goes_away_ends_the_output_quietly(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text(CONFIG)
    proc = subprocess.Popen([sys.executable, "-m", "runner", str(tmp_path / "config.yaml"),
                             "--log-dir", str(tmp_path / "logs")], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # like `| head` that has read what it wanted
    stderr = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, stderr
    assert "Traceback" not in stderr and "BrokenPipe" not in stderr, stderr
    assert summary(tmp_path)["status"] == "ok"


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
@pytest.mark.parametrize("json_flag", [[], ["--json"]], ids=["human", "json"])
def test_a_full_disk_on_stdout_is_one_line_and_exit_74(tmp_path: Path,
                                                       json_flag: list[str]) -> None:
    result = mprun(tmp_path, *json_flag, shell_tail="> /dev/full")
    assert result.returncode == 74, result
    assert "Traceback" not in result.stderr
    assert "mprun: error: cannot write to stdout: No space left on device" in result.stderr
    assert summary(tmp_path)["status"] == "ok"


def test_a_closed_stdout_is_one_line_and_exit_74(tmp_path: Path) -> None:
    config = tmp_path / "shout.yaml"
    config.write_text('jobs:\n  loud: {function: "tests.tasks:shout", mode: serial, '
                      'map: [hello]}\n')
    result = mprun(tmp_path, config=config, shell_tail=">&-")
    assert result.returncode == 74, result
    assert "mprun: error: cannot write to stdout: it is closed" in result.stderr
    assert "Traceback" not in result.stderr
    # fd 1 was held with /dev/null: no file of the run took it, so what tasks print
    # (shout prints "task says hello") did not land in a log file.
    assert summary(tmp_path)["status"] == "ok"
    for log in (tmp_path / "logs" / "latest").glob("*.jsonl"):
        assert "task says hello" not in log.read_text(), log


def test_an_encoding_that_cannot_hold_the_text_is_one_line_and_exit_74(tmp_path: Path) -> None:
    folder = tmp_path / "café"
    folder.mkdir()
    config = folder / "config.yaml"
    config.write_text(CONFIG)
    result = mprun(tmp_path, config=config, env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 74, result
    assert "mprun: error: cannot write to stdout:" in result.stderr
    assert "Traceback" not in result.stderr
    assert summary(tmp_path)["status"] == "ok"
