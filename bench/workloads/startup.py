"""Start-up: what a small run costs before and after the work, end to end.

Measured, each as a fresh process timed from outside:

- ``mprun configs/pool.yaml`` (the README's first command, the ``mprun``
  console script, human output, logs in a temporary folder), against the
  seed's own pool script (``bench/seed_pool.py``, verbatim but for its
  quotes), both as a user runs them (each under its platform default start
  method: forkserver for mprun, fork for the script on Linux before Python
  3.14) and both under forkserver (``bench/seed_launch.py forkserver``); mprun
  under fork too;
- ``mprun validate configs/pool.yaml`` against ``python -c pass``.

mprun's rows run with its validated-config cache (``runner.configcache``) in a
folder of the bench's own, warmed by one untimed run: the second and later
runs of a config, as from cron or CI. The rows marked "cache off"
(``MPRUN_CACHE_DIR=off``) are a config's first run.

Each answer is checked: the script prints the seed's three lines; mprun's
summary.json holds the same squares; validate says ``ok``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

from bench.measure import ROOT, BenchError, run_timed
from bench.report import Row, Section, Target, ratio, times
from bench.workloads.common import Context, Measure, Numbers, column, expect, interleave, mprun

NAME = "start-up"
SQUARES = [x * x for x in range(10)]
SEED_OUTPUT = [str(SQUARES), "4", str(SQUARES)]


def mprun_command() -> list[str]:
    """The ``mprun`` console script beside this interpreter, as a user runs it."""
    script = Path(sys.executable).parent / "mprun"
    found = script if script.exists() else shutil.which("mprun")
    return [str(found)] if found else [sys.executable, "-m", "runner"]


def _mprun_pool(ctx: Context, start_method: str | None, cache: str) -> Measure:
    def measure() -> Numbers:
        done, summary = mprun(ctx, str(ROOT / "configs" / "pool.yaml"),
                              {"MPRUN_CACHE_DIR": cache}, command=mprun_command(), output="",
                              start_method=start_method)
        results = {job["name"]: job["results"] for job in summary["jobs"]}
        expect("mprun configs/pool.yaml", results,
               {"map": SQUARES, "apply": [4], "apply_many": SQUARES})
        return {"seconds": done.seconds}
    return measure


def _seed(ctx: Context, start_method: str | None) -> Measure:
    argv = ([sys.executable, "bench/seed_launch.py", start_method] if start_method
            else [sys.executable, "bench/seed_pool.py"])

    def measure() -> Numbers:
        done = run_timed(argv, timeout=ctx.timeout).check()
        expect("the seed's pool script", done.stdout.split("\n")[:3], SEED_OUTPUT)
        return {"seconds": done.seconds}
    return measure


def _validate(ctx: Context, cache: str) -> Measure:
    argv = [*mprun_command(), "validate", "configs/pool.yaml"]

    def measure() -> Numbers:
        done = run_timed(argv, env={"MPRUN_CACHE_DIR": cache}, timeout=ctx.timeout).check()
        if ": ok (" not in done.stdout:
            raise BenchError(f"mprun validate did not say ok: {done.stdout!r}")
        return {"seconds": done.seconds}
    return measure


def _python(ctx: Context) -> Measure:
    def measure() -> Numbers:
        return {"seconds": run_timed([sys.executable, "-c", "pass"],
                                     timeout=ctx.timeout).check().seconds}
    return measure


def run(ctx: Context) -> Section:
    cache = tempfile.mkdtemp(prefix="mprun-bench-cache-")
    try:
        return _run(ctx, cache)
    finally:
        shutil.rmtree(cache, ignore_errors=True)


def _run(ctx: Context, cache: str) -> Section:
    variants: dict[str, Measure] = {
        "seed pool script (fork, its default)": _seed(ctx, None),
        "mprun configs/pool.yaml (forkserver, its default)": _mprun_pool(ctx, None, cache),
        "seed pool script (forkserver)": _seed(ctx, "forkserver"),
        "mprun configs/pool.yaml --start-method fork": _mprun_pool(ctx, "fork", cache),
        "mprun configs/pool.yaml, cache off": _mprun_pool(ctx, None, "off"),
        "python -c pass": _python(ctx),
        "mprun validate configs/pool.yaml": _validate(ctx, cache),
        "mprun validate configs/pool.yaml, cache off": _validate(ctx, "off"),
    }
    _mprun_pool(ctx, None, cache)()  # the cache's first entry, untimed
    _validate(ctx, cache)()
    results = interleave(variants, ctx.repeat)
    section = Section(NAME)
    rows: dict[str, Row] = {}
    for label, numbers in results.items():
        rows[label] = section.row(label, "pool.yaml: 3 jobs, 21 tasks", "s")
        rows[label].values = column(numbers, "seconds")
    seed_fork, seed_fs = (rows["seed pool script (fork, its default)"],
                          rows["seed pool script (forkserver)"])
    mprun_fs = rows["mprun configs/pool.yaml (forkserver, its default)"]
    mprun_fork = rows["mprun configs/pool.yaml --start-method fork"]
    mprun_fs.reference = seed_fork
    mprun_fs.note = f"vs seed (forkserver): {times(ratio(mprun_fs, seed_fs))}x"
    seed_fs.reference = seed_fork
    mprun_fork.reference = seed_fork
    mprun_cold = rows["mprun configs/pool.yaml, cache off"]
    mprun_cold.reference = seed_fork
    validate, validate_cold = (rows["mprun validate configs/pool.yaml"],
                               rows["mprun validate configs/pool.yaml, cache off"])
    python = rows["python -c pass"]
    python.size = validate.size = validate_cold.size = "-"
    validate.reference = validate_cold.reference = python
    section.targets += [
        Target("start-up: mprun pool.yaml / seed script, each as users run it",
               ratio(mprun_fs, seed_fork), "<= 4.0", "mprun forkserver, seed fork"),
        Target("start-up: mprun pool.yaml / seed script, both forkserver",
               ratio(mprun_fs, seed_fs), "<= 4.0",
               f"both fork: {times(ratio(mprun_fork, seed_fork))}"),
        Target("start-up: mprun validate pool.yaml / python -c pass",
               ratio(validate, python), "<= 4.0",
               f"cache off: {times(ratio(validate_cold, python))}; pool.yaml with the "
               f"cache off / seed script: {times(ratio(mprun_cold, seed_fork))}"),
    ]
    return section

