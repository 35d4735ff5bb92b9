"""``--durations N``: the slowest task lines of each job, kept as the run goes.

The scheduler tells observers of every chunk that answered (``runner.observe``),
never of every task, so this costs one heap push per chunk: a bounded heap per
job holds its ``limit`` slowest lines (a task, or a chunk as ``first``/``last``),
and a job's list goes into its report (``slowest`` in ``--json`` and
``summary.json``) when it ends, before the summary is written. ``runner.run()``
puts it before the caller's observers, so that they see the list already.
"""

from __future__ import annotations

import heapq
import itertools
from typing import TYPE_CHECKING, Any

from runner.observe import Finished, Observer

if TYPE_CHECKING:
    from runner.report import JobReport

__all__ = ["DEFAULT_DURATIONS", "Durations", "line_name"]

DEFAULT_DURATIONS = 5

# (seconds, tie-breaker, first, last, pid): the heap's smallest is the first to go.
_Entry = tuple[float, int, int, int, int]


class Durations(Observer):
    """Each job's ``limit`` slowest lines (0: none kept, nothing added to reports)."""

    def __init__(self, limit: int = DEFAULT_DURATIONS) -> None:
        self.limit = max(0, limit)
        self._heaps: dict[str, list[_Entry]] = {}
        self._order = itertools.count()  # equal times keep their arrival order

    def finished(self, event: Finished) -> None:
        if self.limit == 0:
            return
        outcome = event.outcome
        last = outcome.first + max(len(outcome.values), 1) - 1
        entry = (outcome.seconds, -next(self._order), outcome.first, last, outcome.pid)
        heap = self._heaps.setdefault(event.job, [])
        if len(heap) < self.limit:
            heapq.heappush(heap, entry)
        elif entry[0] > heap[0][0]:
            heapq.heapreplace(heap, entry)

    def slowest(self, job: str) -> list[dict[str, Any]]:
        """``job``'s slowest lines, slowest first, as ``--json`` writes them."""
        entries = sorted(self._heaps.get(job, ()), reverse=True)
        return [_as_dict(first, last, seconds, pid)
                for seconds, _, first, last, pid in entries]

    def job_finished(self, report: JobReport) -> None:
        if self.limit:
            report.slowest = self.slowest(report.name)


def _as_dict(first: int, last: int, seconds: float, pid: int) -> dict[str, Any]:
    where: dict[str, Any] = {"task": first} if first == last else {"first": first, "last": last}
    return {**where, "seconds": round(seconds, 4), "pid": pid}


def line_name(job: str, entry: dict[str, Any]) -> str:
    """``JOB[N]`` for a task's line, ``JOB[FIRST-LAST]`` for a chunk's."""
    if "task" in entry:
        return f"{job}[{entry['task']}]"
    return f"{job}[{entry['first']}-{entry['last']}]"
