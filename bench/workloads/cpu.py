"""CPU-bound: the seed's comparison, two cube sums over range(1,000,000), and over 10x that.

Measured, each as a fresh process timed from outside:

- serial: the seed's ``normal()``, two sums one after the other (a script);
- threads: the seed's ``multithread()``, one thread per sum (the GIL serialises them);
- 2 processes: the seed's ``multicore()``, two ``mp.Process`` and a Queue, under
  fork, the platform default: what this machine allows bare multiprocessing now;
- mprun process mode and mprun pool mode: ``bench/configs/cpu.yaml`` (2
  tasks, 2 workers, ``reduce: sum``) run with ``--json``.

Speedup is serial's time over each variant's, end to end (start-up included)
and for the work alone: the scripts time their own computation, mprun's
``--json`` gives each job's seconds (worker start-up included, interpreter
and config loading not). The whole comparison runs again at ten times the
seed's range, where start-up weighs a tenth as much. The total is checked
against the closed form.
"""

from __future__ import annotations

import json

from bench.report import Row, Section, Target, ratio
from bench.workloads.common import (
    Context,
    Measure,
    Numbers,
    column,
    cube_sum,
    expect,
    interleave,
    mprun,
    peer,
)

NAME = "cpu"


def _script(ctx: Context, kind: str, n: int, **options: str) -> Measure:
    def measure() -> Numbers:
        done, answer = peer(ctx, kind, n, **options)
        expect(kind, answer, 2 * cube_sum(n))
        work = json.loads(done.stdout.strip().splitlines()[-1])["seconds"]
        return {"seconds": done.seconds, "work": work}
    return measure


def _mprun(ctx: Context, mode: str, n: int) -> Measure:
    def measure() -> Numbers:
        done, summary = mprun(ctx, "cpu.yaml", {"N": str(n), "MODE": mode}, output="--json")
        printed = json.loads(done.stdout)
        job = printed["jobs"][0]
        expect(f"mprun {mode} mode", (job["mode"], job["reduced"]), (mode, 2 * cube_sum(n)))
        expect(f"mprun {mode} mode's summary.json", summary["jobs"][0]["reduced"],
               job["reduced"])
        return {"seconds": done.seconds, "work": float(job["seconds"])}
    return measure


SERIAL = "serial (seed's normal())"
SEED_PROCESSES = "2 processes (seed's multicore(), fork)"
MPRUN_MODES = ("mprun process mode", "mprun pool mode")


def _measure(ctx: Context, n: int, section: Section) -> dict[str, tuple[Row, Row]]:
    """Rows (end to end, work only) per variant, for two cube sums over range(n)."""
    size = f"2 x range({n:,})"
    variants: dict[str, Measure] = {
        SERIAL: _script(ctx, "cube-serial", n),
        "threads (seed's multithread())": _script(ctx, "cube-threads", n),
        SEED_PROCESSES: _script(ctx, "cube-processes", n, start_method="fork"),
        MPRUN_MODES[0]: _mprun(ctx, "process", n),
        MPRUN_MODES[1]: _mprun(ctx, "pool", n),
    }
    results = interleave(variants, ctx.repeat)
    rows: dict[str, tuple[Row, Row]] = {}
    for label, numbers in results.items():
        whole = section.row(f"{label}: end to end", size, "s")
        whole.values = column(numbers, "seconds")
        work_label = "job seconds (--json)" if label.startswith("mprun") else "work (in-script)"
        work = Row(NAME, f"{label}: {work_label}", size, "s", column(numbers, "work"))
        rows[label] = (whole, work)
    serial_whole, serial_work = rows[SERIAL]
    for whole, work in rows.values():
        if whole is not serial_whole:
            whole.reference, work.reference = serial_whole, serial_work
            whole.note = f"speedup {_speedup(serial_whole, whole)}"
            work.note = f"speedup {_speedup(serial_work, work)}"
        section.rows.append(work)
    return rows


def run(ctx: Context) -> Section:
    section = Section(NAME)
    seed = _measure(ctx, ctx.sizes.cube, section)
    # Ten times the seed's range: start-up weighs a tenth as much.
    large = _measure(ctx, ctx.sizes.cube * 10, section)
    for label in MPRUN_MODES:
        notes = []
        for rows, name in ((seed, "seed's range"), (large, "10x range")):
            (serial_whole, serial_work), (whole, work) = rows[SERIAL], rows[label]
            bare_whole, bare_work = rows[SEED_PROCESSES]
            notes.append(f"{name}: end to end {_speedup(serial_whole, whole)}, "
                         f"work only {_speedup(serial_work, work)} (seed's multicore() in the "
                         f"same run: {_speedup(serial_whole, bare_whole)}, "
                         f"{_speedup(serial_work, bare_work)})")
        section.targets.append(Target(
            f"cpu: speedup of {label} over serial, end to end, seed's range",
            ratio(seed[SERIAL][0], seed[label][0]), ">= 1.9", "; ".join(notes)))
    return section


def _speedup(serial: Row, other: Row) -> str:
    value = ratio(serial, other)
    return "-" if value is None else f"{value:.2f}x"
