"""A mode that exists only in the tests: registered from here, with no change to runner/.

``ReversedExecutor`` runs every chunk in the runner's own process, the last
chunk first, so that a scheduler which relied on outcomes arriving in task
order would get them wrong. Its backend counts how often it is opened and
closed, so the tests can tell that a run opens it once and closes it at the
end, also when interrupted.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from runner.executors import Backend, Executor
from runner.work import Chunk, Outcome, run_chunk
from runner.worker import log_failure

MODE = "reversed"


class CountingBackend(Backend):
    """Records each open and close, with the run it belongs to."""

    events: ClassVar[list[tuple[str, str]]] = []

    def open(self) -> None:
        CountingBackend.events.append(("open", self.scope.init.run_id))

    def close(self) -> None:
        CountingBackend.events.append(("close", self.scope.init.run_id))


class ReversedExecutor(Executor):
    in_runner_process = True
    backend = CountingBackend
    #: how many executors were built, one per job and per compare mode
    built: ClassVar[int] = 0

    def __init__(self, setup: Any) -> None:
        super().__init__(setup)
        ReversedExecutor.built += 1
        assert isinstance(setup.backend, CountingBackend), "the run lends its backend"

    def run(self, chunks: Iterable[Chunk]) -> Iterator[Outcome]:
        pid = os.getpid()
        for chunk in reversed(list(chunks)):
            if self.setup.stop.requested:
                return
            self.setup.started(chunk, pid)
            yield run_chunk(chunk, self.setup.init.shared, log_failure)


def interrupt_runner(x: int, at: int = 1) -> int:
    """Send this process (the runner: the mode runs tasks in place) SIGINT at item ``at``."""
    if x == at:
        os.kill(os.getpid(), signal.SIGINT)
    return x
