"""mprun: run Python functions in parallel as a YAML config describes.

The public API::

    runner.load_config(path) -> Config      # validate; raises ConfigError
    runner.Config.validate(data) -> Config  # a config built in Python, schema-checked
    runner.run(path_or_config, **options)   # -> RunReport
    runner.get_logger()                      # a structlog logger bound to job and task

Attributes load on first use: ``import runner`` is cheap, because every
worker process imports it (see ``runner.cli``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

__all__ = [
    # loading
    "Config",
    "ConfigError",
    # errors
    "Interrupted",
    "MprunError",
    "Observer",
    "RunLocked",
    "RunReport",
    "__version__",
    "get_logger",
    "load_config",
    # running
    "run",
]

if TYPE_CHECKING:
    from runner.config import Config
    from runner.errors import ConfigError, Interrupted, MprunError, RunLocked
    from runner.loader import load_config
    from runner.log import get_logger
    from runner.observe import Observer
    from runner.report import RunReport
    from runner.session import run

_LAZY = {
    "Config": "runner.config",
    "ConfigError": "runner.errors",
    "Interrupted": "runner.errors",
    "MprunError": "runner.errors",
    "Observer": "runner.observe",
    "RunLocked": "runner.errors",
    "RunReport": "runner.report",
    "get_logger": "runner.log",
    "load_config": "runner.loader",
    "run": "runner.session",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'runner' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value
