"""Ending worker processes: SIGTERM to their groups, SIGKILL after the grace, reaped.

Data flow while a worker is being ended::

    stop_all() ── SIGTERM ──> worker's group ── (the task unwinds) ──> exit
        │  waits on the workers' sentinels; meanwhile it drains
        ├── the shared queues they put on (or they could not exit), and
        └── one worker's pipe, when its last word is awaited (after a timeout)

Used by the pool (``runner.executors.pool``) for a timeout, a worker that
answered for the wrong tasks, and the job's end.
"""

from __future__ import annotations

import queue
import time
from multiprocessing.connection import Connection, wait
from typing import Any

from runner import groups

__all__ = ["KILL_GRACE_SECONDS", "join_all", "stop_all"]

# After SIGTERM, how long a worker and its process group have before SIGKILL.
KILL_GRACE_SECONDS = groups.KILL_GRACE_SECONDS
# How often join_all looks at the queues while it waits (it wakes at once for an exit
# or a pipe's message; a queue has nothing to wait on that says it fills).
_QUEUE_POLL_SECONDS = 0.05


def stop_all(processes: list[Any], listen: Connection | None = None) -> bytes | None:
    """Stop workers and their process groups: SIGTERM to each group once (the task's
    ``finally`` runs), SIGKILL to each group left after the kill grace; reap them all.

    With ``listen``, the message a worker sends on it meanwhile is read as it comes
    (a large one would block the worker until read) and returned.
    """
    ending = groups.Groups()
    ending.end(p.pid for p in processes if p.pid is not None)
    for p in processes:  # one not yet in a group of its own (still starting)
        if p.exitcode is None and not groups.alive(p.pid):
            p.terminate()
    heard = join_all(processes, KILL_GRACE_SECONDS, [], listen)
    for p in processes:
        if p.exitcode is None:
            p.kill()
            p.join(KILL_GRACE_SECONDS)
    ending.finish()
    if heard is None and listen is not None:  # sent just as it exited
        heard = _hear(listen)
    return heard


def join_all(processes: list[Any], timeout: float, queues: list[Any],
             listen: Connection | None = None) -> bytes | None:
    """Wait for ``processes`` to exit, keeping shared queues drained meanwhile, and read
    one message from ``listen`` if one comes (returned).

    A process that put items on a multiprocessing Queue cannot exit until they
    are written to the queue's pipe; when nobody reads, a full pipe would block
    it forever (the multiprocessing guidelines' "joining processes that use
    queues"). Items taken out here are put back, in order, once all have exited.
    """
    deadline = time.monotonic() + timeout
    held: dict[int, list[Any]] = {id(q): [] for q in queues}
    heard = None
    while True:
        alive = [p for p in processes if p.exitcode is None]
        if not alive or time.monotonic() >= deadline:
            break
        handles = [p.sentinel for p in alive] + ([] if listen is None else [listen])
        poll = _QUEUE_POLL_SECONDS if queues else max(0.0, deadline - time.monotonic())
        ready = wait(handles, timeout=poll)
        if listen is not None and listen in ready:
            heard, listen = _hear(listen), None
        for q in queues:
            held[id(q)].extend(_take_all(q))
    for q in queues:
        if held[id(q)]:
            items = held[id(q)] + _take_all(q)
            for item in items:
                q.put(item)
    for p in processes:
        if p.exitcode is not None:
            p.join()
    return heard


def _hear(conn: Connection) -> bytes | None:
    """The next message on ``conn``, if one is there whole (None: none, or the pipe
    closed part way, its sender killed while it wrote)."""
    try:
        return conn.recv_bytes() if conn.poll() else None
    except (EOFError, OSError):
        return None


def _take_all(q: Any) -> list[Any]:
    items = []
    while True:
        try:
            items.append(q.get_nowait())
        except (queue.Empty, OSError, EOFError):
            return items
