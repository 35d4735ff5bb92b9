"""Hostile inputs: config and map files that are not regular files or are far too large,
and many runs started at once into one log folder."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import yaml

from runner import loader, session, yamlsource
from runner.config import Config
from runner.errors import ConfigError
from runner.loader import load_config
from runner.plan import read_map_file
from tests.conftest import ROOT

pytestmark = pytest.mark.timeout(240)

TRIVIAL = """\
jobs:
  one:
    function: tests.tasks:square
    mode: serial
    args: [{n}]
"""


def fifo(tmp_path: Path, name: str) -> Path:
    path = tmp_path / name
    os.mkfifo(path)
    return path


def no_traceback(result: object) -> None:
    assert "Traceback" not in getattr(result, "stderr", "") + getattr(result, "stdout", "")


# -- config files that are not regular files ---------------------------------------------


@pytest.mark.parametrize("command", [(), ("validate",)], ids=["run", "validate"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero", "dev-null"])
def test_a_config_that_is_not_a_regular_file_is_refused_unread(run_cli, tmp_path, command,
                                                               kind):
    """`mprun fifo.yaml` (no writer), `mprun /dev/zero` and `mprun validate` of either are
    exit 2 "not a regular file" at once: nothing blocks on the FIFO or reads the device."""
    path = {"fifo": lambda: fifo(tmp_path, "fifo.yaml"), "dev-zero": lambda: Path("/dev/zero"),
            "dev-null": lambda: Path("/dev/null")}[kind]()
    result = run_cli(*command, str(path), timeout=30)
    assert result.code == 2, result
    expected = "a FIFO" if kind == "fifo" else "a character device"
    assert f"{path}: not a regular file (it is {expected})" in result.stderr, result
    assert result.stdout == ""
    no_traceback(result)
    assert not (tmp_path / "logs").exists()  # nothing ran


def test_a_symlink_to_a_regular_config_still_works(run_cli, tmp_path):
    """The check follows symlinks: a link to a regular file is a config like any other."""
    target = tmp_path / "real.yaml"
    target.write_text(TRIVIAL.format(n=3))
    (tmp_path / "link.yaml").symlink_to(target)
    result = run_cli("validate", str(tmp_path / "link.yaml"))
    assert result.code == 0, result


def test_a_config_swapped_for_a_fifo_after_the_check_does_not_block(tmp_path, monkeypatch):
    """Between the stat and the open the path may change; the open itself does not block
    (O_NONBLOCK) and the open file is checked again."""
    import runner.files as files

    path = fifo(tmp_path, "late.yaml")
    monkeypatch.setattr(files, "check_regular", lambda path: None)  # the first look missed it
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "not a regular file (it is a FIFO)" in str(caught.value)


# -- map files that are not regular files --------------------------------------------------


MAP_FROM = """\
jobs:
  items:
    function: tests.tasks:square
    mode: serial
    map: {{file: {file}}}
"""


@pytest.mark.parametrize("command", [(), ("validate",)], ids=["run", "validate"])
@pytest.mark.parametrize("kind", ["fifo", "dev-zero"])
def test_a_map_file_that_is_not_a_regular_file_is_refused(run_cli, write_config, tmp_path,
                                                          command, kind):
    """`map: {file: FIFO}` or `/dev/zero` is "not a regular file" at its line, exit 2 (it
    used to say "no such file"), and nothing hangs reading it."""
    target = str(fifo(tmp_path, "items.jsonl")) if kind == "fifo" else "/dev/zero"
    config = write_config(MAP_FROM.format(file=target))
    result = run_cli(*command, str(config), timeout=30)
    assert result.code == 2, result
    expected = "a FIFO" if kind == "fifo" else "a character device"
    assert (f"{config}:5:17: jobs.items.map.file: the map file {target!r}: not a regular file "
            f"(it is {expected})") in result.stderr, result
    assert "no such file" not in result.stderr
    no_traceback(result)


def test_a_missing_map_file_is_still_no_such_file(run_cli, write_config, tmp_path):
    config = write_config(MAP_FROM.format(file="missing.jsonl"))
    result = run_cli("validate", str(config))
    assert result.code == 2, result
    assert f"no such file {str(tmp_path / 'missing.jsonl')!r}" in result.stderr, result


def test_reading_a_map_file_that_is_a_fifo_fails_instead_of_blocking(tmp_path):
    """The planner's reader refuses a FIFO too (a Config built in Python, or a file replaced
    after the checks), without waiting for a writer."""
    path = fifo(tmp_path, "items.txt")
    with pytest.raises(ConfigError) as caught:
        read_map_file(path, "jobs.items.map.file")
    assert "cannot read the map file: not a regular file (it is a FIFO)" in str(caught.value)


# -- configs too large to parse ------------------------------------------------------------


def big_list(path: Path, size: int) -> Path:
    head = "jobs:\n  big:\n    function: tests.tasks:square\n    mode: serial\n    map:\n"
    line = "      - 1\n"
    path.write_text(head + line * ((size - len(head)) // len(line) + 1))
    return path


def test_a_50_mb_config_is_refused_from_its_size_in_under_a_second(run_cli, tmp_path):
    """A 50 MB YAML list is exit 2 naming its size and pointing to map files, without being
    parsed: well under a second (it used to take minutes and gigabytes)."""
    path = big_list(tmp_path / "big.yaml", 50_000_000)
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.perf_counter() - started < 1.0
    assert "50.0 MB, over the 10 MB a config may hold (it was not read)" in str(caught.value)
    result = run_cli("validate", str(path))
    assert result.code == 2, result
    assert "the file is 50.0 MB" in result.stderr and "map: {file: items.jsonl}" \
        in result.stderr, result
    no_traceback(result)


def test_the_size_limit_is_inclusive(tmp_path, monkeypatch):
    """A config of exactly MAX_CONFIG_BYTES is read; one byte more is refused unread."""
    text = TRIVIAL.format(n=3)
    path = tmp_path / "c.yaml"
    path.write_text(text)
    monkeypatch.setattr(loader, "MAX_CONFIG_BYTES", len(text.encode()))
    assert list(load_config(path, check_functions=False).jobs) == ["one"]
    path.write_text(text + "\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path, check_functions=False)
    assert "it was not read" in str(caught.value)


def test_the_value_limit_stops_composing_at_the_limit(monkeypatch):
    """Values are counted while PyYAML composes, so a long list is refused at its
    (MAX_VALUES + 1)th value: the YAML error after it is never reached."""
    monkeypatch.setattr(yamlsource, "MAX_VALUES", 1000)
    text = "items:\n" + "- 1\n" * 1001 + "- [unclosed\n"
    doc = yamlsource.parse(text)
    assert [p.message for p in doc.problems] == [yamlsource._TOO_LARGE]
    assert doc.data is None


def test_the_value_limit_does_not_count_keys(monkeypatch):
    """Mapping keys are not values: 600 keys with 600 values fit a limit of 1000."""
    monkeypatch.setattr(yamlsource, "MAX_VALUES", 1000)
    text = "".join(f"k{i}: {i}\n" for i in range(600))
    doc = yamlsource.parse(text)
    assert doc.problems == []
    assert len(doc.data) == 600


COUNTED = [
    "items:\n" + "- 1\n" * 50,
    "".join(f"k{i}: {i}\n" for i in range(40)),
    "a: {b: [1, 2, {c: d}], e: [[x], []]}\nf: &x [1, 2]\ng: *x\nh: {<<: {i: 1}}\n",
    "? [complex, key]\n: value\n? {k: v}\n: [1, 2]\n",
    "--- [1, 2, 3]\n...\n",
    "- - - deep\n    - er\n  - {x: [y, z]}\n",
]


needs_libyaml = pytest.mark.skipif(not yaml.__with_libyaml__, reason="PyYAML without libyaml")


@needs_libyaml
@pytest.mark.parametrize("text", COUNTED, ids=range(len(COUNTED)))
def test_the_c_precount_counts_values_as_the_composer_does(text, monkeypatch):
    """libyaml's event count and the composer's count agree exactly (keys not counted,
    an alias as one), so the fast pass refuses exactly what the composer would."""
    loader = yamlsource._Loader(text)
    loader.get_single_node()
    composed = loader.values
    loader.dispose()
    for limit, refused in ((composed - 1, True), (composed, False)):
        monkeypatch.setattr(yamlsource, "MAX_VALUES", limit)
        assert yamlsource._too_many_values(text) is refused, (limit, composed)


@needs_libyaml
def test_a_long_list_is_refused_by_the_c_precount_without_composing(monkeypatch):
    """Above PRECOUNT_CHARS the values are counted by libyaml first: a list past the limit
    is refused without PyYAML composing a node."""
    monkeypatch.setattr(yamlsource, "MAX_VALUES", 1000)
    monkeypatch.setattr(yamlsource, "PRECOUNT_CHARS", 0)

    def never(self):
        raise AssertionError("composed")

    monkeypatch.setattr(yamlsource._Loader, "get_single_node", never)
    doc = yamlsource.parse("items:\n" + "- 1\n" * 1001 + "- [unclosed\n")
    assert [p.message for p in doc.problems] == [yamlsource._TOO_LARGE]


def test_yaml_errors_are_still_reported_by_the_parse_after_the_precount(monkeypatch):
    monkeypatch.setattr(yamlsource, "PRECOUNT_CHARS", 0)
    doc = yamlsource.parse("items: [1, 2\n")
    assert [p.message.split(":")[0] for p in doc.problems] == ["invalid YAML"]


@needs_libyaml
def test_a_10_mb_list_of_5_million_values_is_refused_in_seconds(tmp_path):
    """Just under the size limit, five million values: refused by the C precount (minutes
    and gigabytes when it was composed)."""
    path = tmp_path / "flow.yaml"
    path.write_text("jobs: {big: {function: tests.tasks:square, mode: serial, map: ["
                    + "1," * 4_900_000 + "1]}}\n")
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.perf_counter() - started < 20  # about 2-3 s; composing took 50-70 s
    assert "more than 1,000,000 values" in str(caught.value)


def test_an_alias_bomb_is_still_refused():
    """Counting while composing changes nothing for aliases: they are measured after."""
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [{', '.join([f'*a{i - 1}'] * 10)}]" for i in range(1, 9)]
    doc = yamlsource.parse("\n".join(lines) + "\n")
    assert [p.message for p in doc.problems] == [yamlsource._TOO_LARGE]


# -- run ids -------------------------------------------------------------------------------


def write_configs(tmp_path: Path, count: int) -> list[Path]:
    folder = tmp_path / "configs"
    folder.mkdir()
    paths = []
    for n in range(count):
        path = folder / f"c{n:03}.yaml"
        path.write_text(TRIVIAL.format(n=n))
        paths.append(path)
    return paths


def run_folders(logs: Path) -> list[Path]:
    """The run folders in ``logs``: not ``latest`` (a link) nor ``.locks``."""
    return [p for p in logs.iterdir()
            if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")]


def check_runs(procs: list[subprocess.Popen[str]], logs: Path, count: int) -> None:
    outputs = [proc.communicate(timeout=200) for proc in procs]
    for proc, (stdout, stderr) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, (stdout, stderr)
        assert "Traceback" not in stderr, stderr
    folders = run_folders(logs)
    assert len(folders) == count
    assert len({(p / "summary.json").read_text() for p in folders}) == count  # one run each


@pytest.mark.parametrize("count", [
    pytest.param(25, id="25"),
    pytest.param(100, marks=pytest.mark.slow, id="100"),
])
def test_many_runs_of_as_many_configs_started_at_once_get_a_run_folder_each(tmp_path, count):
    """``count`` `python -m runner` processes of different configs (the run lock does not
    serialise them) started together into one --log-dir: as many distinct run folders,
    every one exit 0, no traceback. 25 by default, 100 with --run-slow."""
    logs = tmp_path / "logs"
    procs = [subprocess.Popen([sys.executable, "-m", "runner", str(path), "--log-dir",
                               str(logs)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
             for path in write_configs(tmp_path, count)]
    check_runs(procs, logs, count)


# Each process imports mprun, waits for the starting gun, then runs, so their run folders
# are made at about the same time. Their clock is stopped and the first random suffixes
# they draw are 0000, 0001, 0002, 0003, then 0000 again: only four runs can have a short
# id, the others clash RUN_ID_RETRIES times and get a longer (truly random) suffix.
CLASHING = textwrap.dedent("""\
    import datetime, itertools, os, secrets, sys, time
    from runner import session
    from runner.cli import main

    class Stopped(datetime.datetime):
        @classmethod
        def now(cls, tz=None):
            return datetime.datetime(2026, 11, 24, 10, 15, tzinfo=datetime.UTC)

    session.datetime = Stopped
    short, real = itertools.cycle(["0000", "0001", "0002", "0003"]), secrets.token_hex
    secrets.token_hex = lambda n=None: next(short) if n == 2 else real(n)
    gun = sys.argv.pop(1)
    while not os.path.exists(gun):
        time.sleep(0.005)
    raise SystemExit(main())
""")


def test_runs_whose_ids_clash_get_fresh_ids(tmp_path):
    """Real processes whose run ids clash (same second, same suffix) each still get a
    folder of their own, with an id of the same shape: timestamp, '-', hex."""
    logs, gun = tmp_path / "logs", tmp_path / "go"
    procs = [subprocess.Popen([sys.executable, "-c", CLASHING, str(gun), str(path),
                               "--log-dir", str(logs)], cwd=ROOT, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
             for path in write_configs(tmp_path, 12)]
    gun.touch()
    check_runs(procs, logs, 12)
    names = sorted(p.name for p in run_folders(logs))
    assert names[:4] == [f"20261124T101500Z-000{n}" for n in range(4)], names
    assert all(re.fullmatch(r"20261124T101500Z-[0-9a-f]{8}", name) for name in names[4:]), \
        names


def test_make_run_dir_never_reuses_an_existing_folder(tmp_path, monkeypatch):
    """In one process: a clash with an existing folder gives a fresh id; the old folder is
    left alone."""
    taken = tmp_path / "20261124T101500Z-3f2a"
    taken.mkdir()
    (taken / "summary.json").write_text("{}")
    fresh = iter(["20261124T101500Z-3f2a", "20261124T101500Z-0b1c"])
    monkeypatch.setattr(session, "new_run_id", lambda digits=4: next(fresh))
    config = Config.validate({"name": "nightly",
                                    "jobs": {"a": {"function": "tests.tasks:square"}}})
    run_id, run_dir = session._make_run_dir(tmp_path, taken.name, config)
    assert run_id == "20261124T101500Z-0b1c" and run_dir == tmp_path / run_id
    assert run_dir.is_dir() and (taken / "summary.json").read_text() == "{}"
    assert (tmp_path / "latest").resolve() == run_dir.resolve()
    assert (tmp_path / "latest-nightly").resolve() == run_dir.resolve()


def test_a_map_file_path_with_a_nul_byte_is_a_located_config_error(tmp_path: Path) -> None:
    """os.stat raises ValueError for such a path: it must be "no such file", not a crash
    (found by the loader's property test)."""
    path = tmp_path / "config.yaml"
    path.write_text('jobs:\n  a: {function: "tests.tasks:square", map: {file: "a\\0b"}}\n')
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (issue,) = caught.value.issues
    assert (issue.line, issue.path) == (2, "jobs.a.map.file")
    assert issue.message.startswith("no such file") and "\\x00" in issue.message
