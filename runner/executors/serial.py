"""``serial``: every task in the runner's own process, one after another.

The reference implementation: no workers, no pickling. Shared primitives are
used in place.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator

from runner import forkguard
from runner.executors.base import Executor
from runner.work import Chunk, Outcome, run_chunk
from runner.worker import log_failure

__all__ = ["SerialExecutor"]


class SerialExecutor(Executor):
    in_runner_process = True
    max_workers = 1

    def run(self, chunks: Iterable[Chunk]) -> Iterator[Outcome]:
        shared = self.setup.init.shared
        stop = self.setup.stop
        pid = os.getpid()
        forkguard.install()
        for chunk in chunks:
            if stop.requested:
                return
            self.setup.started(chunk, pid)
            with stop.job_code():  # nothing else can stop task code in this thread
                outcome = run_chunk(chunk, shared, log_failure)
            forkguard.exit_if_forked()  # a task forked: the child must not go on as a runner
            yield outcome
