"""Timeout: 100,000 CSV rows, a trivial task, pool mode, with ``timeout: 10`` and without.

Measured, each as a fresh process timed from outside, interleaved: mprun on
``bench/configs/rows.yaml`` (2 pool workers, ``map: {file: rows.csv}``, ``reduce:
sum``, ``--json``, which also gives the job's own seconds) with ``ROWS_TIMEOUT=10`` and
with no timeout. A timeout is enforced per row inside each chunk (each worker
names the row it runs in a shared slot, ``runner.slots``), so the chunks are the
same size either way; the target is the whole run with a timeout against the
same run without. The CSV file is written once per bench run, untimed; every
run's sum of row widths is checked.
"""

from __future__ import annotations

import csv
import json
import tempfile
from pathlib import Path

from bench.report import Section, Target, ratio, times
from bench.workloads.common import Context, Measure, Numbers, column, expect, interleave, mprun

NAME = "timeout"
TIMEOUT = 10
COLUMNS = ("id", "name", "value")
VARIANTS = {"mprun pool, no timeout": None, f"mprun pool, timeout: {TIMEOUT}": TIMEOUT}


def _write_rows(path: Path, rows: int) -> None:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        writer.writerows((i, f"name{i}", i * 0.5) for i in range(rows))


def _mprun(ctx: Context, rows: Path, count: int, timeout: int | None) -> Measure:
    # Empty is unset for the config: no timeout, whatever the caller's environment says.
    env = {"ROWS": str(rows), "ROWS_TIMEOUT": "" if timeout is None else str(timeout)}

    def measure() -> Numbers:
        done, _ = mprun(ctx, "rows.yaml", env, output="--json")
        job = json.loads(done.stdout)["jobs"][0]
        expect(f"mprun rows.yaml (timeout {timeout})", job["reduced"], count * len(COLUMNS))
        return {"seconds": done.seconds, "job": float(job["seconds"])}
    return measure


def run(ctx: Context) -> Section:
    count = ctx.sizes.rows
    section = Section(NAME)
    with tempfile.TemporaryDirectory(prefix="mprun-bench-rows-") as folder:
        rows = Path(folder) / "rows.csv"
        _write_rows(rows, count)
        variants = {name: _mprun(ctx, rows, count, timeout)
                    for name, timeout in VARIANTS.items()}
        results = interleave(variants, ctx.repeat)
    size = f"{count:,} CSV rows"
    base_name, timed_name = VARIANTS
    base = section.row(base_name, size, "s", note="whole process")
    base.values = column(results[base_name], "seconds")
    timed = section.row(timed_name, size, "s", reference=base, note="whole process")
    timed.values = column(results[timed_name], "seconds")
    base_job = section.row(f"{base_name}: job seconds", size, "s")
    base_job.values = column(results[base_name], "job")
    timed_job = section.row(f"{timed_name}: job seconds", size, "s", reference=base_job)
    timed_job.values = column(results[timed_name], "job")
    job_ratio = times(ratio(timed_job, base_job))
    section.targets.append(Target(
        f"timeout: {count:,} CSV rows in pool mode, timeout: {TIMEOUT} / no timeout",
        ratio(timed, base), "<= 1.5", note=f"whole process; job seconds alone: {job_ratio}"))
    return section
