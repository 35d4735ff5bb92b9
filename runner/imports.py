"""``"package.module:qualname"`` -> callable, in the runner and in every worker.

Stdlib only: workers import this module before anything else.
"""

from __future__ import annotations

import importlib
import os
import sys
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from runner.errors import Interrupted

__all__ = ["add_paths", "describe_import_error", "forget", "resolve", "search_paths"]

_cache: dict[str, Callable[..., Any]] = {}


def add_paths(paths: Iterable[str]) -> None:
    """Put ``paths`` at the front of ``sys.path`` (each once), keeping their order."""
    for path in reversed([os.path.abspath(p) for p in paths]):
        if path in sys.path:
            sys.path.remove(path)
        sys.path.insert(0, path)


def search_paths(folder: str) -> list[str]:
    """Where a config's functions are imported from: its folder, then the working one."""
    return [folder, os.getcwd()]


def resolve(ref: str) -> Callable[..., Any]:
    """Import ``module:qualname`` and return the object; cached per process."""
    try:
        return _cache[ref]
    except KeyError:
        pass
    module_name, _, qualname = ref.partition(":")
    obj: Any = importlib.import_module(module_name)
    for part in qualname.split("."):
        obj = getattr(obj, part)
    if not callable(obj):
        raise TypeError(f"{ref} is not callable (it is a {type(obj).__name__})")
    _cache[ref] = obj
    return obj  # type: ignore[no-any-return]


def forget(tops: Iterable[str]) -> None:
    """Forget the functions resolved from ``tops`` and their submodules (their files were
    replaced: a long-lived dask worker's upload)."""
    prefixes = tuple(tops)
    for ref in [ref for ref in _cache
                if ref.partition(":")[0].partition(".")[0] in prefixes]:
        del _cache[ref]


def describe_import_error(ref: str) -> str | None:
    """Why ``ref`` cannot be used as a function, or None when it can."""
    module_name, _, qualname = ref.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            return f"cannot import {module_name!r}: no module named {exc.name!r} " \
                   "(the config's folder and the working directory are on the path)"
        return f"importing {module_name!r} failed: {_last_frame(exc)}"
    except Interrupted:  # mprun was signalled while the module loaded: not the module's fault
        raise
    except BaseException as exc:
        return f"importing {module_name!r} failed: {_last_frame(exc)}"
    obj: Any = module
    for part in qualname.split("."):
        if not hasattr(obj, part):
            return f"module {module_name!r} has no attribute {qualname!r}"
        obj = getattr(obj, part)
    if not callable(obj):
        return f"{ref} is not callable (it is a {type(obj).__name__})"
    _cache[ref] = obj
    return None


def _last_frame(exc: BaseException) -> str:
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" ({frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    if isinstance(exc, SyntaxError) and exc.filename:
        where = f" ({exc.filename}:{exc.lineno})"
    return f"{type(exc).__name__}: {exc}{where}"
