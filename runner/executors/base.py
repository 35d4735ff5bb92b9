"""The executor interface every mode implements.

An executor takes the chunks of one job, runs at most ``workers`` of them at
once, and yields each chunk's :class:`~runner.work.Outcome` as it finishes
(in any order). It never raises for a task's failure: failures are in the
outcome. Everything else (ordering, journaling, reduce, compare, retries) is
the scheduler's, written once for every mode.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from runner.signals import Stop
from runner.work import Chunk, Outcome
from runner.worker import WorkerInit

__all__ = ["Executor", "ExecutorSetup"]


@dataclass
class ExecutorSetup:
    """What every executor is built from."""

    workers: int
    context: Any  # a multiprocessing context (fork, forkserver or spawn)
    init: WorkerInit  # shared primitives, paths and logging for each worker
    # Set on the first SIGINT/SIGTERM: start nothing more, let running chunks end.
    stop: Stop = field(default_factory=Stop)


class Executor(ABC):
    """Runs chunks of one job; see the module docstring."""

    #: whether map items go out in chunks (False: one task per chunk, even with a chunksize)
    chunks_map_items = True

    def __init__(self, setup: ExecutorSetup) -> None:
        self.setup = setup

    @abstractmethod
    def run(self, chunks: Iterable[Chunk]) -> Iterator[Outcome]:
        """Run ``chunks``; yield each outcome as it finishes.

        Once ``setup.stop`` is requested, start no chunk; yield the outcomes of
        running ones (short ones, if they were ended after their current item)
        and return.
        """

    def close(self, *, cancel: bool = False) -> None:  # noqa: B027 -- optional hook
        """Release workers. With ``cancel``, stop running work instead of waiting for it."""

    def __enter__(self) -> Executor:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close(cancel=exc is not None)
