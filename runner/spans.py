"""Task numbers as spans: runs of consecutive tasks, and the gaps between skipped ones.

The journal writes a run of consecutive successes as one line; a plan splits
the tasks a resume must run into the gaps between those it reuses. Both are
here, once.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

__all__ = ["gaps", "runs"]


def runs(tasks: Sequence[int]) -> Iterator[tuple[int, int]]:
    """The ``[start, stop)`` runs of consecutive numbers in the sorted ``tasks``."""
    start = 0
    for end in range(1, len(tasks) + 1):
        if end == len(tasks) or tasks[end] != tasks[end - 1] + 1:
            yield tasks[start], tasks[end - 1] + 1
            start = end


def gaps(skipped: Sequence[int], stop: int, *, start: int = 0) -> Iterator[tuple[int, int]]:
    """The ``[start, stop)`` runs of ``range(start, stop)`` between the sorted ``skipped``."""
    for index in [*skipped, stop]:
        if index > start:
            yield start, index
        start = index + 1
