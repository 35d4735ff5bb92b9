"""Map-file memory: the runner's peak RSS over a map file of 5,000,000 lines, against a script.

The file is ``0\\n1\\n...``: one int a line, read as text. mprun runs
``bench/configs/map_file.yaml`` (``builtins:len`` over ``map: {file: ...}``, pool mode,
2 workers, every result kept, reduced by ``sum``); the peer is the bare script the
issue names, ``python -m bench.peers map-file``: the file read into a list of lines and
``multiprocessing.Pool(2).map(len, lines)``, every result kept. Both under forkserver.
Reported: the peak RSS of the command's own process (the runner; the script's main
process), sampled with psutil, and its wall time. The sum of the lengths is checked.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.measure import MIB, Completed
from bench.report import Row, Section, Target, ratio
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

NAME = "map-file"
METHOD = "forkserver"


def _numbers(done: Completed) -> Numbers:
    return {"seconds": done.seconds, "rss": done.peak_root_rss / MIB}


def _write(folder: Path, lines: int) -> tuple[Path, int]:
    """The map file, and the sum of its lines' lengths."""
    path = folder / "items.txt"
    with path.open("w") as stream:
        for start in range(0, lines, 100_000):
            stream.write("".join(f"{i}\n" for i in range(start, min(start + 100_000, lines))))
    return path, sum(len(str(i)) for i in range(lines))


def run(ctx: Context) -> Section:
    lines = ctx.sizes.map_lines
    size = f"{lines:,} lines"
    section = Section(NAME)
    if not installed("psutil"):
        section.skip("all variants", size, "psutil is not installed")
        return section
    with tempfile.TemporaryDirectory(prefix="mprun-bench-map-") as folder:
        path, want = _write(Path(folder), lines)

        def with_mprun() -> Numbers:
            done, summary = mprun(ctx, "map_file.yaml", {"MAP_FILE": str(path)}, sampled=True,
                                  start_method=METHOD)
            expect("mprun's sum of lengths", summary["jobs"][0]["reduced"], want)
            return _numbers(done)

        def with_pool() -> Numbers:
            done, answer = peer(ctx, "map-file", path, sampled=True, start_method=METHOD)
            expect("Pool.map's sum of lengths", answer, want)
            return _numbers(done)

        variants: dict[str, Measure] = {"Pool.map of the lines read into a list": with_pool,
                                        "mprun pool, map: {file}": with_mprun}
        results = interleave(variants, ctx.repeat)
    rows: dict[str, Row] = {}
    for key, what, unit in (("rss", "peak RSS of the runner / script", "MiB"),
                            ("seconds", "wall time", "s")):
        reference = None
        for variant, numbers in results.items():
            row = section.row(f"{variant}: {what}", size, unit, reference=reference)
            row.values = [n[key] for n in numbers]
            reference = reference or row
            rows[f"{variant} {key}"] = row
    section.targets.append(Target(
        "map-file: mprun runner peak RSS / Pool.map script peak RSS", ratio(
            rows["mprun pool, map: {file} rss"],
            rows["Pool.map of the lines read into a list rss"]), "<= 1.5"))
    return section
