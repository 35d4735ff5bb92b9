"""A job's calls, as the items and chunks its executor runs.

A map file is checked before any job starts, so a bad map file is a config
error (exit 2) and nothing runs; its items are then read again as chunks are
asked for (``runner.mapfile``), never all at once. A ``range`` stays a
``range``: its chunks are range slices, which pickle in a few bytes instead of
a list of ints.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from runner.config import FileSource, Job, RangeSource
from runner.mapfile import MapFile
from runner.shared import contains_ref
from runner.spans import gaps
from runner.work import Call, Chunk

__all__ = ["Plan", "auto_chunksize", "plan_job", "read_map_file"]

# Chunks per worker under chunksize: auto. multiprocessing.Pool.map's choice:
# few enough that per-chunk costs vanish for tiny tasks, enough that the last
# chunks balance the load when tasks vary.
CHUNKS_PER_WORKER = 4


@dataclass(frozen=True)
class Plan:
    """Every call of one job: ``call`` applied to each of ``items``."""

    call: Call
    items: Sequence[Any]  # a list, a range, or a MapFile (read as its chunks are asked for)
    # Results an earlier run already has (``--resume``): task index -> value.
    reused: dict[int, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.items)

    @property
    def to_run(self) -> int:
        """How many tasks this run runs."""
        return len(self.items) - len(self.reused)

    def chunks(self, chunksize: int) -> Iterator[Chunk]:
        """The tasks to run, ``chunksize`` consecutive ones at most per chunk."""
        if not self.reused:
            for first in range(0, len(self.items), chunksize):
                yield Chunk(self.call, first, self._slice(first, first + chunksize))
            return
        for start, stop in gaps(sorted(self.reused), len(self.items)):
            for first in range(start, stop, chunksize):
                yield Chunk(self.call, first, self._slice(first, min(first + chunksize, stop)))

    def _slice(self, start: int, stop: int) -> Any:
        part = self.items[start:stop]
        return part if isinstance(part, range | list) else list(part)

    def close(self) -> None:
        """Close what the items hold open (a map file), once the run is over with them."""
        if isinstance(self.items, MapFile):
            self.items.close()


def auto_chunksize(tasks: int, workers: int) -> int:
    return max(1, math.ceil(tasks / (workers * CHUNKS_PER_WORKER)))


def plan_job(name: str, job: Job, base: Path) -> Plan:
    """The calls ``job`` makes; ``base`` is the folder map files are relative to."""
    args = tuple(job.args or ())
    kwargs = dict(job.kwargs or {})
    if job.map is not None:
        items = _map_items(name, job.map, base)
        refs = contains_ref(args) or contains_ref(kwargs) or (
            isinstance(items, list) and contains_ref(items))
        call = Call(name, job.function, "map", args, kwargs, job.unpack, refs, job.timeout)
        return Plan(call, items)
    if job.tasks is not None:
        calls: list[Any] = [(tuple(t.args), dict(t.kwargs)) for t in job.tasks]
    else:
        calls = [(args, kwargs)] * (1 if job.repeat is None else job.repeat)
    return Plan(Call(name, job.function, "tasks", refs=contains_ref(calls), timeout=job.timeout),
                calls)


def _map_items(name: str, source: Any, base: Path) -> Sequence[Any]:
    if isinstance(source, RangeSource):
        return source.as_range()
    if isinstance(source, FileSource):
        return read_map_file(base / source.file, f"jobs.{name}.map.file")
    return list(source)


def read_map_file(path: Path, field: str) -> MapFile:
    """Items of a map file (``.jsonl`` values, ``.csv`` row mappings, or text lines),
    checked now and read as they are asked for; ConfigError at the first bad line."""
    return MapFile(path, field)
