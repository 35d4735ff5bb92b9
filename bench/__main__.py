"""``python -m bench``: run the workloads, print the markdown tables, write bench/results.md.

Every workload (``bench.workloads``) runs its variants side by side,
interleaved, ``--repeat`` times, as fresh processes timed from outside, and
checks every answer. The tables show medians and ratios of medians; a wrong
answer or a failed command marks its workload with ✗ and makes the exit
code 1. Timings are reported, never asserted.

``--smoke`` runs every workload at a tiny size (seconds in all) only to check
that everything runs and answers correctly; it writes a file only when
``--out`` is given.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench.measure import ROOT, BenchError
from bench.report import Section, failed, results_table, targets_table
from bench.workloads import WORKLOADS
from bench.workloads.common import SMOKE, Context, Sizes

DEFAULT_OUT = ROOT / "bench" / "results.md"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--smoke", action="store_true",
                        help="tiny sizes: check answers and that everything runs")
    parser.add_argument("--repeat", type=int, help="runs of each variant (default 3, smoke 1)")
    parser.add_argument("--only", action="append", choices=list(WORKLOADS), metavar="NAME",
                        help=f"run just this workload (repeatable): {', '.join(WORKLOADS)}")
    parser.add_argument("--out", type=Path,
                        help="where to write the results (default bench/results.md; "
                             "--smoke writes nothing unless given)")
    return parser


def _git_commit() -> str:
    try:
        head = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, text=True,
                              capture_output=True, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, text=True,
                               capture_output=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    return f"{head} (with uncommitted changes)" if dirty else head


def _load() -> str:
    try:
        return " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "unknown"


def _run_one(name: str, ctx: Context) -> Section:
    print(f"bench: {name} ...", file=sys.stderr, flush=True)
    started = time.perf_counter()
    try:
        section = WORKLOADS[name](ctx)
    except BenchError as exc:
        section = Section(name, error=str(exc).splitlines()[0])
        print(f"bench: {name}: FAILED: {exc}", file=sys.stderr, flush=True)
    except Exception as exc:
        section = Section(name, error=f"{type(exc).__name__}: {exc}")
        print(f"bench: {name}: ERROR", file=sys.stderr, flush=True)
        traceback.print_exc()
    print(f"bench: {name} done in {time.perf_counter() - started:.1f} s",
          file=sys.stderr, flush=True)
    return section


def render(sections: list[Section], *, argv: list[str], ctx: Context, load_start: str,
           seconds: float) -> str:
    cores = os.cpu_count()
    return "\n".join([
        "# mprun benchmarks" + (" (smoke: tiny sizes, timings meaningless)" if ctx.smoke else ""),
        "",
        f"- date: {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        f"- machine: {cores} cores (os.cpu_count()), {platform.system()} {platform.machine()}; "
        f"load average (1/5/15 min) {load_start} at start, {_load()} at end",
        f"- Python {platform.python_version()} ({platform.python_implementation()}), "
        f"mprun git {_git_commit()}",
        f"- command: `{' '.join(['python -m bench', *argv])}` ({seconds:.0f} s in all)",
        f"- {ctx.repeat} run(s) of each variant, interleaved; best and median shown; "
        "ratio = best / best of the `vs` row. Every row's answer is checked (✓).",
        "",
        "## Results",
        "",
        results_table(sections),
        "",
        "## Targets",
        "",
        targets_table(sections, judge=not ctx.smoke),
        "",
        "## What each workload measures",
        "",
        *[f"- **{name}**: {_summary(name)}" for name in (s.name for s in sections)],
        "",
    ])


def _summary(name: str) -> str:
    """The first line of the workload's ``run`` docstring, else of its module's."""
    run = WORKLOADS[name]
    doc = run.__doc__ or sys.modules[run.__module__].__doc__ or ""
    return " ".join(doc.strip().split("\n\n")[0].split())


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    options = _parser().parse_args(args)
    repeat = options.repeat or (1 if options.smoke else 3)
    if repeat < 1:
        print("python -m bench: --repeat must be at least 1", file=sys.stderr)
        return 2
    ctx = Context(sizes=SMOKE if options.smoke else Sizes(), repeat=repeat, smoke=options.smoke,
                  only=tuple(options.only) if options.only else None)
    names = [name for name in WORKLOADS if not options.only or name in options.only]
    load_start = _load()
    started = time.perf_counter()
    sections = [_run_one(name, ctx) for name in names]
    text = render(sections, argv=args, ctx=ctx, load_start=load_start,
                  seconds=time.perf_counter() - started)
    print(text)
    out = options.out or (None if options.smoke else DEFAULT_OUT)
    if out is not None:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text)
        print(f"bench: wrote {out}", file=sys.stderr)
    problems = failed(sections)
    for problem in problems:
        print(f"bench: WRONG: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
