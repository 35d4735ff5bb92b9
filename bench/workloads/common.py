"""What every workload shares: sizes, the run context, and how mprun and peers are invoked.

mprun runs as a user runs it: ``python -m runner CONFIG --quiet --log-dir TMP``
(or ``--json``), results journal on, one fresh log folder per run, read back
afterwards (untimed) to check the answer. A peer runs as
``python -m bench.peers KIND ...`` and prints its answer as JSON. Variants of
a workload are measured round-robin, ``repeat`` rounds, so that a slow patch
of a shared machine hits every side alike.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.measure import ROOT, BenchError, Completed, run_sampled, run_timed

CONFIGS = ROOT / "bench" / "configs"
WORKERS = 2

Numbers = dict[str, float]
Measure = Callable[[], Numbers]


@dataclass(frozen=True)
class Sizes:
    """Workload sizes; ``SMOKE`` runs everything in seconds."""

    tiny: int = 1_000_000  # square(x) calls for mprun, Pool.map and tuned futures
    tiny_peer: int = 50_000  # ... for joblib and mpire (then scaled)
    tiny_futures1: int = 12_500  # ... for ProcessPoolExecutor with chunksize 1
    cube: int = 1_000_000  # the seed's range for each cube sum
    io_tasks: int = 200
    io_seconds: float = 0.01
    shared: int = 10**7  # doubles in the shared Array / the list argument
    idle_seconds: float = 1.0  # how long the sampled worker's task sleeps
    rows: int = 100_000  # CSV rows mapped with and without a timeout
    map_lines: int = 5_000_000  # lines of the map file (ints) mprun and Pool.map read
    dask_tiny: int = 1_000_000  # square(x) calls in dask mode (and 4x that) and for Pool.map
    dask_items: int = 1_000  # square(x) calls, one dask task each
    dask_accesses: int = 200  # accesses of each shared primitive from a dask task


SMOKE = Sizes(tiny=2_000, tiny_peer=500, tiny_futures1=200, cube=20_000, io_tasks=20,
              shared=200_000,  # > 100,000: the shared-NAME.bin path
              idle_seconds=0.4, rows=2_000, map_lines=20_000, dask_tiny=2_000,
              dask_items=20, dask_accesses=5)


@dataclass
class Context:
    sizes: Sizes
    repeat: int
    smoke: bool
    only: tuple[str, ...] | None = None  # the workloads --only named, if it did

    @property
    def timeout(self) -> float:
        return 120 if self.smoke else 900


def installed(module: str) -> bool:
    return importlib.util.find_spec(module) is not None


def expect(what: str, got: Any, want: Any) -> None:
    """Fail loudly when a workload's answer is wrong."""
    if got != want:
        raise BenchError(f"wrong answer from {what}: got {got!r}, expected {want!r}")


def interleave(variants: dict[str, Measure], repeat: int) -> dict[str, list[Numbers]]:
    """Measure every variant ``repeat`` times, round-robin."""
    results: dict[str, list[Numbers]] = {name: [] for name in variants}
    for _ in range(repeat):
        for name, measure in variants.items():
            results[name].append(measure())
    return results


def column(results: list[Numbers], key: str) -> list[float]:
    return [numbers[key] for numbers in results]


@contextlib.contextmanager
def log_dir() -> Iterator[Path]:
    """A fresh ``--log-dir`` for one mprun run, removed (untimed) afterwards."""
    path = Path(tempfile.mkdtemp(prefix="mprun-bench-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def mprun_argv(config: str, logs: Path, *, command: list[str] | None = None,
               output: str = "--quiet", start_method: str | None = None) -> list[str]:
    """The mprun command line for CONFIG (a bare name is a file in bench/configs)."""
    path = Path(config) if "/" in config else CONFIGS / config
    argv = [*(command or [sys.executable, "-m", "runner"]), str(path.relative_to(ROOT)),
            "--log-dir", str(logs)]
    if output:
        argv.append(output)
    if start_method:
        argv += ["--start-method", start_method]
    return argv


def read_summary(logs: Path, config: str) -> dict[str, Any]:
    """The run's summary.json; raises unless every task succeeded."""
    summary: dict[str, Any] = json.loads((logs / "latest" / "summary.json").read_text())
    if summary["status"] != "ok":
        raise BenchError(f"mprun {config}: status {summary['status']}: "
                         f"{[job['errors'] for job in summary['jobs']]}")
    return summary


def mprun(ctx: Context, config: str, env: dict[str, str] | None = None, *,
          command: list[str] | None = None, output: str = "--quiet",
          start_method: str | None = None,
          sampled: bool = False) -> tuple[Completed, dict[str, Any]]:
    """Run mprun on CONFIG, timed (and memory-sampled); return it and its summary.json."""
    with log_dir() as logs:
        argv = mprun_argv(config, logs, command=command, output=output,
                          start_method=start_method)
        run = run_sampled if sampled else run_timed
        done = run(argv, env=env, timeout=ctx.timeout).check()
        return done, read_summary(logs, config)


def peer_argv(kind: str, *args: object, **options: object) -> list[str]:
    """``python -m bench.peers KIND ARGS --OPTION VALUE ...``."""
    argv = [sys.executable, "-m", "bench.peers", kind, *map(str, args)]
    for key, value in options.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    return argv


def peer_answer(done: Completed) -> Any:
    """The answer a peer printed as its last line of JSON."""
    try:
        return json.loads(done.stdout.strip().splitlines()[-1])["answer"]
    except (IndexError, ValueError, KeyError) as exc:
        raise BenchError(f"no answer from {' '.join(done.argv)}: {done.stdout!r}") from exc


def peer(ctx: Context, kind: str, *args: object, sampled: bool = False,
         **options: object) -> tuple[Completed, Any]:
    """Run a peer, timed (and memory-sampled); return it and its checked-later answer."""
    run = run_sampled if sampled else run_timed
    done = run(peer_argv(kind, *args, **options), timeout=ctx.timeout).check()
    return done, peer_answer(done)


def square_sum(n: int) -> int:
    """sum(x * x for x in range(n))."""
    return (n - 1) * n * (2 * n - 1) // 6


def cube_sum(n: int) -> int:
    """The seed's loop, sum(i + i**2 + i**3 for i in range(n)), in closed form."""
    m = n - 1
    return m * (m + 1) // 2 + square_sum(n) + (m * (m + 1) // 2) ** 2
