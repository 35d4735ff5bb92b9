"""Worker memory: one idle worker of mprun's pool against one of ``multiprocessing.Pool``.

The task (``bench.tasks.report_pid_and_sleep``) writes its worker's pid to a
file and sleeps; meanwhile this process samples that worker with psutil: its
peak RSS, and its USS (the memory no other process shares) half-way. mprun
runs ``bench/configs/worker_rss.yaml`` (pool mode, 1 worker); the peer is
``Pool(1).apply`` of the same task. Both under forkserver (mprun's default:
its fork server preloads the worker's modules) and both under fork. The pid
the task returns is checked against the pid sampled.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.measure import MIB, WorkerMemory, run_sampling_worker
from bench.report import Row, Section, Target, ratio, times
from bench.workloads.common import (
    Context,
    Measure,
    Numbers,
    expect,
    installed,
    interleave,
    log_dir,
    mprun_argv,
    peer_answer,
    peer_argv,
    read_summary,
)

NAME = "worker-memory"


def _numbers(memory: WorkerMemory) -> Numbers:
    return {"rss": memory.peak_rss / MIB, "uss": memory.uss / MIB}


def _mprun(ctx: Context, method: str) -> Measure:
    seconds = ctx.sizes.idle_seconds

    def measure() -> Numbers:
        with tempfile.TemporaryDirectory() as scratch, log_dir() as logs:
            pidfile = Path(scratch) / "pid"
            argv = mprun_argv("worker_rss.yaml", logs, start_method=method)
            env = {"PIDFILE": str(pidfile), "SECONDS": str(seconds)}
            done, memory = run_sampling_worker(argv, pidfile, seconds, env=env,
                                               timeout=ctx.timeout)
            done.check()
            summary = read_summary(logs, "worker_rss.yaml")
        expect("mprun's idle task", summary["jobs"][0]["results"], [memory.pid])
        return _numbers(memory)
    return measure


def _pool(ctx: Context, method: str) -> Measure:
    seconds = ctx.sizes.idle_seconds

    def measure() -> Numbers:
        with tempfile.TemporaryDirectory() as scratch:
            pidfile = Path(scratch) / "pid"
            argv = peer_argv("idle-worker", pidfile, seconds=seconds, start_method=method)
            done, memory = run_sampling_worker(argv, pidfile, seconds, timeout=ctx.timeout)
        expect("Pool's idle task", peer_answer(done.check()), memory.pid)
        return _numbers(memory)
    return measure


def run(ctx: Context) -> Section:
    if not installed("psutil"):
        section = Section(NAME)
        section.skip("all variants", "1 idle worker", "psutil is not installed")
        return section
    variants: dict[str, Measure] = {}
    for method in ("forkserver", "fork"):
        variants[f"Pool worker ({method})"] = _pool(ctx, method)
        variants[f"mprun pool worker ({method})"] = _mprun(ctx, method)
    results = interleave(variants, ctx.repeat)
    section = Section(NAME)
    rows: dict[tuple[str, str], Row] = {}
    for key, what in (("rss", "peak RSS"), ("uss", "USS")):
        for variant, numbers in results.items():
            method = variant.rpartition("(")[2].rstrip(")")
            reference = rows.get((key, method))
            row = section.row(f"{variant}: {what}", "1 idle worker", "MiB", reference=reference)
            row.values = [n[key] for n in numbers]
            rows.setdefault((key, method), row)
    fs_rss = ratio(rows_of(section, "mprun pool worker (forkserver): peak RSS"),
                   rows[("rss", "forkserver")])
    fork_rss = ratio(rows_of(section, "mprun pool worker (fork): peak RSS"),
                     rows[("rss", "fork")])
    fs_uss = ratio(rows_of(section, "mprun pool worker (forkserver): USS"),
                   rows[("uss", "forkserver")])
    section.targets.append(Target(
        "worker-memory: mprun pool worker RSS / Pool worker RSS (forkserver)", fs_rss, "<= 1.5",
        f"both fork: {times(fork_rss)}; USS (forkserver): {times(fs_uss)}"))
    return section


def rows_of(section: Section, variant: str) -> Row:
    return next(row for row in section.rows if row.variant == variant)

