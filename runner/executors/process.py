"""``process``: one new process per task, at most ``workers`` at once.

This is the seed's ``mp.Process(target=job, args=...)``, with the bookkeeping
done: each process runs one task, sends its result back and exits. It is the
pool's machinery (see ``pool.py``) with one chunk of one task per worker, so
crashes, shutdown and queue draining behave the same in both modes.
"""

from __future__ import annotations

from runner.executors.pool import PoolExecutor

__all__ = ["ProcessExecutor"]


class ProcessExecutor(PoolExecutor):
    chunks_per_worker = 1
    chunks_map_items = False
