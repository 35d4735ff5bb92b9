"""The validated-config cache: a config checked once is not parsed and validated again.

Data flow::

    load_config(path) ── the file's text ──> key() ──> lookup() ── hit ──> the Config as
                                                                  it was validated
                                           └─ miss ──> parse, validate ──> store()

Parsing the YAML, and importing pydantic and building and running its
validators, is most of what ``mprun CONFIG`` costs before its first task (see
README "Start-up"); a config run from cron or CI is the same file every time. A
hit skips all three: the entry holds the config's records (``runner.config``,
plain dataclasses), so unpickling it imports neither pydantic nor the models.

Never stale. The key is a hash of everything the validated config depends on:

- the config's text, its path as given and as an absolute path;
- the Python version;
- the size and mtime of every source file of mprun itself and of pydantic,
  pydantic-core and PyYAML, with their paths (another virtualenv, a changed install
  or an edited checkout is a miss);
- the registered modes (``runner.executors.register``);
- the value now of each ``${VAR}`` the text names (a secret-named one: its name
  only), so that a config run with different values keeps an entry for each.

An entry also holds, for each ``${VAR}`` the config read, a hash of its value
then (or that it was unset); a different value now is a miss. What depends on
the world outside the config is checked again on every load, hit or not: that
map files exist and are regular files, and that each job's function imports.
With a plugin's mode registered (``modes_built_in``), a hit runs every check
again: what a plugin's executor says is not in the key.

Never written: a config with a problem, and a config in which a secret-named
``${VAR}`` was expanded (``runner.redact``), so that no secret is kept on disk.

Where: ``$MPRUN_CACHE_DIR``, else ``$XDG_CACHE_HOME/mprun``, else
``~/.cache/mprun``; ``MPRUN_CACHE_DIR=off`` turns it off. An entry is one line
of JSON (the ``${VAR}`` hashes, and :class:`Hints`: the config's start method
and its jobs' modules), then a pickle (the validated ``Config``'s records); written
atomically with mode 0600 in a 0700 folder and read only from there; an
unreadable entry is a miss and is removed. At most :data:`MAX_ENTRIES` are
kept, the least recently used removed first.

The hints are read without unpickling, so without pydantic: the CLI starts the
fork server from them before it imports the run's machinery (``runner.context.
warm_forkserver_early``), and the fork server's start-up overlaps the runner's.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import os
import pickle
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from runner.runfiles import write_whole

if TYPE_CHECKING:
    from runner.config import Config

__all__ = ["MAX_ENTRIES", "Hints", "folder", "hints", "hints_for", "key", "lookup",
           "modes_built_in", "store"]

FORMAT = 4
MAX_ENTRIES = 256
# Whose source files are fingerprinted: what validation runs.
_PACKAGES = ("runner", "pydantic", "pydantic_core", "yaml")
_fingerprint: str | None = None  # per process: the installed code does not change under us
# A ${VAR}'s name, as runner.yamlsource reads it.
_VAR_RE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")


@dataclass(frozen=True)
class Hints:
    """What a run of the config needs before its first worker, read without pydantic."""

    start_method: str | None  # the config's own (None: the default)
    modules: list[str]  # its jobs' functions' modules, for the fork server to preload
    # Whether a job runs in a mode whose workers come from the start method (a config of
    # serial, thread and dask jobs only starts no fork server).
    local_workers: bool = True


def folder() -> Path | None:
    """The cache's folder; None when it is turned off."""
    chosen = os.environ.get("MPRUN_CACHE_DIR")
    if chosen is not None:
        return None if chosen.strip().lower() in ("", "off", "0") else Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "mprun"


def key(path: str, text: str) -> str:
    """The cache key of the config at ``path`` (as given) whose text is ``text``, with
    the environment as it is now: the value of each ``${VAR}`` the text names is part
    of the key, so that one config run with different values (``N=1000`` one night,
    ``N=5000`` the next) keeps one entry per value instead of replacing one entry."""
    digest = hashlib.sha256()
    for part in (str(FORMAT), path, os.path.abspath(path), sys.version,
                 _code_fingerprint(), _modes(), text, *_environ_parts(text)):
        digest.update(part.encode("utf-8", "surrogatepass"))
        digest.update(b"\0\1")
    return digest.hexdigest()


def _environ_parts(text: str) -> list[str]:
    """Each ``${VAR}`` the text names (a superset of what it reads: ``$${VAR}`` and
    comments too) with its value now. A secret-named one adds its name only: such a
    config is never kept, and no key is made from a secret."""
    from runner.redact import is_secret

    parts = []
    for name in sorted(set(_VAR_RE.findall(text))):
        value = os.environ.get(name)
        shown = "-" if is_secret(name) else "!" if value is None else f"={value}"
        parts.append(f"{name}\0{shown}")
    return parts


def hints_for(path: str) -> Hints | None:
    """The hints for the config at ``path`` as it is now, if it is in the cache; read
    before anything heavy is imported, so nothing here may fail loudly: the config's
    load reports its problems."""
    from runner.files import MAX_CONFIG_BYTES, FileRefused, read_regular

    try:
        text = read_regular(Path(path), limit=MAX_CONFIG_BYTES).decode("utf-8-sig")
    except (FileRefused, OSError, UnicodeDecodeError):
        return None
    return hints(key(path, text))


def hints(cache_key: str) -> Hints | None:
    """The hints of the entry stored under ``cache_key``, if its ``${VAR}``s still hold
    the values they had; the entry's pickle is not read."""
    found = _open(cache_key)
    if found is None:
        return None
    handle, header = found
    handle.close()
    return Hints(header["start_method"], header["modules"], bool(header["local_workers"]))


def lookup(cache_key: str) -> Config | None:
    """The config stored under ``cache_key``, if any and if the ``${VAR}``s it read still
    hold the values they had."""
    found = _open(cache_key)
    if found is None:
        return None
    handle, _ = found
    try:
        with handle:
            entry = pickle.load(handle)
    except Exception:  # torn, or from an older mprun: of no use
        _discard(cache_key)
        return None
    from runner.config import Config

    if not isinstance(entry, Config):
        return None
    with contextlib.suppress(OSError):
        os.utime(handle.name)  # recently used: pruned last
    return entry


def _open(cache_key: str) -> tuple[Any, dict[str, Any]] | None:
    """The entry's file, open past its header, and the header; None when there is none,
    it is unreadable (then it is removed), or a ``${VAR}`` it read changed since."""
    where = folder()
    if where is None:
        return None
    try:
        handle = open(where / f"{cache_key}.entry", "rb")  # noqa: SIM115 -- returned open
    except OSError:
        return None
    try:
        header = json.loads(handle.readline())
        environ = header["environ"]
        now = environ_hashes({name: os.environ.get(name) for name in environ}, cache_key)
        if header["format"] != FORMAT or not isinstance(header["modules"], list):
            raise ValueError("not this mprun's entry")
    except Exception:  # torn, or from another mprun
        handle.close()
        _discard(cache_key)
        return None
    if environ != now:
        handle.close()
        return None
    return handle, header


def _discard(cache_key: str) -> None:
    where = folder()
    if where is not None:
        with contextlib.suppress(OSError):
            (where / f"{cache_key}.entry").unlink()


def store(cache_key: str, config: Config, environ: dict[str, str | None]) -> None:
    """Keep ``config`` under ``cache_key``; a cache that cannot be written is skipped."""
    where = folder()
    if where is None:
        return
    try:
        header = {"format": FORMAT, "environ": environ_hashes(environ, cache_key),
                  "start_method": config.start_method,
                  "modules": sorted({job.function.partition(":")[0]
                                     for job in config.jobs.values()}),
                  "local_workers": _local_workers(config)}
        payload = json.dumps(header).encode() + b"\n" + pickle.dumps(
            config, protocol=pickle.HIGHEST_PROTOCOL)
        where.mkdir(mode=0o700, parents=True, exist_ok=True)
        write_whole(where / f"{cache_key}.entry", payload, mode=0o600)
        _prune(where)
    except Exception:  # unpicklable, read-only home, full disk: the cache is only a shortcut
        return


def _local_workers(config: Config) -> bool:
    from runner.executors import executor_for

    return any(executor_for(mode).uses_start_method
               for job in config.jobs.values() for mode in job.modes())


def environ_hashes(environ: dict[str, str | None], salt: str) -> dict[str, str | None]:
    """Each value hashed (salted with the key), so that the entry holds no value itself."""
    return {name: None if value is None
            else hashlib.sha256(f"{salt}\0{value}".encode("utf-8", "surrogatepass")).hexdigest()
            for name, value in environ.items()}


def modes_built_in() -> bool:
    """Whether only mprun's own modes are registered: then what a mode's executor says
    (timeouts, pickling) is mprun's code, which the key covers; a plugin's class may
    say otherwise from one load to the next."""
    return _modes() == "built-in"


def _modes() -> str:
    """The registered modes, as they bear on validation. Before ``runner.executors`` is
    imported nobody can have registered one: the built-in table, which the code
    fingerprint covers (so the CLI's early look need not import the executors)."""
    executors = sys.modules.get("runner.executors")
    return "built-in" if executors is None else str(executors.registry_key())


def _prune(where: Path) -> None:
    entries = sorted(where.glob("*.entry"), key=_mtime)
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
