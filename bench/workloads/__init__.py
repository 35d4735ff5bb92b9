"""The workloads ``python -m bench`` runs, in order; each module's docstring says what it measures.

Each is a ``run(ctx) -> Section`` function: it measures its variants, checks
every answer (raising ``BenchError`` on a wrong one) and returns its rows and
targets.
"""

from __future__ import annotations

from collections.abc import Callable

from bench.report import Section
from bench.workloads import (
    cpu,
    dask_mode,
    io,
    map_file,
    shared_data,
    startup,
    timeout,
    tiny,
    worker_memory,
)
from bench.workloads.common import Context

WORKLOADS: dict[str, Callable[[Context], Section]] = {
    tiny.NAME: tiny.run,
    cpu.NAME: cpu.run,
    startup.NAME: startup.run,
    io.NAME: io.run,
    shared_data.NAME: shared_data.run,
    worker_memory.NAME: worker_memory.run,
    timeout.NAME: timeout.run,
    map_file.NAME: map_file.run,
    **dask_mode.WORKLOADS,  # dask-tiny, dask-items, dask-primitives
}

__all__ = ["WORKLOADS"]
