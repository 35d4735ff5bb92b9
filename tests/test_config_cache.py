"""The validated-config cache (runner.configcache): a hit gives the same config without
parsing or validating again; anything the config depends on changing is a miss; what it
names outside itself is checked on every load; no secret and no bad config is kept."""

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

from runner import configcache

pytestmark = pytest.mark.timeout(120)

# Loads a config in a fresh interpreter and says how: whether the YAML parser and
# pydantic were needed, and the config as JSON.
PROBE = """
import dataclasses, json, sys
from runner.loader import load_config
from runner.errors import ConfigError
try:
    config = load_config(sys.argv[1])
except ConfigError as exc:
    print(json.dumps({"error": [str(issue) for issue in exc.issues]}))
    raise SystemExit(0)
parsed = "runner.yamlsource" in sys.modules
built = "pydantic" in sys.modules
dumped = dataclasses.asdict(dataclasses.replace(config, origin=None))
print(json.dumps({"parsed": parsed, "built": built, "config": dumped}))
"""

CONFIG = """\
jobs:
  sq:
    function: tests.tasks:square
    mode: pool
    workers: ${WORKERS:-2}
    map: [1, 2, 3]
"""


@pytest.fixture
def cache(tmp_path: Path) -> Path:
    return tmp_path / "cache"


@pytest.fixture
def load(cache: Path) -> Callable[..., dict[str, Any]]:
    def run(path: Path, **env: str) -> dict[str, Any]:
        full = {**os.environ, "MPRUN_CACHE_DIR": str(cache), **env}
        proc = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                              text=True, env=full, cwd=Path(__file__).parent.parent,
                              timeout=60, check=False)
        assert proc.returncode == 0, proc.stderr
        result: dict[str, Any] = json.loads(proc.stdout)
        return result
    return run


def entries(cache: Path) -> list[Path]:
    return sorted(cache.glob("*.entry")) if cache.exists() else []


def test_a_second_load_is_a_hit_and_gives_the_same_config(
        write_config: Callable[..., Path], load: Callable[..., dict[str, Any]],
        cache: Path) -> None:
    path = write_config(CONFIG)
    first = load(path)
    assert first["parsed"] and first["built"]
    assert len(entries(cache)) == 1
    second = load(path)
    assert not second["parsed"], "a hit must not parse the YAML"
    assert not second["built"], "a hit must not import pydantic"
    assert second["config"] == first["config"]
    assert oct(entries(cache)[0].stat().st_mode & 0o777) == "0o600"
    assert oct(cache.stat().st_mode & 0o777) == "0o700"


def test_an_edit_is_a_miss(write_config: Callable[..., Path],
                           load: Callable[..., dict[str, Any]]) -> None:
    path = write_config(CONFIG)
    load(path)
    path.write_text(CONFIG.replace("map: [1, 2, 3]", "map: [1, 2, 4]"))
    again = load(path)
    assert again["parsed"]
    assert again["config"]["jobs"]["sq"]["map"] == [1, 2, 4]


def test_a_changed_environment_variable_is_a_miss(
        write_config: Callable[..., Path], load: Callable[..., dict[str, Any]],
        cache: Path) -> None:
    path = write_config(CONFIG)
    assert load(path, WORKERS="3")["config"]["jobs"]["sq"]["workers"] == 3
    hit = load(path, WORKERS="3")
    assert not hit["parsed"]
    changed = load(path, WORKERS="5")
    assert changed["parsed"] and changed["config"]["jobs"]["sq"]["workers"] == 5
    env = {k: v for k, v in os.environ.items() if k != "WORKERS"}
    proc = subprocess.run([sys.executable, "-c", PROBE, str(path)], capture_output=True,
                          text=True, env={**env, "MPRUN_CACHE_DIR": str(cache)},
                          cwd=Path(__file__).parent.parent, timeout=60, check=False)
    assert json.loads(proc.stdout)["config"]["jobs"]["sq"]["workers"] == 2
    # An entry names the variable, and holds no value of it, only a salted hash.
    for entry in entries(cache):
        assert b"WORKERS" in entry.read_bytes()


def test_each_value_of_a_variable_keeps_its_own_entry(
        write_config: Callable[..., Path], load: Callable[..., dict[str, Any]],
        cache: Path) -> None:
    """A config run with one value, then another, then the first again: the third load
    is a hit (the value is in the key), where one entry per config would have been
    replaced by the second value's and missed."""
    path = write_config(CONFIG)
    assert load(path, WORKERS="3")["parsed"]
    assert load(path, WORKERS="5")["parsed"]
    assert len(entries(cache)) == 2
    again = load(path, WORKERS="3")
    assert not again["parsed"] and again["config"]["jobs"]["sq"]["workers"] == 3
    other = load(path, WORKERS="5")
    assert not other["parsed"] and other["config"]["jobs"]["sq"]["workers"] == 5


def test_the_key_follows_each_variable_the_text_names_and_no_secret(
        monkeypatch: pytest.MonkeyPatch) -> None:
    text = "workers: ${WORKERS:-2}\nargs: [${API_TOKEN}]\n"
    monkeypatch.delenv("WORKERS", raising=False)
    monkeypatch.setenv("API_TOKEN", "one")
    unset = configcache.key("a.yaml", text)
    monkeypatch.setenv("WORKERS", "")
    empty = configcache.key("a.yaml", text)
    monkeypatch.setenv("WORKERS", "2")
    two = configcache.key("a.yaml", text)
    assert len({unset, empty, two}) == 3  # unset, empty and "2" are three environments
    monkeypatch.setenv("API_TOKEN", "two")
    assert configcache.key("a.yaml", text) == two  # no key is made from a secret's value
    monkeypatch.setenv("UNNAMED", "x")
    assert configcache.key("a.yaml", text) == two


def test_no_entry_holds_a_secret(write_config: Callable[..., Path],
                                 load: Callable[..., dict[str, Any]], cache: Path) -> None:
    path = write_config(CONFIG.replace("map: [1, 2, 3]",
                                       "map: [1]\n    args:\n      - ${API_TOKEN}"))
    assert load(path, API_TOKEN="hunter2-secret")["config"]["jobs"]["sq"]["args"] == [
        "hunter2-secret"]
    assert entries(cache) == []
    assert load(path, API_TOKEN="hunter2-secret")["parsed"]


def test_a_bad_config_is_not_kept_and_still_fails(
        write_config: Callable[..., Path], load: Callable[..., dict[str, Any]],
        cache: Path) -> None:
    path = write_config(CONFIG.replace("workers: ${WORKERS:-2}", "workers: 0"))
    for _ in range(2):
        error = load(path)["error"]
        assert any(":5:" in line and "jobs.sq.workers" in line for line in error), error
    assert entries(cache) == []


def test_a_hit_checks_map_files_and_functions_again(
        write_config: Callable[..., Path], run_cli: Callable[..., Any], tmp_path: Path,
        cache: Path) -> None:
    """What a config names outside itself can change without the config changing."""
    (tmp_path / "items.jsonl").write_text("1\n2\n")
    module = tmp_path / "cachejob.py"
    module.write_text("def double(x):\n    return 2 * x\n")
    path = write_config("""\
        jobs:
          twice:
            function: cachejob:double
            mode: serial
            map: {file: items.jsonl}
        """)
    env = {"MPRUN_CACHE_DIR": str(cache)}
    first = run_cli("validate", str(path), env=env)
    assert first.code == 0, first
    assert len(entries(cache)) == 1
    (tmp_path / "items.jsonl").unlink()
    gone = run_cli("validate", str(path), env=env)
    assert gone.code == 2, gone
    assert f"{path}:5:" in gone.stderr and "items.jsonl" in gone.stderr, gone.stderr
    (tmp_path / "items.jsonl").write_text("1\n2\n")
    module.write_text("def triple(x):\n    return 3 * x\n")
    renamed = run_cli("validate", str(path), env=env)
    assert renamed.code == 2, renamed
    assert f"{path}:3:" in renamed.stderr and "double" in renamed.stderr, renamed.stderr
    module.write_text("def double(x):\n    return 2 * x\n")
    ran = run_cli(str(path), "--json", env=env)
    assert ran.code == 0, ran
    assert ran.json()["jobs"][0]["results"] == [2, 4]


def test_a_torn_entry_is_a_miss_and_is_replaced(
        write_config: Callable[..., Path], load: Callable[..., dict[str, Any]],
        cache: Path) -> None:
    path = write_config(CONFIG)
    load(path)
    [entry] = entries(cache)
    entry.write_bytes(entry.read_bytes()[:40])
    assert load(path)["parsed"]
    assert not load(path)["parsed"]


def test_turned_off(write_config: Callable[..., Path], load: Callable[..., dict[str, Any]],
                    cache: Path) -> None:
    path = write_config(CONFIG)
    for _ in range(2):
        assert load(path, MPRUN_CACHE_DIR="off")["parsed"]
    assert entries(cache) == []


def test_an_unwritable_cache_is_skipped(write_config: Callable[..., Path],
                                        run_cli: Callable[..., Any], tmp_path: Path) -> None:
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")
    path = write_config(CONFIG)
    result = run_cli("validate", str(path), env={"MPRUN_CACHE_DIR": str(blocker / "cache")})
    assert result.code == 0, result
    assert result.stderr == ""


def test_the_code_fingerprint_follows_the_installed_files(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "fakepkg"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "mod.py").write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(configcache, "_PACKAGES", ("fakepkg",))

    def fingerprint() -> str:
        monkeypatch.setattr(configcache, "_fingerprint", None)
        return configcache._code_fingerprint()

    before = fingerprint()
    assert fingerprint() == before
    (package / "mod.py").write_text("x = 22\n")
    assert fingerprint() != before


def test_the_key_covers_path_text_and_modes(monkeypatch: pytest.MonkeyPatch) -> None:
    from runner import executors

    base = configcache.key("a.yaml", "jobs: {}")
    assert configcache.key("a.yaml", "jobs: {}") == base
    assert configcache.key("b.yaml", "jobs: {}") != base
    assert configcache.key("a.yaml", "jobs: {} ") != base
    monkeypatch.setitem(executors.EXECUTORS, "fake", "tests.fake_mode:FakeExecutor")
    assert configcache.key("a.yaml", "jobs: {}") != base


def test_hints_are_read_without_pydantic_and_follow_the_entry(
        write_config: Callable[..., Path], load: Callable[..., dict[str, Any]],
        cache: Path) -> None:
    """The start method and modules a run needs first (the CLI starts the fork server
    from them before it imports the rest), read from an entry's header alone; none for
    an edited config or a changed ${VAR}."""
    path = write_config(CONFIG.replace("jobs:", "start_method: spawn\njobs:"))
    probe = textwrap.dedent("""
        import json, sys
        from runner import configcache
        hints = configcache.hints_for(sys.argv[1])
        print(json.dumps(None if hints is None else [hints.start_method, hints.modules,
                                                      "pydantic" in sys.modules]))
        """)

    def hints(**env: str) -> Any:
        proc = subprocess.run([sys.executable, "-c", probe, str(path)], capture_output=True,
                              text=True, env={**os.environ, "MPRUN_CACHE_DIR": str(cache),
                                              **env}, timeout=60, check=False,
                              cwd=Path(__file__).parent.parent)
        assert proc.returncode == 0, proc.stderr
        return json.loads(proc.stdout)

    assert hints() is None
    load(path)
    assert hints() == ["spawn", ["tests.tasks"], False]
    assert hints(WORKERS="4") is None
    path.write_text(path.read_text() + "\n# edited\n")
    assert hints() is None


@pytest.mark.parametrize(("modes", "local"), [
    (["pool"], True), (["process", "serial"], True), (["dask"], False),
    (["serial", "thread", "dask"], False), (["thread"], False)])
def test_hints_say_whether_any_job_starts_local_workers(
        write_config: Callable[..., Path], load: Callable[..., dict[str, Any]], cache: Path,
        monkeypatch: pytest.MonkeyPatch, modes: list[str], local: bool) -> None:
    """A config whose jobs all run in the runner or on a dask cluster needs no fork server:
    the CLI does not fork one from the hints (``local_workers``)."""
    jobs = "".join(f"  j{n}: {{function: 'tests.tasks:square', args: [1], mode: {mode}}}\n"
                   for n, mode in enumerate(modes))
    path = write_config("jobs:\n" + jobs)
    load(path)
    monkeypatch.setenv("MPRUN_CACHE_DIR", str(cache))
    hints = configcache.hints_for(str(path))
    assert hints is not None and hints.local_workers is local
