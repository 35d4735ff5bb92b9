"""I/O-bound: 200 tasks that each sleep 10 ms, mprun thread mode (50 threads) against serial.

Measured, each as a fresh process timed from outside: a serial script (one
task after another) and mprun on ``bench/configs/io.yaml`` (thread mode, 50
workers, ``reduce: sum``, ``--json``, which also gives the job's own
seconds). Ideal: 200 x 10 ms = 2 s serial, 4 x 10 ms with 50 threads. The
sum of the task indexes is checked.
"""

from __future__ import annotations

import json

from bench.report import Section, ratio
from bench.workloads.common import (
    Context,
    Measure,
    Numbers,
    column,
    expect,
    interleave,
    mprun,
    peer,
)

NAME = "io"
THREADS = 50


def run(ctx: Context) -> Section:
    count, seconds = ctx.sizes.io_tasks, ctx.sizes.io_seconds
    want = count * (count - 1) // 2

    def serial() -> Numbers:
        done, answer = peer(ctx, "sleep-serial", count, seconds=seconds)
        expect("serial sleeps", answer, want)
        return {"seconds": done.seconds}

    def threads() -> Numbers:
        done, _ = mprun(ctx, "io.yaml", {"COUNT": str(count), "SECONDS": str(seconds)},
                        output="--json")
        job = json.loads(done.stdout)["jobs"][0]
        expect("mprun thread mode", (job["mode"], job["workers"], job["reduced"]),
               ("thread", THREADS, want))
        return {"seconds": done.seconds, "job": float(job["seconds"])}

    variants: dict[str, Measure] = {"serial (script)": serial,
                                    "mprun thread mode, 50 workers": threads}
    results = interleave(variants, ctx.repeat)
    section = Section(NAME)
    size = f"{count} x sleep({seconds:g})"
    base = section.row("serial (script)", size, "s",
                       note=f"ideal {count * seconds:.2f} s + start-up")
    base.values = column(results["serial (script)"], "seconds")
    mine = section.row("mprun thread mode, 50 workers", size, "s", reference=base)
    mine.values = column(results["mprun thread mode, 50 workers"], "seconds")
    job = section.row("mprun thread mode: job seconds (--json)", size, "s",
                      note=f"ideal {-(-count // THREADS) * seconds:.2f} s")
    job.values = column(results["mprun thread mode, 50 workers"], "job")
    speedup = ratio(base, mine)
    mine.note = f"speedup {speedup:.1f}x" if speedup else ""
    return section
