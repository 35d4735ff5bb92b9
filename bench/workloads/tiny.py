"""Tiny tasks: N calls of ``square(x)`` on 2 workers, end to end, and the cost per task.

Measured, each as a fresh process timed from outside, at N and at 4N:

- mprun through its CLI (``bench/configs/tiny.yaml``: pool mode,
  ``map: {range: N}``, ``reduce: sum``, ``--quiet``, results journal on), under
  its default start method (forkserver on Linux);
- a bare ``multiprocessing.Pool(2).map(square, range(N))`` script under fork
  (the platform default before Python 3.14), forkserver (mprun's default) and
  spawn: the headline ratios are against the fastest of the three, so that a
  slow baseline cannot hide mprun's own cost;
- ``ProcessPoolExecutor(2).map`` with a tuned chunksize, at N;
- ``ProcessPoolExecutor`` with chunksize 1, joblib ``Parallel(n_jobs=2)`` and
  mpire ``WorkerPool(2).map``, which are far slower per task, at a smaller n
  and 4n; their time at N is estimated as ``t(n) + (N - n) * marginal``.

The marginal cost per task is ``(t(4N) - t(N)) / 3N``: start-up cancels out.
All variants are interleaved, run by run; a row's best is its least time (a
marginal cost's, from the best t(N) and t(4N)), its median beside it. Every
run's answer (the sum of squares) is checked.
"""

from __future__ import annotations

from statistics import median

from bench.measure import run_timed
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

NAME = "tiny"
BARE = ("Pool.map (fork, platform default)", "Pool.map (forkserver)", "Pool.map (spawn)")
# ProcessPoolExecutor's tuned chunksize: 1,000-10,000 were fastest in a sweep from 1,000
# to 125,000 (Pool.map's own choice) at N=1M on 2 workers.
FUTURES_CHUNKSIZE = 10_000


def _mprun(ctx: Context, n: int) -> Measure:
    def measure() -> Numbers:
        done, summary = mprun(ctx, "tiny.yaml", {"N": str(n)})
        expect(f"mprun at N={n}", summary["jobs"][0]["reduced"], square_sum(n))
        return {"seconds": done.seconds, "job": summary["jobs"][0]["seconds"]}
    return measure


def _peer(ctx: Context, kind: str, n: int, options: dict[str, object]) -> Measure:
    argv = peer_argv(kind, n, **options)

    def measure() -> Numbers:
        done = run_timed(argv, timeout=ctx.timeout).check()
        expect(" ".join(argv[2:]), peer_answer(done), square_sum(n))
        return {"seconds": done.seconds}
    return measure


def _label(n: int) -> str:
    return f"N={n:,}"


def run(ctx: Context) -> Section:
    n = ctx.sizes.tiny
    small, cf1 = ctx.sizes.tiny_peer, ctx.sizes.tiny_futures1
    chunksize = min(FUTURES_CHUNKSIZE, max(1, n // 8))
    # (variant, the n it runs at (and 4n), peer kind or mprun, peer options)
    plan: list[tuple[str, int, str, dict[str, object]]] = [
        ("mprun CLI (forkserver, journal on)", n, "mprun", {}),
        ("Pool.map (forkserver)", n, "pool", {"start_method": "forkserver"}),
        ("Pool.map (fork, platform default)", n, "pool", {"start_method": "fork"}),
        ("Pool.map (spawn)", n, "pool", {"start_method": "spawn"}),
        (f"ProcessPoolExecutor chunksize={chunksize:,} (fork)", n, "futures",
         {"start_method": "fork", "chunksize": chunksize}),
        ("ProcessPoolExecutor chunksize=1 (fork)", cf1, "futures",
         {"start_method": "fork", "chunksize": 1}),
        ("joblib Parallel(n_jobs=2) (loky)", small, "joblib", {}),
        ("mpire WorkerPool(2).map (fork)", small, "mpire", {}),
    ]
    section = Section(NAME)
    variants: dict[str, Measure] = {}
    skipped: dict[str, str] = {}
    for label, size, kind, options in plan:
        if kind in ("joblib", "mpire") and not installed(kind):
            skipped[label] = f"{kind} is not installed (pip install -e '.[bench]')"
            continue
        for factor in (1, 4):
            at = size * factor
            variants[f"{label}@{factor}"] = (_mprun(ctx, at) if kind == "mprun"
                                             else _peer(ctx, kind, at, options))
    results = interleave(variants, ctx.repeat)

    e2e: dict[str, Row] = {}
    marginal: dict[str, Row] = {}
    for label, size, _kind, _options in plan:
        if label in skipped:
            section.skip(label, _label(size), skipped[label])
            continue
        t1 = column(results[f"{label}@1"], "seconds")
        t4 = column(results[f"{label}@4"], "seconds")
        per_task = [(b - a) / (3 * size) * 1e6 for a, b in zip(t1, t4, strict=True)]
        if size == n:
            row = section.row(label, _label(n), "s", note=f"at 4N: {median(t4):.2f} s")
            row.values = t1
        else:
            row = section.row(label, f"{_label(n)} (est. from n={size:,})", "s",
                              note=f"measured {median(t1):.2f} s at n={size:,} and "
                                   f"{median(t4):.2f} s at 4n; est. = t(n) + (N-n) x marginal")
            row.values = [a + (n - size) * p / 1e6 for a, p in zip(t1, per_task, strict=True)]
        e2e[label] = row
        m = Row(NAME, f"{label}: marginal per task", f"(t(4n)-t(n))/3n, n={size:,}", "µs/task")
        m.values = per_task
        m.best_of = (min(t4) - min(t1)) / (3 * size) * 1e6
        marginal[label] = m
    _against_fastest(e2e)
    _against_fastest(marginal)
    section.rows += marginal.values()
    mprun_label = plan[0][0]
    job = column(results[f"{mprun_label}@1"], "job")
    e2e[mprun_label].note += f"; job seconds (summary.json): {median(job):.2f}"
    _targets(section, e2e, marginal, mprun_label)
    return section


def _fastest(rows: dict[str, Row]) -> Row:
    """The bare ``Pool.map`` row with the best time."""
    return min((rows[label] for label in BARE), key=lambda row: row.best or float("inf"))


def _against_fastest(rows: dict[str, Row]) -> None:
    fastest = _fastest(rows)
    for row in rows.values():
        row.reference = fastest if row is not fastest else None


def _targets(section: Section, e2e: dict[str, Row], marginal: dict[str, Row],
             mprun_label: str) -> None:
    for what, rows, goal in (("marginal cost per task", marginal, "<= 1.3"),
                             ("end-to-end at N", e2e, "<= 2.0")):
        fastest = _fastest(rows)
        others = "; ".join(f"vs {label}: {times(ratio(rows[mprun_label], rows[label]))}"
                           for label in BARE if rows[label] is not fastest)
        section.targets.append(Target(
            f"tiny: {what}, mprun / the fastest bare script, "
            f"{fastest.variant.partition(':')[0]}",
            ratio(rows[mprun_label], fastest), goal, others))
    for peer_label in ("joblib Parallel(n_jobs=2) (loky)", "mpire WorkerPool(2).map (fork)"):
        name = peer_label.split()[0]
        if peer_label not in e2e:
            section.targets.append(Target(f"tiny: {name} / mprun, end-to-end at N", None,
                                          ">= 10", f"skipped: {name} is not installed"))
            continue
        section.targets.append(Target(
            f"tiny: {name} / mprun, end-to-end at N (est.)",
            ratio(e2e[peer_label], e2e[mprun_label]), ">= 10",
            f"marginal per task {name} / mprun: "
            f"{times(ratio(marginal[peer_label], marginal[mprun_label]))}"))

