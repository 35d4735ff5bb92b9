"""The multiprocessing context a run uses, and an early, preloaded forkserver.

Under forkserver and spawn every worker starts from a fresh interpreter (spawn)
or from the fork server (forkserver). The fork server is started while the
runner is still checking the config, with the runner's worker modules and the
jobs' modules preloaded, so each worker forks from a process that already
imported them instead of importing them again. The CLI, knowing the config from
its cache, starts it before loading the config, forked from itself where it can
be (``runner.forkserver``); otherwise it is multiprocessing's, started in a thread.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import sys
import threading
from typing import Any, Literal, get_args

__all__ = ["START_METHODS", "StartMethod", "default_start_method", "get_context",
           "warm_forkserver"]

# The one list of start methods: the config's start_method and --start-method take these.
StartMethod = Literal["fork", "spawn", "forkserver"]
START_METHODS: tuple[str, ...] = get_args(StartMethod)
# What workers import before their first task (see runner.worker).
WORKER_MODULES = ["runner.worker", "runner.work", "runner.log", "structlog", "orjson"]


def default_start_method() -> str:
    """Python 3.14's platform default: forkserver on Linux and BSD, spawn on macOS and Windows."""
    if sys.platform in ("darwin", "win32"):
        return "spawn"
    return "forkserver"


def get_context(method: str | None) -> Any:
    return multiprocessing.get_context(method or default_start_method())


# The thread starting the fork server, until a run has waited for it: the CLI may start
# it before the config is loaded (runner.configcache's hints), the run then takes it.
_starting: threading.Thread | None = None


def warm_forkserver(context: Any, modules: list[str]) -> threading.Thread | None:
    """Start the fork server in the background, preloading ``modules``; None if not forkserver.

    The fork server is one per runner process: a later run in the same process
    (the library API, tests) reuses it, and its workers import what it lacks. One
    already starting (the CLI's early start) is the one returned.
    """
    global _starting
    if context.get_start_method() != "forkserver":
        return None
    if _starting is not None:
        thread, _starting = _starting, None
        return thread
    from multiprocessing import forkserver

    context.set_forkserver_preload([*WORKER_MODULES, *modules])
    thread = threading.Thread(target=forkserver.ensure_running, name="mprun-forkserver",
                              daemon=True)
    thread.start()
    return thread


def warm_forkserver_early(method: str | None, modules: list[str], paths: list[str], *,
                          fork: bool) -> None:
    """Start the fork server now, before the config is loaded, when the run will use it
    (``method``: the start method it will have); the run's :func:`warm_forkserver` then
    takes this start instead of making its own. With ``fork`` (the ``mprun`` command's
    own process) it is forked from this process where it can be (``runner.forkserver``),
    the jobs' ``modules`` imported from ``paths`` first."""
    global _starting
    if _starting is not None or (method or default_start_method()) != "forkserver":
        return
    if fork:
        from runner import forkserver

        with contextlib.suppress(OSError):  # no fork to be had: the stock server
            if forkserver.start(WORKER_MODULES, modules, paths):
                return
    _starting = warm_forkserver(get_context(method), modules)
