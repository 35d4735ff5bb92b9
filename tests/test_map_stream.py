"""Map files stream: checked in one pass before anything runs, then read again a segment
at a time as chunks are asked for (``runner.mapfile``), with the same items as the
whole-file reader they replace (``tests/map_oracle.py``), and ``--resume`` knowing a
map file's tasks by the file's sha256 and their place in it."""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from runner import mapfile, maplines
from runner.errors import ConfigError, MapFileChanged
from runner.jsonable import dumps_compact
from runner.mapfile import MapFile
from runner.resume import _digest
from tests.helpers import read_strict
from tests.map_oracle import Bad
from tests.map_oracle import read_map_file as whole_file

pytestmark = pytest.mark.timeout(60)

SUFFIXES = [".jsonl", ".csv", ".txt"]


@pytest.fixture
def tiny_segments(monkeypatch: pytest.MonkeyPatch) -> None:
    """Segments of 3 items and blocks of 5 bytes: every boundary case in a small file."""
    monkeypatch.setattr(mapfile, "SEGMENT_ITEMS", 3)
    monkeypatch.setattr(maplines, "BLOCK_BYTES", 5)


def verdict(read: Any, path: Path) -> tuple[Any, ...]:
    try:
        return ("items", list(read(path)))
    except Bad as bad:
        return ("bad", bad.line, bad.message)
    except ConfigError as error:
        (issue,) = error.issues
        return ("bad", issue.line, issue.message)


def streamed(path: Path) -> list[Any]:
    items = MapFile(path, "jobs.j.map.file")
    try:
        return list(items)
    finally:
        items.close()


CASES = {
    "blank lines": b'{"a": 1}\n\n[1, 2]\n  \n"three"\n4\n',
    "BOM and CRLF": b'\xef\xbb\xbf1\r\n2\r\n\r\n"x"\r\n',
    "a lone CR, and CRLF cut by a block": b"ab\rcd\r\nef\r\r\n\n",
    "splitlines' other line ends": b"a\x0bb\x0cc\x1cd\xc2\x85e\xe2\x80\xa8f\xe2\x80\xa9g",
    "csv": b"name,size\nx,1\n\ny,22\n",
    "csv quoted newline": b'name,note\nx,"two\nlines"\ny,"3\r\n4"\n',
    "csv more fields": b"a,b\n1,2\n1,2,3\n",
    "bad JSON at the end": b"1\n2\n3\n4\n5\n6\n7\n{\n",
    "no newline at the end": b"1\n2\n3",
    "empty": b"",
}


@pytest.mark.parametrize("suffix", SUFFIXES)
@pytest.mark.parametrize("name", list(CASES))
def test_items_and_bad_lines_are_the_whole_file_readers(tmp_path, tiny_segments, name, suffix):
    """Each case gives the same items, or the same bad line and message, as the reader
    that held the whole file, with segments and blocks cut everywhere."""
    path = tmp_path / f"items{suffix}"
    path.write_bytes(CASES[name])
    assert verdict(streamed, path) == verdict(whole_file, path)


TOKENS = [b"1", b"a", b" ", b",", b'"', b"[", b"]", b"\n", b"\r", b"\r\n", b"\x0b", b"\x1c",
          b"\xc2\x85", b"\xe2\x80\xa8", b"\xef\xbb\xbf", b"\xc3\xa9"]


@settings(max_examples=150, deadline=None)
@given(data=st.lists(st.sampled_from(TOKENS), max_size=40).map(b"".join),
       suffix=st.sampled_from(SUFFIXES), segment=st.integers(1, 4),
       block=st.sampled_from([1, 2, 3, 7, 1 << 20]),
       cut=st.tuples(st.integers(-3, 30), st.integers(-3, 30)))
def test_any_file_reads_as_the_whole_file_reader_read_it(tmp_path_factory, data, suffix,
                                                         segment, block, cut):
    """Random files of line ends, quotes, BOMs and multi-byte characters: the same verdict
    as the whole-file reader, and every slice the same as the list's."""
    path = tmp_path_factory.mktemp("any") / f"items{suffix}"
    path.write_bytes(data)
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(mapfile, "SEGMENT_ITEMS", segment)
        patch.setattr(maplines, "BLOCK_BYTES", block)
        expected = verdict(whole_file, path)
        assert verdict(streamed, path) == expected
        if expected[0] == "items":
            items = MapFile(path, "f")
            assert items[cut[0]:cut[1]] == expected[1][cut[0]:cut[1]]
            assert [items[i] for i in range(-len(items), len(items))] == expected[1] * 2
            items.close()


def test_the_check_keeps_the_count_the_hash_and_a_few_segments(tmp_path):
    """100,000 lines: the count, the sha256 of the bytes, ~100 segments; slices anywhere."""
    path = tmp_path / "items.jsonl"
    path.write_text("".join(f"{i}\n" for i in range(100_000)))
    items = MapFile(path, "f")
    assert len(items) == 100_000
    assert items.sha256 == hashlib.sha256(path.read_bytes()).hexdigest()
    assert len(items._firsts) == 98
    assert items[99_990:100_010] == list(range(99_990, 100_000))
    assert items[5000:5003] == [5000, 5001, 5002]
    assert items[-1] == 99_999
    items.close()


def big_file(tmp_path: Path, lines: int = 3000) -> Path:
    path = tmp_path / "items.jsonl"
    path.write_text("".join(f"{i}\n" for i in range(lines)))
    return path


def test_bytes_written_in_place_are_caught_before_their_items_go_out(tmp_path):
    """The same size and modification time, other bytes: the segment's digest differs, so
    its items are not handed out; the error names the segment's first line."""
    path = big_file(tmp_path)
    items = MapFile(path, "f")
    assert items[0:2] == [0, 1]
    info = path.stat()
    path.write_bytes(path.read_bytes().replace(b"1", b"2"))
    os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    assert items[2:4] == [2, 3]  # segment 0 was read before the change
    with pytest.raises(MapFileChanged, match=rf"{path}:1025: the map file changed since it "
                                             r"was checked \(its bytes from this line on"):
        items[2000:2001]
    items.close()


def test_a_file_that_grew_is_caught(tmp_path):
    path = big_file(tmp_path)
    items = MapFile(path, "f")
    with path.open("a") as stream:
        stream.write("3000\n")
    with pytest.raises(MapFileChanged, match="its size or modification time"):
        items[0:1]
    items.close()


def test_a_file_renamed_over_it_changes_nothing(tmp_path):
    """The file stays open from the check on: a new one put in its place is not read."""
    path = big_file(tmp_path)
    items = MapFile(path, "f")
    (tmp_path / "new.jsonl").write_text("7\n")
    os.replace(tmp_path / "new.jsonl", path)
    assert items[2990:3000] == list(range(2990, 3000))
    assert list(items) == list(range(3000))
    items.close()


# -- the CLI ---------------------------------------------------------------------------


def test_streamed_items_and_results_in_every_mode(write_config, tmp_path, run_cli):
    """A BOM, CRLF and blank lines: the results are the items, in order, in each mode."""
    (tmp_path / "items.jsonl").write_bytes(
        b"\xef\xbb\xbf" + b"".join(b"%d\r\n\r\n" % i for i in range(2500)))
    config = write_config("""\
        jobs:
          serial: {function: "tests.tasks:square", mode: serial, map: {file: items.jsonl}}
          pool: {function: "tests.tasks:square", mode: pool, workers: 2, chunksize: 700,
                 map: {file: items.jsonl}}
          thread: {function: "tests.tasks:square", mode: thread, workers: 2,
                   map: {file: items.jsonl}}
    """)
    result = run_cli(str(config), "--json")
    assert result.code == 0, result
    for job in result.json()["jobs"]:
        assert job["results"] == [i * i for i in range(2500)], job["name"]


def test_retries_read_their_items_again(write_config, tmp_path, run_cli):
    """Items that fail once are retried, each read from its segment again."""
    (tmp_path / "calls").mkdir()
    (tmp_path / "items.jsonl").write_text("".join(f"{i}\n" for i in range(3000)))
    config = write_config(f"""\
        jobs:
          j: {{function: "tests.map_tasks:fail_first_call", mode: pool, workers: 2,
              retries: 1, map: {{file: items.jsonl}}, args: [{tmp_path / 'calls'}, 700]}}
    """)
    result = run_cli(str(config), "--json")
    assert result.code == 0, result
    (job,) = result.json()["jobs"]
    assert job["results"] == [i * i for i in range(3000)]
    assert sorted(map(int, os.listdir(tmp_path / "calls"))) == [0, 700, 1400, 2100, 2800]


def test_a_map_file_changed_during_the_run_fails_its_job_and_stops_the_run(
        write_config, tmp_path, run_cli):
    """Item 0 rewrites the file in place (same size and time): the tasks of the first
    segment (read before it) run, no item of the changed part does, the job fails with
    MapFileChanged naming FILE:LINE, and the next job does not start (exit 1)."""
    path = big_file(tmp_path)
    config = write_config(f"""\
        jobs:
          j: {{function: "tests.map_tasks:rewrite_map_file", mode: serial, chunksize: 1,
              map: {{file: items.jsonl}}, args: [{path}]}}
          later: {{function: "tests.tasks:square", mode: serial, args: [2]}}
    """)
    result = run_cli(str(config), "--json")
    assert result.code == 1, result
    summary = result.json()
    (job,) = summary["jobs"]
    assert (job["status"], job["ok"], job["not_run"]) == ("failed", 1024, 3000 - 1024)
    assert job["results"][:1024] == list(range(1024))
    (error,) = job["errors"]
    assert error["type"] == "MapFileChanged"
    assert error["message"].startswith(f"{path}:1025: the map file changed since it was checked")
    assert summary["not_run"] == ["later"]
    logged = read_strict(tmp_path / "logs" / "latest" / "runner.jsonl")
    assert [line["job"] for line in logged if line["event"] == "map file changed"] == ["j"]


def test_a_map_file_replaced_during_the_run_runs_what_was_checked(write_config, tmp_path,
                                                                  run_cli):
    path = big_file(tmp_path)
    config = write_config(f"""\
        jobs:
          j: {{function: "tests.map_tasks:replace_map_file", mode: pool, workers: 2,
              chunksize: 100, map: {{file: items.jsonl}}, args: [{path}]}}
    """)
    result = run_cli(str(config), "--json")
    assert result.code == 0, result
    assert result.json()["jobs"][0]["results"] == list(range(3000))


# -- --resume ----------------------------------------------------------------------------

RESUMED = """\
    jobs:
      squares: {{function: "tests.tasks:tally", mode: pool, workers: 2,
                args: [{calls}, {flag}], map: {{file: items.jsonl}}}}
"""


class FileRuns:
    """Runs of a config that maps ``tests.tasks:tally`` over items.jsonl (0 .. 9)."""

    def __init__(self, tmp_path: Path, run_cli: Any, write_config: Any) -> None:
        self.tmp, self.run_cli = tmp_path, run_cli
        self.calls, self.flag = tmp_path / "calls", tmp_path / "flag"
        self.calls.mkdir()
        self.items = tmp_path / "items.jsonl"
        self.items.write_text("".join(f"{i}\n" for i in range(10)))
        self.config = write_config(RESUMED.format(calls=self.calls, flag=self.flag))

    def run(self, *args: str, code: int) -> dict[str, Any]:
        for call in self.calls.iterdir():
            call.unlink()
        result = self.run_cli(str(self.config), "--json", *args)
        assert result.code == code, result
        return result.json()  # type: ignore[no-any-return]

    def ran(self) -> list[int]:
        return sorted(int(call.name.split("-")[0]) for call in self.calls.iterdir())

    def manifest(self, run_id: str) -> dict[str, Any]:
        return json.loads((self.tmp / "logs" / run_id / "tasks.json").read_text())  # type: ignore[no-any-return]


@pytest.fixture
def file_runs(tmp_path, run_cli, write_config) -> FileRuns:
    return FileRuns(tmp_path, run_cli, write_config)


def test_tasks_json_holds_the_file_not_its_items(file_runs):
    first = file_runs.run(code=0)
    manifest = file_runs.manifest(first["run_id"])
    job = manifest["jobs"]["squares"]
    assert manifest["format"] == 2
    assert "items" not in job["entry"]
    assert job["entry"]["map_file"] == {
        "sha256": hashlib.sha256(file_runs.items.read_bytes()).hexdigest(), "items": 10}
    assert job["file"] == str(file_runs.items)


def test_the_same_file_resumes_only_its_failed_tasks(file_runs):
    file_runs.flag.touch()
    first = file_runs.run(code=1)
    file_runs.flag.unlink()
    second = file_runs.run("--resume", first["run_id"], code=0)
    assert file_runs.ran() == [0, 3, 6, 9]
    (job,) = second["jobs"]
    assert (job["reused"], job["results"]) == (6, [x * x for x in range(10)])
    assert second["resume_notes"] == []


def test_a_changed_file_is_refused_unless_forced_then_every_task_runs(file_runs):
    file_runs.flag.touch()
    first = file_runs.run(code=1)
    file_runs.flag.unlink()
    file_runs.items.write_text("".join(f"{i}\n" for i in range(11)))
    refused = file_runs.run_cli(str(file_runs.config), "--resume", first["run_id"])
    assert refused.code == 2, refused
    assert "jobs.squares: its map file changed (sha256 " in refused.stderr
    assert "none of its 10 earlier tasks is matched" in refused.stderr
    forced = file_runs.run("--resume", first["run_id"], "--force", code=0)
    assert file_runs.ran() == list(range(11))
    assert forced["jobs"][0]["reused"] == 0
    assert "its map file changed" in forced["resume_notes"][0]


def test_a_format_1_manifest_with_items_still_resumes_item_by_item(file_runs):
    """A run made before map files streamed listed their items: it is matched item by
    item, the map file's items streamed, so only its failed tasks run again."""
    file_runs.flag.touch()
    first = file_runs.run(code=1)
    file_runs.flag.unlink()
    path = file_runs.tmp / "logs" / first["run_id"] / "tasks.json"
    manifest = json.loads(path.read_text())
    job = manifest["jobs"]["squares"]
    entry = {**job["entry"], "items": list(range(10))}
    del entry["map_file"]
    manifest["format"] = 1
    manifest["jobs"]["squares"] = {"digest": _digest(dumps_compact(entry)), "tasks": 10,
                                   "entry": entry}
    path.write_text(json.dumps(manifest))
    second = file_runs.run("--resume", first["run_id"], code=0)
    assert file_runs.ran() == [0, 3, 6, 9]
    assert second["jobs"][0]["reused"] == 6
    assert second["resume_notes"] == []


def test_a_manifest_of_an_unknown_format_is_refused(file_runs):
    first = file_runs.run(code=0)
    path = file_runs.tmp / "logs" / first["run_id"] / "tasks.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), "format": 99}))
    refused = file_runs.run_cli(str(file_runs.config), "--resume", first["run_id"])
    assert refused.code == 2, refused
    assert "is of format 99; this mprun reads formats 1, 2" in refused.stderr
