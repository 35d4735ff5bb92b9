"""One run of a config at a time: an OS file lock under the log directory.

A cron job that starts ``mprun nightly.yaml`` every hour must not start a
second run while the first is still going. ``runner.run()`` takes the lock
after the config is checked and before the run folder exists::

    LOG_DIR/.locks/<sha256 of the config's absolute path>.lock
        flock(LOCK_EX | LOCK_NB)  -> held: write {pid, run_id, config, started}
                                  -> busy: read who holds it; wait or raise RunLocked

The lock is ``flock(2)``: the kernel drops it when the holding process dies,
however it dies, so a lock left by a SIGKILLed run never blocks the next one.
The file itself stays (deleting a lock file races with the next run opening
it); it is emptied on release. Worker processes forked from the runner close
their copy of the descriptor, so a lingering worker never holds the lock.
Different configs have different files and never block each other.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import hashlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from runner.errors import RunLocked
from runner.runfiles import cannot_write

__all__ = ["LOCK_DIR", "RunLock", "acquire", "holder", "lock_path", "locked"]

LOCK_DIR = ".locks"
# How often a waiting run tries the lock again: sooner costs wake-ups, later
# costs up to this much delay after the holder finishes.
POLL_SECONDS = 0.1
# How long to re-read a busy lock's holder while it is still writing its details.
HOLDER_READ_SECONDS = 0.5

# Descriptors of locks this process holds, closed in forked children (see the docstring).
_held: set[int] = set()
_fork_hook_installed = False


def _close_in_child() -> None:
    for fd in _held:
        with contextlib.suppress(OSError):
            os.close(fd)
    _held.clear()


def lock_path(log_dir: str | os.PathLike[str], config: str | os.PathLike[str]) -> Path:
    """The lock file of ``config`` (a path, made absolute) under ``log_dir``."""
    key = os.path.realpath(config).encode("utf-8", "surrogateescape")
    return Path(log_dir) / LOCK_DIR / f"{hashlib.sha256(key).hexdigest()[:32]}.lock"


@dataclass
class RunLock:
    """A held lock; :meth:`release` it (``locked()`` does)."""

    path: Path
    fd: int | None
    waited: float = 0.0  # seconds spent waiting for another run to end

    def describe(self, run_id: str, config: str) -> None:
        """Write who holds the lock, for a run that finds it busy (RunFilesError if the
        disk is full)."""
        if self.fd is None:
            return
        info = {"pid": os.getpid(), "run_id": run_id, "config": config,
                "started": datetime.now(UTC).isoformat(timespec="seconds")}
        data = json.dumps(info).encode() + b"\n"
        try:
            os.ftruncate(self.fd, 0)
            if os.pwrite(self.fd, data, 0) != len(data):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        except OSError as exc:
            raise cannot_write(self.path, exc) from None

    def release(self) -> None:
        if self.fd is None:
            return
        fd, self.fd = self.fd, None
        _held.discard(fd)
        with contextlib.suppress(OSError):
            os.ftruncate(fd, 0)
        fcntl.flock(fd, fcntl.LOCK_UN)  # for every copy of the descriptor, forked ones too
        os.close(fd)


def holder(path: str | os.PathLike[str]) -> dict[str, Any]:
    """What the lock file says about its holder (empty if it says nothing readable)."""
    try:
        info = json.loads(Path(path).read_bytes() or b"{}")
    except (OSError, ValueError):
        return {}
    return info if isinstance(info, dict) else {}


def acquire(log_dir: str | os.PathLike[str], config: str | os.PathLike[str], *,
            wait: float = 0.0,
            on_wait: Callable[[dict[str, Any]], None] | None = None) -> RunLock:
    """Take ``config``'s lock, waiting up to ``wait`` seconds for another run to end.

    Raises :class:`RunLocked` (with the holder's pid and run id) if it is still held,
    and :class:`RunFilesError` if the lock's folder or file cannot be made.
    ``on_wait`` is called once, with the holder's details, before waiting.
    """
    global _fork_hook_installed
    path = lock_path(log_dir, config)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cannot_write(path.parent, exc) from None
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise cannot_write(path, exc) from None
    begun = time.monotonic()
    deadline = begun + max(wait, 0.0)
    told = False
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    info = _busy_holder(path)
                    raise RunLocked(str(config), pid=info.get("pid"), run_id=info.get("run_id"),
                                    started=info.get("started"), waited=wait) from None
                if not told and on_wait is not None:
                    on_wait(_busy_holder(path))
                told = True
                time.sleep(min(POLL_SECONDS, max(deadline - time.monotonic(), 0.0)))
    except BaseException:
        os.close(fd)
        raise
    if not _fork_hook_installed:
        os.register_at_fork(after_in_child=_close_in_child)
        _fork_hook_installed = True
    _held.add(fd)
    return RunLock(path, fd, time.monotonic() - begun if told else 0.0)


def _busy_holder(path: Path) -> dict[str, Any]:
    """The holder's details; a run that just took the lock may not have written them yet."""
    deadline = time.monotonic() + HOLDER_READ_SECONDS
    info = holder(path)
    while "pid" not in info and time.monotonic() < deadline:
        time.sleep(0.02)
        info = holder(path)
    return info


@contextlib.contextmanager
def locked(log_dir: str | os.PathLike[str] | None, config: str | os.PathLike[str] | None, *,
           wait: float = 0.0,
           on_wait: Callable[[dict[str, Any]], None] | None = None) -> Iterator[RunLock]:
    """Hold ``config``'s lock for the ``with`` block; no lock (a no-op ``RunLock``)
    without a log directory or without a config file to name."""
    if log_dir is None or config is None:
        yield RunLock(Path(os.devnull), None)
        return
    lock = acquire(log_dir, config, wait=wait, on_wait=on_wait)
    try:
        yield lock
    finally:
        lock.release()
