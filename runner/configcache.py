"""The validated-config cache: a config checked once is not parsed and validated again.

Data flow::

    load_config(path) ── the file's text ──> key() ──> lookup() ── hit ──> the Config as
                                                                  it was validated
                                           └─ miss ──> parse, validate ──> store()

Parsing the YAML and building and running pydantic's validators is most of what
``mprun CONFIG`` costs before its first task (see README "Start-up"); a config run
from cron or CI is the same file every time. A hit skips both: the models are
built with ``defer_build`` (``runner.config``), so a config taken from the cache
never builds a validator at all.

Never stale. The key is a hash of everything the validated config depends on:

- the config's text, its path as given and as an absolute path;
- the Python version;
- the size and mtime of every source file of mprun itself and of pydantic,
  pydantic-core and PyYAML, with their paths (another virtualenv, a changed install
  or an edited checkout is a miss);
- the registered modes (``runner.executors.register``).

An entry also holds, for each ``${VAR}`` the config read, a hash of its value
then (or that it was unset); a different value now is a miss. What depends on
the world outside the config is checked again on every load, hit or not: that
map files exist and are regular files, and that each job's function imports.

Never written: a config with a problem, and a config in which a secret-named
``${VAR}`` was expanded (``runner.redact``), so that no secret is kept on disk.

Where: ``$MPRUN_CACHE_DIR``, else ``$XDG_CACHE_HOME/mprun``, else
``~/.cache/mprun``; ``MPRUN_CACHE_DIR=off`` turns it off. Entries are pickles
(the validated ``Config``), written atomically with mode 0600 in a 0700 folder
and read only from there; an unreadable entry is a miss and is removed. At most
:data:`MAX_ENTRIES` are kept, the least recently used removed first.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import os
import pickle
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = ["MAX_ENTRIES", "Entry", "folder", "key", "lookup", "store"]

FORMAT = 1
MAX_ENTRIES = 256
# Whose source files are fingerprinted: what validation runs.
_PACKAGES = ("runner", "pydantic", "pydantic_core", "yaml")
_fingerprint: str | None = None  # per process: the installed code does not change under us


@dataclass
class Entry:
    """A validated config, with what it was validated from."""

    config: Any  # runner.config.Config (not imported here: a miss needs no pickle)
    data: Any  # the YAML's data, defaults merged, as runner.checks reads it
    environ: dict[str, str | None]  # ${VAR} -> hash of its value then (None: unset)


def folder() -> Path | None:
    """The cache's folder; None when it is turned off."""
    chosen = os.environ.get("MPRUN_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mprun"


def key(path: str, text: str) -> str:
    """The cache key of the config at ``path`` (as given) whose text is ``text``."""
    from runner.executors import EXECUTORS

    digest = hashlib.sha256()
    modes = sorted(f"{mode}={_named(target)}" for mode, target in EXECUTORS.items())
    for part in (str(FORMAT), path, os.path.abspath(path), sys.version,
                 _code_fingerprint(), "\0".join(modes), text):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0\1")
    return digest.hexdigest()


def lookup(cache_key: str) -> Entry | None:
    """The entry stored under ``cache_key``, if any and if the ``${VAR}``s it read still
    hold the values they had."""
    where = folder()
    if where is None:
        return None
    file = where / f"{cache_key}.pickle"
    try:
        with open(file, "rb") as handle:
            entry = pickle.load(handle)
    except FileNotFoundError:
        return None
    except Exception:  # torn, or from an older mprun: of no use
        with contextlib.suppress(OSError):
            file.unlink()
        return None
    if not isinstance(entry, Entry) or entry.environ != environ_hashes(
            {name: os.environ.get(name) for name in entry.environ}, cache_key):
        return None
    with contextlib.suppress(OSError):
        os.utime(file)  # recently used: pruned last
    return entry


def store(cache_key: str, config: Any, data: Any, environ: dict[str, str | None]) -> None:
    """Keep ``config`` under ``cache_key``; a cache that cannot be written is skipped."""
    where = folder()
    if where is None:
        return
    entry = Entry(config, data, environ_hashes(environ, cache_key))
    try:
        payload = pickle.dumps(entry, protocol=pickle.HIGHEST_PROTOCOL)
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        descriptor, temporary = tempfile.mkstemp(dir=where, prefix=".entry-")
        try:
            with os.fdopen(descriptor, "wb") as handle:
                handle.write(payload)
            os.replace(temporary, where / f"{cache_key}.pickle")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _prune(where)
    except Exception:  # unpicklable, read-only home, full disk: the cache is only a shortcut
        return


def environ_hashes(environ: dict[str, str | None], salt: str) -> dict[str, str | None]:
    """Each value hashed (salted with the key), so that the entry holds no value itself."""
    return {name: None if value is None
            else hashlib.sha256(f"{salt}\0{value}".encode("utf-8", "surrogatepass")).hexdigest()
            for name, value in environ.items()}


def _named(target: Any) -> str:
    """A registered executor as "module:class", imported yet or not."""
    if isinstance(target, str):
        return target
    return f"{target.__module__}:{target.__qualname__}"


def _prune(where: Path) -> None:
    entries = sorted(where.glob("*.pickle"), key=_mtime)
    for stale in entries[:max(0, len(entries) - MAX_ENTRIES)]:
        with contextlib.suppress(OSError):
            stale.unlink()


def _mtime(file: Path) -> float:
    try:
        return file.stat().st_mtime
    except OSError:
        return 0.0


def _code_fingerprint() -> str:
    """Size and mtime of every source file of the packages validation runs."""
    global _fingerprint
    if _fingerprint is None:
        digest = hashlib.sha256()
        for package in _PACKAGES:
            spec = importlib.util.find_spec(package)
            for location in (spec.submodule_search_locations or []) if spec else []:
                for root, dirs, files in os.walk(location):
                    dirs[:] = sorted(d for d in dirs if d != "__pycache__")
                    for name in sorted(files):
                        if name.endswith((".py", ".so", ".pyd")):
                            stat = os.stat(os.path.join(root, name))
                            digest.update(f"{root}/{name}:{stat.st_size}:{stat.st_mtime_ns}\n"
                                          .encode("utf-8", "surrogatepass"))
        _fingerprint = digest.hexdigest()
    return _fingerprint
