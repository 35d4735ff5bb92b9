"""Large shared data: 10**7 doubles read (summed) by each of 2 workers.

Measured, each as a fresh process, timed from outside while psutil samples
the whole process tree (runner, fork server, resource tracker, workers):

- mprun, ``bench/configs/shared.yaml``: an ``Array('d', 10**7)`` filled once
  by a serial job, then summed in place by 2 pool tasks through ``!ref``;
- plain multiprocessing, the data passed as an argument: a list of 10**7
  floats given to each of 2 ``Pool.map`` tasks (pickled and copied into each
  worker);
- plain multiprocessing, the Array handed to workers by a Pool initializer.

All under forkserver (mprun's default), so that no worker starts with a
copy-on-write view of its parent's memory. Reported: peak summed RSS (shared
pages count once per process that touched them), peak summed PSS (shared
pages split between those processes) and time. Each task's sum is checked.
"""

from __future__ import annotations

from bench.measure import MIB, Completed
from bench.report import Row, Section, ratio
from bench.workloads.common import (
    Context,
    Measure,
    Numbers,
    expect,
    installed,
    interleave,
    mprun,
    peer,
)

NAME = "shared-data"
METHOD = "forkserver"


def _numbers(done: Completed) -> Numbers:
    return {"seconds": done.seconds, "rss": done.peak_rss / MIB, "pss": done.peak_pss / MIB}


def run(ctx: Context) -> Section:
    size = ctx.sizes.shared
    if not installed("psutil"):
        section = Section(NAME)
        section.skip("all variants", f"{size:,} doubles", "psutil is not installed")
        return section
    want = [float(size * (size - 1) // 2)] * 2

    def with_mprun() -> Numbers:
        done, summary = mprun(ctx, "shared.yaml", {"SIZE": str(size)}, sampled=True)
        jobs = {job["name"]: job for job in summary["jobs"]}
        expect("mprun's fill job", jobs["fill"]["results"], [size])
        expect("mprun's read tasks", jobs["read"]["results"], want)
        return _numbers(done)

    def with_peer(kind: str) -> Measure:
        def measure() -> Numbers:
            done, answer = peer(ctx, kind, size, sampled=True, start_method=METHOD)
            expect(f"{kind} tasks", answer, want)
            return _numbers(done)
        return measure

    variants: dict[str, Measure] = {
        "Pool.map, data as a list argument": with_peer("shared-list"),
        "mprun pool, Array via !ref": with_mprun,
        "Pool + Array via initializer": with_peer("shared-array"),
    }
    results = interleave(variants, ctx.repeat)
    section = Section(NAME)
    label = f"2 workers x {size:,} doubles"
    for key, unit, what in (("rss", "MiB", "peak RSS, summed over the tree"),
                            ("pss", "MiB", "peak PSS, summed over the tree"),
                            ("seconds", "s", "time")):
        base: Row | None = None
        for variant, numbers in results.items():
            row = section.row(f"{variant}: {what}", label, unit, reference=base)
            row.values = [n[key] for n in numbers]
            base = base or row
    for row in section.rows:
        value = ratio(row, row.reference)
        if value is not None and value < 1:
            better = "faster" if row.unit == "s" else "less memory"
            row.note = f"{1 / value:.1f}x {better} than the list argument"
    return section
