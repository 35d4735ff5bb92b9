"""Shared fixtures: run the CLI as a subprocess, write configs, pick start methods."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
START_METHODS = ["fork", "forkserver", "spawn"]
MODES = ["serial", "thread", "process", "pool"]


@pytest.fixture(autouse=True, scope="session")
def _config_cache(tmp_path_factory: pytest.TempPathFactory) -> None:
    """The tests' validated-config cache (runner.configcache): their own folder, not the
    user's ~/.cache; CLI subprocesses inherit it."""
    os.environ["MPRUN_CACHE_DIR"] = str(tmp_path_factory.mktemp("config-cache"))


class CLIResult:
    def __init__(self, proc: subprocess.CompletedProcess[str]) -> None:
        self.code = proc.returncode
        self.stdout = proc.stdout
        self.stderr = proc.stderr

    def json(self) -> Any:
        return json.loads(self.stdout)

    def __repr__(self) -> str:
        return f"<exit {self.code}\nstdout:\n{self.stdout}\nstderr:\n{self.stderr}>"


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., CLIResult]:
    """Run ``python -m runner ARGS`` from the repo root, logs under tmp_path."""

    def run(*args: str, env: dict[str, str] | None = None, cwd: Path | None = None,
            timeout: float = 90, log_dir: bool = True) -> CLIResult:
        full_env = {**os.environ, **(env or {})}
        argv = [sys.executable, "-m", "runner", *args]
        if log_dir and args and args[0] not in ("validate", "schema", "--version"):
            argv += ["--log-dir", str(tmp_path / "logs")]
        proc = subprocess.run(argv, check=False, capture_output=True, text=True, env=full_env,
                              cwd=cwd or ROOT, timeout=timeout, stdin=subprocess.DEVNULL)
        return CLIResult(proc)

    return run


@pytest.fixture
def write_config(tmp_path: Path) -> Callable[..., Path]:
    """Write a YAML config (dedented) into tmp_path and return its path."""

    def write(text: str, name: str = "config.yaml") -> Path:
        path = tmp_path / name
        path.write_text(textwrap.dedent(text))
        return path

    return write


@pytest.fixture(params=START_METHODS)
def start_method(request: pytest.FixtureRequest) -> str:
    return str(request.param)


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption("--run-slow", action="store_true", default=False,
                     help="also run the full-size load tests marked slow (minutes each)")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Tests marked ``slow`` are skipped, with the reason printed, unless --run-slow."""
    if config.getoption("--run-slow"):
        return
    skip = pytest.mark.skip(reason="slow load test: run with --run-slow")
    for item in items:
        if item.get_closest_marker("slow") is not None:
            item.add_marker(skip)
