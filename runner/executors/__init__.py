"""Executors: one small interface (``base.Executor``), one module per mode.

Modes map to their executor here; a mode's module is imported only when a job
uses it, so ``mprun validate`` never loads the process machinery.
"""

from __future__ import annotations

import importlib

from runner.executors.base import Executor, ExecutorSetup

__all__ = ["EXECUTORS", "Executor", "ExecutorSetup", "executor_for"]

# mode -> "module:class"; a new mode (e.g. dask) is one more entry and one more module.
EXECUTORS: dict[str, str] = {
    "serial": "runner.executors.serial:SerialExecutor",
    "thread": "runner.executors.thread:ThreadExecutor",
    "process": "runner.executors.process:ProcessExecutor",
    "pool": "runner.executors.pool:PoolExecutor",
}


def executor_for(mode: str) -> type[Executor]:
    """The executor class that runs ``mode``."""
    module_name, _, class_name = EXECUTORS[mode].partition(":")
    cls: type[Executor] = getattr(importlib.import_module(module_name), class_name)
    return cls
