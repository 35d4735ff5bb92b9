"""The peers mprun is compared with, each a script run as its own process.

``python -m bench.peers KIND ...`` runs one peer and prints one JSON line on
stdout: its answer (checked by the caller) and the seconds its own work took.
The caller times the whole process from outside, so interpreter start-up,
imports and worker start-up count for every peer as they do for mprun.
Each peer calls the task functions of ``bench.tasks``. joblib and mpire are
imported only by their own peer, so the others run without them.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing as mp
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from bench import tasks

WORKERS = 2


def pool_map(n: int, method: str) -> int:
    """``multiprocessing.Pool(2).map(square, range(n))``: the seed's pool, bare."""
    with mp.get_context(method).Pool(WORKERS) as pool:
        return sum(pool.map(tasks.square, range(n)))


def futures_map(n: int, method: str, chunksize: int) -> int:
    """``ProcessPoolExecutor(2).map(square, range(n), chunksize=...)``."""
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(WORKERS, mp_context=mp.get_context(method)) as pool:
        return sum(pool.map(tasks.square, range(n), chunksize=chunksize))


def joblib_map(n: int) -> int:
    """``Parallel(n_jobs=2)(delayed(square)(x) for x in range(n))``, loky, auto batches."""
    from joblib import Parallel, delayed

    return sum(Parallel(n_jobs=WORKERS)(delayed(tasks.square)(x) for x in range(n)))


def mpire_map(n: int) -> int:
    """``mpire.WorkerPool(2).map(square, range(n))`` with its defaults (fork, auto chunks)."""
    from mpire import WorkerPool

    with WorkerPool(n_jobs=WORKERS) as pool:
        return sum(pool.map(tasks.square, range(n)))


def cube_serial(n: int) -> int:
    """The seed's ``normal()``: two cube sums, one after the other."""
    return sum(tasks.cube_sum(n) for _ in range(2))


def cube_threads(n: int) -> int:
    """The seed's ``multithread()``: two threads, one cube sum each (the GIL serialises them)."""
    results: list[int] = []
    threads = [threading.Thread(target=lambda: results.append(tasks.cube_sum(n)))
               for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(results)


def _cube_to_queue(q: Any, n: int) -> None:
    q.put(tasks.cube_sum(n))


def cube_processes(n: int, method: str) -> int:
    """The seed's ``multicore()``: two ``mp.Process``, each puts its cube sum on a Queue."""
    ctx = mp.get_context(method)
    q = ctx.Queue()
    processes = [ctx.Process(target=_cube_to_queue, args=(q, n)) for _ in range(2)]
    for process in processes:
        process.start()
    for process in processes:
        process.join()
    return int(q.get() + q.get())


def sleep_serial(count: int, seconds: float) -> int:
    """``count`` sleeping tasks, one after the other."""
    return sum(tasks.echo_after_sleep(x, seconds) for x in range(count))


def shared_list(size: int, method: str) -> list[float]:
    """Every task gets the whole data as a list argument: pickled, sent, unpickled."""
    data = [float(i) for i in range(size)]
    with mp.get_context(method).Pool(WORKERS) as pool:
        return pool.map(tasks.sum_list, [data] * WORKERS, chunksize=1)


_inherited: Any = None


def _keep(shared: Any) -> None:
    global _inherited
    _inherited = shared


def _sum_inherited(_: int) -> float:
    return tasks.sum_shared(_inherited)


def shared_array(size: int, method: str) -> list[float]:
    """Plain multiprocessing's own way: an Array handed to workers by a Pool initializer."""
    ctx = mp.get_context(method)
    data = ctx.Array("d", size)
    tasks.fill_array(data, size)
    with ctx.Pool(WORKERS, initializer=_keep, initargs=(data,)) as pool:
        return pool.map(_sum_inherited, range(WORKERS), chunksize=1)


def map_file(path: str, method: str) -> int:
    """The bare script a map file is held to: the file read into a list of lines, and
    ``Pool(2).map(len, lines)``, every result kept; the answer is their sum."""
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    with mp.get_context(method).Pool(WORKERS) as pool:
        results = pool.map(len, lines)
    return sum(results)


def idle_worker(path: str, seconds: float, method: str) -> int:
    """One bare Pool worker running ``report_pid_and_sleep``, for its memory."""
    with mp.get_context(method).Pool(1) as pool:
        return int(pool.apply(tasks.report_pid_and_sleep, (path, seconds)))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench.peers")
    sub = parser.add_subparsers(dest="kind", required=True)
    for name in ("pool", "futures", "joblib", "mpire", "cube-serial", "cube-threads",
                 "cube-processes", "shared-list", "shared-array"):
        cmd = sub.add_parser(name)
        cmd.add_argument("n", type=int)
        cmd.add_argument("--start-method", default=mp.get_start_method())
        cmd.add_argument("--chunksize", type=int, default=0, help="0: Pool.map's own choice")
    sleep = sub.add_parser("sleep-serial")
    sleep.add_argument("n", type=int)
    sleep.add_argument("--seconds", type=float, default=0.01)
    lines = sub.add_parser("map-file")
    lines.add_argument("path")
    lines.add_argument("--start-method", default=mp.get_start_method())
    idle = sub.add_parser("idle-worker")
    idle.add_argument("path")
    idle.add_argument("--seconds", type=float, default=1.0)
    idle.add_argument("--start-method", default=mp.get_start_method())
    return parser


def auto_chunksize(n: int, workers: int = WORKERS) -> int:
    """``multiprocessing.Pool.map``'s choice: about four chunks per worker."""
    return max(1, math.ceil(n / (4 * workers)))


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    runners: dict[str, Callable[[], Any]] = {
        "pool": lambda: pool_map(options.n, options.start_method),
        "futures": lambda: futures_map(options.n, options.start_method,
                                       options.chunksize or auto_chunksize(options.n)),
        "joblib": lambda: joblib_map(options.n),
        "mpire": lambda: mpire_map(options.n),
        "cube-serial": lambda: cube_serial(options.n),
        "cube-threads": lambda: cube_threads(options.n),
        "cube-processes": lambda: cube_processes(options.n, options.start_method),
        "sleep-serial": lambda: sleep_serial(options.n, options.seconds),
        "shared-list": lambda: shared_list(options.n, options.start_method),
        "shared-array": lambda: shared_array(options.n, options.start_method),
        "map-file": lambda: map_file(options.path, options.start_method),
        "idle-worker": lambda: idle_worker(options.path, options.seconds,
                                           options.start_method),
    }
    started = time.perf_counter()
    answer = runners[options.kind]()
    seconds = time.perf_counter() - started
    print(json.dumps({"answer": answer, "seconds": seconds}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
