"""A large shared array's final state is a file of its raw bytes, not a list.

Past ``ARRAY_FILE_ITEMS`` (100,000) items, ``summary.json`` and ``--json`` hold
``{"file": "shared-NAME.bin", "typecode", "length", "head"}`` and the run folder the
array's bytes, which ``array.array(typecode).frombytes`` reads back; at or below it,
the list as before. The human summary previews such an array from its head.
The CLI is run as a subprocess; the threshold and the typecodes in-process.
"""

from __future__ import annotations

import array
import json
import re
from pathlib import Path
from typing import Any

import pytest

import runner
from runner.report import render
from runner.shared import ARRAY_FILE_ITEMS, ARRAY_HEAD, TYPECODES, array_file_name
from tests.array_tasks import pattern
from tests.conftest import CLIResult
from tests.helpers import run_config

BIG = 200_000  # past the threshold, yet fast to fill and check

POOL_CONFIG = f"""
shared:
  data: {{type: array, typecode: d, size: {BIG}}}
jobs:
  fill:
    function: tests.array_tasks:fill_part
    mode: pool
    workers: 2
    tasks:
      - args: [!ref data, d, 0, 2]
      - args: [!ref data, d, 1, 2]
  read:
    function: tests.array_tasks:sum_part
    mode: pool
    workers: 2
    tasks:
      - args: [!ref data, 0, 2]
      - args: [!ref data, 1, 2]
"""


def read_array(path: Path, typecode: str) -> array.array[Any]:
    """A shared array's file, read back as the README says."""
    items = array.array(typecode)
    items.frombytes(path.read_bytes())
    return items


def run_dir(tmp_path: Path) -> Path:
    return (tmp_path / "logs" / "latest").resolve()


def summary_json(tmp_path: Path) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads((run_dir(tmp_path) / "summary.json").read_text())
    return doc


def shared_line(result: CLIResult, name: str) -> str:
    return next(line for line in result.stdout.splitlines()
                if line.startswith(f"    {name} = "))


@pytest.mark.timeout(120)
def test_a_big_array_filled_and_summed_by_pool_workers_is_a_file_of_its_bytes(
        run_cli, write_config, start_method: str) -> None:
    """Two pool workers fill one half each through !ref (so both write the one shared
    array, not copies) and sum a half each; --json and summary.json say where the bytes
    are, and the file holds exactly the array's items."""
    tmp_path = write_config(POOL_CONFIG).parent
    result = run_cli(str(tmp_path / "config.yaml"), "--json", "--start-method", start_method)
    assert result.code == 0, result
    want = pattern("d", BIG)
    doc = result.json()
    assert doc["jobs"][1]["results"] == [sum(want[:BIG // 2]), sum(want[BIG // 2:])]
    shown = {"file": "shared-data.bin", "typecode": "d", "length": BIG,
             "head": want[:ARRAY_HEAD]}
    assert doc["shared"] == {"data": shown}
    assert summary_json(tmp_path)["shared"] == {"data": shown}
    assert read_array(run_dir(tmp_path) / "shared-data.bin", "d") == array.array("d", want)


@pytest.mark.timeout(60)
def test_the_human_summary_previews_a_big_array_from_its_head(run_cli, write_config) -> None:
    """The shared section shows the first items, the length and the file: the array is
    not written out to show one line."""
    config = write_config(POOL_CONFIG.replace("mode: pool", "mode: serial"))
    result = run_cli(str(config))
    assert result.code == 0, result
    line = shared_line(result, "data")
    assert line.startswith("    data = [0.0, 0.5, 1.0, 1.5, 2.0"), line
    assert line.endswith(f"... ({BIG:,} items)]  ('d', in shared-data.bin)"), line
    assert len(line) < 120


@pytest.mark.timeout(60)
def test_a_secret_named_big_array_is_masked_and_writes_no_file(run_cli, write_config) -> None:
    """``api_token`` stays "***" in --json, summary.json and the human summary, and its
    bytes are written nowhere."""
    config = write_config(f"""
        shared:
          api_token: {{type: array, typecode: d, size: {BIG}}}
        jobs:
          fill: {{function: "tests.array_tasks:fill_part", mode: serial,
                  args: [!ref api_token, d]}}
    """)
    as_json = run_cli(str(config), "--json")
    assert as_json.code == 0, as_json
    assert as_json.json()["shared"] == {"api_token": "***"}
    assert summary_json(config.parent)["shared"] == {"api_token": "***"}
    assert not list(run_dir(config.parent).glob("shared-*"))
    human = run_cli(str(config))
    assert shared_line(human, "api_token") == "    api_token = ***"


@pytest.mark.timeout(60)
def test_an_array_file_that_cannot_be_written_is_exit_74_with_the_summary(
        run_cli, write_config) -> None:
    """A folder where shared-data.bin goes: one line says which file and why, exit 74,
    and summary.json is still written, the array's ``file`` null."""
    tmp_path = write_config("").parent
    config = write_config(f"""
        shared:
          data: {{type: array, typecode: d, size: {BIG}}}
        jobs:
          block: {{function: "tests.array_tasks:block_array_file", mode: serial,
                   args: ["{tmp_path / 'logs'}", data]}}
    """)
    result = run_cli(str(config), "--json")
    assert result.code == 74, result
    folder = run_dir(tmp_path)
    lines = [line for line in result.stderr.splitlines() if "cannot write" in line]
    assert lines == [f"mprun: cannot write {folder}/shared-data.bin: Is a directory"], result
    doc = result.json()
    assert doc["status"] == "failed" and doc["exit_code"] == 74
    assert doc["shared"]["data"]["file"] is None
    assert doc["shared"]["data"]["length"] == BIG
    assert summary_json(tmp_path)["shared"] == doc["shared"]


@pytest.mark.timeout(60)
@pytest.mark.parametrize(("length", "as_file"), [(ARRAY_FILE_ITEMS, False),
                                                 (ARRAY_FILE_ITEMS + 1, True)])
def test_past_100000_items_a_file_at_or_below_a_list(tmp_path: Path, length: int,
                                                     as_file: bool) -> None:
    """At 100,000 items the summary holds the list, as it always did; one more and it
    holds the file's description."""
    report = run_config(tmp_path, f"""
        shared:
          data: {{type: array, typecode: i, size: {length}}}
        jobs:
          fill: {{function: "tests.array_tasks:fill_part", mode: serial, args: [!ref data, i]}}
    """)
    shown = report.as_dict()["shared"]["data"]
    files = sorted(path.name for path in Path(report.log_dir or "").glob("shared-*"))
    if as_file:
        assert shown == {"file": "shared-data.bin", "typecode": "i", "length": length,
                         "head": pattern("i", ARRAY_HEAD)}
        assert files == ["shared-data.bin"]
    else:
        assert shown == pattern("i", length)
        assert files == []


@pytest.mark.timeout(120)
def test_every_typecode_reads_back_with_array_frombytes(tmp_path: Path) -> None:
    """For each of the seed's typecodes (locked and raw arrays alike), the file is what
    ``array.array(typecode).frombytes`` reads as the array's items."""
    length = ARRAY_FILE_ITEMS + 1
    shared = "\n".join(f"  a_{code}{'_raw' * raw}: {{type: array, typecode: {code}, "
                       f"size: {length}, lock: {str(not raw).lower()}}}"
                       for code in TYPECODES for raw in (False, True))
    tasks = "\n".join(f"      - args: [!ref a_{code}{'_raw' * raw}, {code}]"
                      for code in TYPECODES for raw in (False, True))
    report = run_config(tmp_path, f"shared:\n{shared}\njobs:\n  fill:\n"
                                  "    function: tests.array_tasks:fill_part\n"
                                  f"    mode: serial\n    tasks:\n{tasks}\n")
    assert report.exit_code == 0, report.as_dict()
    folder = Path(report.log_dir or "")
    for name, shown in report.as_dict()["shared"].items():
        code = shown["typecode"]
        assert shown["head"] == pattern(code, ARRAY_HEAD), name
        assert read_array(folder / shown["file"], code).tolist() == pattern(code, length)


@pytest.mark.timeout(60)
def test_names_that_sanitise_alike_get_files_of_their_own(tmp_path: Path) -> None:
    """NAME keeps letters, digits, '.', '_' and '-'; 'a b' and 'a_b' would both be
    shared-a_b.bin, so the second gets shared-a_b-2.bin."""
    assert array_file_name("we ird/näme.x-1") == "shared-we_ird_n_me.x-1.bin"
    report = run_config(tmp_path, f"""
        shared:
          "a b": {{type: array, typecode: b, size: {BIG}}}
          a_b: {{type: array, typecode: b, size: {BIG}}}
        jobs:
          one: {{function: "tests.tasks:square", mode: serial, args: [1]}}
    """)
    assert [shown["file"] for shown in report.as_dict()["shared"].values()] == [
        "shared-a_b.bin", "shared-a_b-2.bin"]


@pytest.mark.timeout(60)
def test_without_a_run_folder_a_big_array_keeps_its_head_and_length(tmp_path: Path) -> None:
    """``runner.run(log_dir=None)`` writes no file: ``file`` is null, and the human
    summary says the array was not written."""
    path = tmp_path / "c.yaml"
    path.write_text(f"shared:\n  data: {{type: array, typecode: d, size: {BIG}}}\n"
                    "jobs:\n  one: {function: 'tests.tasks:square', mode: serial, args: [1]}\n")
    report = runner.run(path, log_dir=None)
    assert report.as_dict()["shared"] == {"data": {"file": None, "typecode": "d",
                                                   "length": BIG, "head": [0.0] * ARRAY_HEAD}}
    assert re.search(r"data = \[0\.0, .*\(200,000 items\)\]  \('d', not written to a file\)",
                     render(report))
    assert not list(tmp_path.rglob("shared-*"))
