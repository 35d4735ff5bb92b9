"""``thread``: tasks in a pool of threads inside the runner's process.

Data flow::

    run() ── Chunk ──> inbox ──> N daemon threads: run_chunk() ──> outbox ── Outcome ──> run()
                                       └─ "started" ─────────────> outbox ─> setup.started()

A thread says in the outbox when it takes a chunk, so that ``setup.started``
is called in the runner's main thread, as for every mode.

Threads share the GIL, so CPU-bound Python code gains nothing here (the
seed's comparison shows it); I/O-bound code does. Threads are daemons: a
task that never returns cannot keep the runner from exiting after an
interrupt, which ``concurrent.futures.ThreadPoolExecutor`` (joined at exit)
would.
"""

from __future__ import annotations

import os
import queue
import threading
from collections.abc import Iterable, Iterator

from runner import forkguard
from runner.executors.base import Executor, ExecutorSetup
from runner.work import Chunk, Outcome, run_chunk
from runner.worker import log_failure

__all__ = ["ThreadExecutor"]

# Chunks queued per thread: enough that no thread waits for the runner, few
# enough that a cancelled run has little queued work to throw away.
QUEUED_PER_THREAD = 2
# How often the waiting runner thread wakes, so that signals are handled promptly.
POLL_SECONDS = 0.2


class _Started:
    __slots__ = ("chunk",)

    def __init__(self, chunk: Chunk) -> None:
        self.chunk = chunk


class ThreadExecutor(Executor):
    in_runner_process = True

    def __init__(self, setup: ExecutorSetup) -> None:
        super().__init__(setup)
        self._inbox: queue.SimpleQueue[Chunk | None] = queue.SimpleQueue()
        self._outbox: queue.SimpleQueue[Outcome | _Started | BaseException] = \
            queue.SimpleQueue()
        self._threads: list[threading.Thread] = []

    def _work(self) -> None:
        shared = self.setup.init.shared
        stop = self.setup.stop
        while (chunk := self._inbox.get()) is not None:
            if stop.requested:  # queued before the stop: it never starts
                self._outbox.put(Outcome(chunk.first, [], [], 0.0, os.getpid()))
                continue
            self._outbox.put(_Started(chunk))
            try:
                outcome = run_chunk(chunk, shared, log_failure)
            except BaseException as exc:
                self._outbox.put(exc)
                continue
            forkguard.exit_if_forked()  # a task forked: the child has only this thread
            self._outbox.put(outcome)

    def run(self, chunks: Iterable[Chunk]) -> Iterator[Outcome]:
        pending = iter(chunks)
        limit = self.setup.workers * QUEUED_PER_THREAD
        in_flight = 0
        exhausted = False
        stop = self.setup.stop
        pid = os.getpid()
        forkguard.install()
        while True:
            while not exhausted and in_flight < limit and not stop.requested:
                chunk = next(pending, None)
                if chunk is None:
                    exhausted = True
                    break
                if len(self._threads) < min(self.setup.workers, in_flight + 1):
                    self._start_thread()
                self._inbox.put(chunk)
                in_flight += 1
            if in_flight == 0:
                return
            try:
                answer = self._outbox.get(timeout=POLL_SECONDS)
            except queue.Empty:
                stop.check()  # a forced stop: the running threads are left to die
                continue
            if isinstance(answer, _Started):
                self.setup.started(answer.chunk, pid)
                continue
            in_flight -= 1
            if isinstance(answer, BaseException):
                raise answer
            yield answer

    def _start_thread(self) -> None:
        thread = threading.Thread(target=self._work, daemon=True,
                                  name=f"mprun-thread-{len(self._threads)}")
        thread.start()
        self._threads.append(thread)

    def close(self, *, cancel: bool = False) -> None:
        if cancel:  # drop queued chunks; running ones finish or die with the process
            while True:
                try:
                    self._inbox.get_nowait()
                except queue.Empty:
                    break
        for _ in self._threads:
            self._inbox.put(None)
        if not cancel:
            for thread in self._threads:
                thread.join()
        self._threads.clear()
