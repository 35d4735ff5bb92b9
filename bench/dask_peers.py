"""The bare ``distributed`` scripts mprun's dask mode is compared with, each run as its own
process.

``python -m bench.dask_peers KIND ...`` starts what mprun's dask mode starts without a
scheduler address, a ``LocalCluster`` of 2 worker processes with one thread each on
127.0.0.1 (no dashboard, no memory limit), runs one piece of work on it, closes it, and
prints one JSON line like ``bench.peers``: its answer (checked by the caller) and the
seconds its own work took. The caller times the whole process from outside, so
imports and the cluster's start and stop count, as they do for mprun.

- ``map N``: ``client.map(square, range(N))``, one dask task per item, every future out
  at once, gathered and summed: distributed at its best per task;
- ``chunks N``: ``Pool.map``'s chunking by hand, ``ceil(N / 8)`` items per task (what
  mprun's dask mode sends with chunksize auto), every task out at once, each returning
  its list of squares pickled (``bench.dask_tasks.square_chunk`` says why), gathered,
  unpickled and summed;
- ``submit N``: ``client.submit(square, x)`` per item with at most 2 out at once (one
  per worker thread), the next sent as each finishes (``as_completed``), summed: the
  dispatch mprun's dask mode does;
- ``primitives K``: one task times K accesses of each of distributed's own primitives
  (``bench.dask_tasks.time_bare_primitives``); the answer is the seconds per access.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import pickle
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

from bench import dask_tasks, tasks

WORKERS = 2


def _cluster(workers: int = WORKERS) -> tuple[Any, Any]:
    from distributed import Client, LocalCluster

    cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                           host="127.0.0.1", dashboard_address="127.0.0.1:0",
                           silence_logs=logging.CRITICAL, memory_limit=0)
    client = Client(cluster)  # the default client, as a script has it
    client.wait_for_workers(workers)
    return cluster, client


def map_all(client: Any, n: int) -> int:
    futures = client.map(tasks.square, range(n), pure=False)
    return sum(client.gather(futures))


def map_chunks(client: Any, n: int, workers: int = WORKERS) -> int:
    """``Pool.map``'s chunks by hand: ``ceil(n / (4 * workers))`` items per dask task, every
    task out at once, each returning its list of squares, pickled."""
    size = max(1, math.ceil(n / (4 * workers)))
    starts = range(0, n, size)
    futures = client.map(dask_tasks.square_chunk, starts,
                         [min(n, start + size) for start in starts], pure=False)
    return sum(sum(pickle.loads(part)) for part in client.gather(futures))


def submit_windowed(client: Any, n: int, window: int = WORKERS) -> int:
    from distributed import as_completed

    items = iter(range(n))
    running = as_completed([client.submit(tasks.square, x, pure=False)
                            for x in (next(items, None) for _ in range(window))
                            if x is not None])
    total = 0
    for future in running:
        total += future.result()
        x = next(items, None)
        if x is not None:
            running.add(client.submit(tasks.square, x, pure=False))
    return total


def primitives(client: Any, k: int) -> dict[str, float]:
    future = client.submit(dask_tasks.time_bare_primitives, k, f"bench-{uuid.uuid4().hex}",
                           pure=False)
    times: dict[str, float] = future.result()
    return times


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.dask_peers")
    parser.add_argument("kind", choices=["map", "chunks", "submit", "primitives"])
    parser.add_argument("n", type=int, help="items (map, chunks, submit) or accesses "
                                            "(primitives)")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    runners: dict[str, Callable[[Any], Any]] = {
        "map": lambda client: map_all(client, options.n),
        "chunks": lambda client: map_chunks(client, options.n),
        "submit": lambda client: submit_windowed(client, options.n),
        "primitives": lambda client: primitives(client, options.n),
    }
    cluster, client = _cluster(1 if options.kind == "primitives" else WORKERS)
    try:
        started = time.perf_counter()
        answer = runners[options.kind](client)
        seconds = time.perf_counter() - started
    finally:
        client.close()
        cluster.close()
    print(json.dumps({"answer": answer, "seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
