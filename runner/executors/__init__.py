"""Executors: one small interface (``base.Executor``), one module per mode.

Modes map to their executor class here, and nowhere else: the config's list
of valid modes, the JSON Schema and the scheduler all read this registry. A
new mode is one more module and one more line below; a test or a
plugin can :func:`register` one at run time. A mode's module is imported only
when its class is first asked for.
"""

from __future__ import annotations

import importlib

from runner.executors.base import Backend, Backends, Executor, ExecutorSetup, RunScope

__all__ = ["DEFAULT_MODE", "EXECUTORS", "Backend", "Backends", "Executor", "ExecutorSetup",
           "RunScope", "executor_for", "modes", "register", "registry_key"]

# mode -> "module:class" (imported on first use) or the class itself.
EXECUTORS: dict[str, str | type[Executor]] = {
    "serial": "runner.executors.serial:SerialExecutor",
    "thread": "runner.executors.thread:ThreadExecutor",
    "process": "runner.executors.process:ProcessExecutor",
    "pool": "runner.executors.pool:PoolExecutor",
    "dask": "runner.executors.dask:DaskExecutor",
}

# A job's mode when neither it nor ``defaults`` names one.
DEFAULT_MODE = "pool"
_BUILT_IN = dict(EXECUTORS)


def modes() -> tuple[str, ...]:
    """Every mode a config may name, in the registry's order."""
    return tuple(EXECUTORS)


def registry_key() -> str:
    """The registry as text, "built-in" while it is (a class counts as its "module:name")."""
    named = {mode: entry if isinstance(entry, str) else f"{entry.__module__}:{entry.__qualname__}"
             for mode, entry in EXECUTORS.items()}
    return "built-in" if named == _BUILT_IN else "\0".join(f"{m}={t}" for m, t in named.items())


def register(mode: str, executor: str | type[Executor]) -> None:
    """Make ``mode`` valid in configs, run by ``executor`` (a class or "module:class")."""
    EXECUTORS[mode] = executor


def executor_for(mode: str) -> type[Executor]:
    """The executor class that runs ``mode``."""
    entry = EXECUTORS[mode]
    if isinstance(entry, str):
        module_name, _, class_name = entry.partition(":")
        entry = getattr(importlib.import_module(module_name), class_name)
        assert isinstance(entry, type) and issubclass(entry, Executor), entry
        EXECUTORS[mode] = entry
    return entry
