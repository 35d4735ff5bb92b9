"""The working directory: read once, before anything runs, and then never again.

A task may ``os.chdir()`` (into ``/``, say): the log folder is made absolute
before the first job module is imported, so where the run's files go does not
move with it. A working directory that was deleted makes ``os.getcwd()`` fail,
in mprun and in the standard library (spawn and the fork server call it to
start each process): when every path given is absolute, mprun moves to the
config's folder, which exists, before anything else; a relative path cannot be
resolved without it, and is a usage error.

Stdlib only: the CLI imports it before any config is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from runner.errors import UsageError

__all__ = ["ensure_cwd", "log_root", "settle"]


def settle(source: str | os.PathLike[str] | None,
           log_dir: str | os.PathLike[str] | None) -> Path | None:
    """Before anything is read or run: a working directory that exists, given the config
    ``source`` and ``log_dir`` (:func:`ensure_cwd`), and ``log_dir`` made absolute
    (:func:`log_root`)."""
    ensure_cwd([path for path in (source, log_dir) if path is not None])
    return log_root(log_dir)


def ensure_cwd(paths: Iterable[str | os.PathLike[str]]) -> None:
    """Make sure the working directory exists, given the paths the run was given.

    If it was deleted and every one of ``paths`` is absolute, move to the folder of
    the first (the config's), or to ``/``; if one is relative, raise UsageError.
    """
    try:
        os.getcwd()
        return
    except FileNotFoundError:
        pass
    given = [os.fspath(path) for path in paths]
    relative = [path for path in given if not os.path.isabs(path)]
    if relative:
        raise UsageError(f"the working directory no longer exists, so {relative[0]!r} "
                         "cannot be found: give absolute paths, or run from a folder "
                         "that exists")
    for folder in [*(os.path.dirname(path) for path in given[:1]), "/"]:
        try:
            os.chdir(folder)
            return
        except OSError:
            continue


def log_root(log_dir: str | os.PathLike[str] | None) -> Path | None:
    """``log_dir`` made absolute (None stays None: a run that writes no files).

    An empty path is a UsageError: it would silently mean the working directory.
    """
    if log_dir is None:
        return None
    if not os.fspath(log_dir):
        raise UsageError("the log folder is empty (--log-dir \"\" or MPRUN_LOG_DIR=\"\"): "
                         "give a folder, such as logs")
    return Path(os.path.abspath(log_dir))
