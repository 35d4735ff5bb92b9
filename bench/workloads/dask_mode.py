"""Dask mode: tiny tasks at N and 4N, one dask task per item, each primitive's round trip.

Three workloads, each as fresh processes timed from outside, interleaved run by
run, with no scheduler address: mprun starts its embedded ``LocalCluster`` (2
worker processes, one thread each, 127.0.0.1) and so do the bare scripts
(``bench.dask_peers``), so the cluster's start and stop count on both sides.

- **dask-tiny**: mprun on ``bench/configs/dask_tiny.yaml`` (``mode: dask``,
  ``map: {range: N}``, chunksize auto, ``reduce: sum``, ``--quiet``, journal on)
  at N and 4N, against a bare ``multiprocessing.Pool(2).map(square, range(N))``
  under fork, forkserver and spawn (the ratios are against the fastest of the
  three) and, for reference, mprun's pool mode (``tiny.yaml``) and a bare
  distributed script that chunks the map by hand as mprun does (``chunks``:
  ``ceil(N / 8)`` items per dask task, each returning its list pickled). The marginal
  cost per task is ``(t(4N) - t(N)) / 3N``; the fixed start-up is
  ``t(N) - N x marginal``, i.e. ``(4 t(N) - t(4N)) / 3``. Beside it, measured:
  mprun dask on one item, against a bare script that starts the same
  ``LocalCluster``, maps one item and closes it.
- **dask-items**: ``dask_items.yaml``, ``chunksize: 1``, one dask task per item,
  against a bare distributed script doing ``client.map`` (every future out at
  once) and ``client.submit`` with 2 out at once (the dispatch mprun does):
  whole-process seconds, and ms per item in-process (mprun's job seconds from
  summary.json, the script's own seconds for its work, each over the items).
- **dask-primitives**: ``dask_primitives.yaml``: one dask task times K accesses of
  each shared primitive (value read and write, lock, rlock and semaphore
  acquire+release, event ``is_set``, queue put+get, array read) from inside its
  worker (``bench.dask_tasks``), against the same accesses of distributed's own
  objects in a bare script's task: ms per access.

Every answer is checked: the sums of squares, the keys of the timings and the
value the primitives task leaves behind. Without ``distributed`` installed each
row is skipped, with the reason.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from statistics import median

from bench.dask_tasks import ACCESSES
from bench.measure import BenchError, run_timed
from bench.report import Row, Section, Target, ratio, times
from bench.workloads.common import (
    Context,
    Measure,
    Numbers,
    column,
    expect,
    installed,
    interleave,
    mprun,
    peer_answer,
    peer_argv,
    square_sum,
)

TINY, ITEMS, PRIMITIVES = "dask-tiny", "dask-items", "dask-primitives"
NAME = TINY
MISSING = "distributed is not installed (pip install -e '.[dask]')"

DASK = "mprun CLI, mode: dask (embedded LocalCluster)"
POOL = "mprun CLI, mode: pool (forkserver), for reference"
CHUNKS = "distributed LocalCluster(2) script: 8 chunks by hand, for reference"
BARE = ("Pool.map (fork, platform default)", "Pool.map (forkserver)", "Pool.map (spawn)")
MAP = "distributed client.map, all out at once"
SUBMIT = "distributed client.submit, 2 out at once"
DASK_ONE = "mprun CLI, mode: dask: one item (start-up and shutdown)"
CLUSTER_ONE = "distributed LocalCluster(2) script: client.map of one item"
DASK_ITEMS = "mprun CLI, mode: dask, chunksize: 1"
PRIMITIVE_DASK = "mprun dask task, shared !ref"
PRIMITIVE_BARE = "bare distributed task, distributed's own objects"


# In --smoke, only dask-primitives runs (it starts mprun's and a bare script's cluster,
# so it checks the dask rows' machinery end to end); the other two start nine clusters
# between them, some 20 s of the test suite's smoke run, to time what smoke sizes
# cannot show.
SMOKE_SKIPS = "smoke: skipped to keep the test suite short (dask-primitives checks the " \
    "dask rows' machinery); run it with --only"


def _skipped(name: str, variants: tuple[str, ...], size: str,
             ctx: Context | None = None) -> Section | None:
    reason = MISSING if not installed("distributed") else \
        SMOKE_SKIPS if ctx is not None and ctx.smoke and ctx.only is None else None
    if reason is None:
        return None
    section = Section(name)
    for variant in variants:
        section.skip(variant, size, reason)
    return section


def _mprun(ctx: Context, config: str, n: int, **env: str) -> Measure:
    def measure() -> Numbers:
        done, summary = mprun(ctx, config, {"N": str(n), **env})
        job = summary["jobs"][0]
        expect(f"mprun {config} at N={n}", job["reduced"], square_sum(n))
        return {"seconds": done.seconds, "job": float(job["seconds"])}
    return measure


def _peer(ctx: Context, argv: list[str], check: Callable[[object], None]) -> Measure:
    def measure() -> Numbers:
        done = run_timed(argv, timeout=ctx.timeout).check()
        check(peer_answer(done))
        return {"seconds": done.seconds, "work": _work_seconds(done.stdout)}
    return measure


def _work_seconds(stdout: str) -> float:
    return float(json.loads(stdout.strip().splitlines()[-1])["seconds"])


def _dask_peer_argv(kind: str, n: int) -> list[str]:
    return [sys.executable, "-m", "bench.dask_peers", kind, str(n)]


def _sum_is(what: str, n: int) -> Callable[[object], None]:
    return lambda answer: expect(what, answer, square_sum(n))


# -- dask-tiny ------------------------------------------------------------------------


def run_tiny(ctx: Context) -> Section:
    """Dask mode, tiny tasks: N and 4N calls of ``square(x)`` on an embedded cluster of 2
    workers against ``Pool.map``; marginal cost per task and fixed start-up."""
    n = ctx.sizes.dask_tiny
    plan: list[tuple[str, Callable[[int], Measure]]] = [
        (DASK, lambda at: _mprun(ctx, "dask_tiny.yaml", at)),
        (BARE[1], lambda at: _pool(ctx, at, "forkserver")),
        (BARE[0], lambda at: _pool(ctx, at, "fork")),
        (BARE[2], lambda at: _pool(ctx, at, "spawn")),
        (POOL, lambda at: _mprun(ctx, "tiny.yaml", at)),
        (CHUNKS, lambda at: _peer(ctx, _dask_peer_argv("chunks", at),
                                  _sum_is(f"distributed chunks at N={at}", at))),
    ]
    skipped = _skipped(TINY, tuple(label for label, _ in plan), f"N={n:,}", ctx)
    if skipped is not None:
        return skipped
    variants = {f"{label}@{factor}": make(n * factor)
                for label, make in plan for factor in (1, 4)}
    # Start-up measured, not extrapolated: one item, mprun against a bare cluster script.
    variants[DASK_ONE] = _mprun(ctx, "dask_tiny.yaml", 1)
    variants[CLUSTER_ONE] = _peer(ctx, _dask_peer_argv("map", 1), _sum_is("client.map", 1))
    results = interleave(variants, ctx.repeat)

    section = Section(TINY)
    at_n: dict[str, Row] = {}
    at_4n: dict[str, Row] = {}
    marginal: dict[str, Row] = {}
    startup: dict[str, Row] = {}
    for label, _ in plan:
        t1 = column(results[f"{label}@1"], "seconds")
        t4 = column(results[f"{label}@4"], "seconds")
        row = section.row(label, f"N={n:,}", "s")
        row.values = t1
        at_n[label] = row
        row = Row(TINY, label, f"4N={4 * n:,}", "s")
        row.values = t4
        at_4n[label] = row
        m = Row(TINY, f"{label}: marginal per task", f"(t(4N)-t(N))/3N, N={n:,}", "µs/task")
        m.values = [(b - a) / (3 * n) * 1e6 for a, b in zip(t1, t4, strict=True)]
        m.best_of = (min(t4) - min(t1)) / (3 * n) * 1e6
        marginal[label] = m
        s = Row(TINY, f"{label}: fixed start-up", "t(N) - N x marginal", "s")
        s.values = [(4 * a - b) / 3 for a, b in zip(t1, t4, strict=True)]
        s.best_of = (4 * min(t1) - min(t4)) / 3
        startup[label] = s
    for label in (DASK, POOL):
        job1 = median(column(results[f"{label}@1"], "job"))
        job4 = median(column(results[f"{label}@4"], "job"))
        at_n[label].note = f"job seconds (summary.json): {job1:.2f}"
        at_4n[label].note = f"job seconds (summary.json): {job4:.2f}"
    for rows in (at_n, at_4n, marginal, startup):
        _against_fastest(rows)
    section.rows += [*at_4n.values(), *marginal.values(), *startup.values()]
    cluster_one = Row(TINY, CLUSTER_ONE, "N=1", "s")
    cluster_one.values = column(results[CLUSTER_ONE], "seconds")
    dask_one = section.row(DASK_ONE, "N=1", "s", reference=cluster_one,
                           note="how much of dask mode's start-up is the cluster's own")
    dask_one.values = column(results[DASK_ONE], "seconds")
    section.rows.append(cluster_one)

    fastest = _fastest(marginal)
    others = "; ".join(f"vs {label}: {times(ratio(marginal[DASK], marginal[label]))}"
                       for label in BARE if marginal[label] is not fastest)
    fastest_start = _fastest(startup)
    section.targets.append(Target(
        f"dask-tiny: marginal cost per task at N={n:,} and 4N, mprun dask / the fastest "
        f"bare script, {fastest.variant.partition(':')[0]}",
        ratio(marginal[DASK], fastest), "<= 1.5",
        f"{others}; fixed start-up: mprun dask {_seconds(startup[DASK])}, "
        f"{fastest_start.variant.partition(':')[0]} {_seconds(fastest_start)}, "
        f"mprun pool {_seconds(startup[POOL])}; at N=1, mprun dask {_seconds(dask_one)}, "
        f"a bare LocalCluster script {_seconds(cluster_one)}; marginal per task / the bare "
        f"LocalCluster script with 8 chunks: {times(ratio(marginal[DASK], marginal[CHUNKS]))}; "
        f"end to end at N "
        f"{times(ratio(at_n[DASK], _fastest(at_n)))}x, at 4N "
        f"{times(ratio(at_4n[DASK], _fastest(at_4n)))}x the fastest"))
    return section


def _pool(ctx: Context, n: int, method: str) -> Measure:
    argv = peer_argv("pool", n, start_method=method)
    return _peer(ctx, argv, _sum_is(f"Pool.map ({method}) at N={n}", n))


def _seconds(row: Row) -> str:
    best, middle = row.best, row.median
    if best is None or middle is None:
        return "-"
    return f"{best:.2f} s (median {middle:.2f})"


def _fastest(rows: dict[str, Row]) -> Row:
    """The bare ``Pool.map`` row with the best value."""
    return min((rows[label] for label in BARE), key=lambda row: row.best or float("inf"))


def _against_fastest(rows: dict[str, Row]) -> None:
    fastest = _fastest(rows)
    for row in rows.values():
        row.reference = fastest if row is not fastest else None


# -- dask-items -----------------------------------------------------------------------


def run_items(ctx: Context) -> Section:
    """Dask mode, one dask task per item (``chunksize: 1``) against a bare distributed
    ``client.map`` and ``client.submit``: whole process and ms per item."""
    n = ctx.sizes.dask_items
    size = f"{n:,} items, 1 task each"
    skipped = _skipped(ITEMS, (DASK_ITEMS, MAP, SUBMIT), size, ctx)
    if skipped is not None:
        return skipped
    variants: dict[str, Measure] = {
        DASK_ITEMS: _mprun(ctx, "dask_items.yaml", n),
        MAP: _peer(ctx, _dask_peer_argv("map", n), _sum_is("client.map", n)),
        SUBMIT: _peer(ctx, _dask_peer_argv("submit", n), _sum_is("client.submit", n)),
    }
    results = interleave(variants, ctx.repeat)
    section = Section(ITEMS)
    whole: dict[str, Row] = {}
    per_item: dict[str, Row] = {}
    for label in variants:
        row = section.row(f"{label}: whole process", size, "s")
        row.values = column(results[label], "seconds")
        whole[label] = row
        key = "job" if label == DASK_ITEMS else "work"
        how = "job seconds (summary.json)" if label == DASK_ITEMS else "the script's own seconds"
        row = Row(ITEMS, f"{label}: per item, in-process", f"{how} / {n:,}", "ms/task")
        row.values = [seconds / n * 1e3 for seconds in column(results[label], key)]
        per_item[label] = row
    for rows in (whole, per_item):
        rows[DASK_ITEMS].reference = rows[SUBMIT]
        rows[MAP].reference = rows[SUBMIT]
        rows[DASK_ITEMS].note = f"vs {MAP}: {times(ratio(rows[DASK_ITEMS], rows[MAP]))}x"
    section.rows += per_item.values()
    return section


# -- dask-primitives ------------------------------------------------------------------


def run_primitives(ctx: Context) -> Section:
    """Dask mode, each shared primitive's round trip from a dask task, against
    distributed's own objects: ms per access."""
    k = ctx.sizes.dask_accesses
    size = f"{k:,} accesses, 1 worker"
    skipped = _skipped(PRIMITIVES, (PRIMITIVE_DASK, PRIMITIVE_BARE), size)
    if skipped is not None:
        return skipped

    def mine() -> Numbers:
        done, summary = mprun(ctx, "dask_primitives.yaml", {"K": str(k)})
        expect("the value the primitives task leaves", summary["shared"]["value"], k)
        timings = summary["jobs"][0]["results"][0]
        _check_timings(PRIMITIVE_DASK, timings)
        return {"seconds": done.seconds, **timings}

    bare_argv = _dask_peer_argv("primitives", k)

    def bare() -> Numbers:
        done = run_timed(bare_argv, timeout=ctx.timeout).check()
        timings = peer_answer(done)
        _check_timings(PRIMITIVE_BARE, timings)
        return {"seconds": done.seconds, **timings}

    results = interleave({PRIMITIVE_DASK: mine, PRIMITIVE_BARE: bare}, ctx.repeat)
    section = Section(PRIMITIVES)
    for access in ACCESSES:
        base = Row(PRIMITIVES, f"{PRIMITIVE_BARE}: {access}", size, "ms/access")
        base.values = [seconds * 1e3 for seconds in column(results[PRIMITIVE_BARE], access)]
        row = section.row(f"{PRIMITIVE_DASK}: {access}", size, "ms/access", reference=base)
        row.values = [seconds * 1e3 for seconds in column(results[PRIMITIVE_DASK], access)]
        section.rows.append(base)
    for label in (PRIMITIVE_DASK, PRIMITIVE_BARE):
        row = section.row(f"{label}: whole process", size, "s",
                          note="start-up, the 8 x K timed accesses, shutdown")
        row.values = column(results[label], "seconds")
    return section


def _check_timings(what: str, timings: object) -> None:
    if not isinstance(timings, dict) or list(timings) != list(ACCESSES) \
            or not all(isinstance(v, float) and v > 0 for v in timings.values()):
        raise BenchError(f"wrong answer from {what}: {timings!r}")


WORKLOADS: dict[str, Callable[[Context], Section]] = {
    TINY: run_tiny,
    ITEMS: run_items,
    PRIMITIVES: run_primitives,
}
