"""The run's own files (its logs, journal, summary): whole lines, or one clear error.

::

    AppendFile.write(lines) ── os.write ── took all of it ──> done     (the fast path)
                                 └─ took part (a full disk) ── the rest ── fails ─┐
                                    the file cut back to where this write began <─┘
                                    RunFilesError(path, reason)
    write_whole(path, data) ── a temporary file, renamed: the file is whole or absent
    RunFiles.failed(error)  ── the run's first failure: no more tasks start, exit 74

``write(2)`` on a nearly full disk takes what fits and says so by returning
fewer bytes than it was given. Unchecked, that is half a line; the next line,
written once space is free again, then puts it in the middle of the file,
where readers cannot skip it. Here a write that cannot be completed is cut
back, so a file always ends after its last whole line.

Stdlib only: every worker imports this module (through ``runner.log``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import threading
from collections.abc import Callable
from pathlib import Path

from runner.errors import RunFilesError

__all__ = ["AppendFile", "RunFiles", "cannot_write", "open_append", "write_whole"]


def cannot_write(path: str | os.PathLike[str], exc: OSError) -> RunFilesError:
    """``exc`` (from writing ``path``) as the run's error, in the system's words."""
    return RunFilesError(os.fspath(path), exc.strerror or str(exc))


def _write_all(fd: int, data: bytes | memoryview, written: int = 0) -> None:
    """Write what is left of ``data`` after ``written`` bytes; OSError if it does not fit."""
    view = memoryview(data).cast("B")
    while written < len(view):
        more = os.write(fd, view[written:])
        if more == 0:  # no error, no progress: the disk takes nothing more
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        written += more


class AppendFile:
    """A file that whole lines are appended to, one ``write`` per batch of lines.

    Raises :class:`RunFilesError` when it cannot be opened or a write cannot be
    completed; the file then ends as it was before that write.
    """

    def __init__(self, path: str) -> None:
        self.path = path
        try:
            self._fd: int | None = os.open(
                path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise cannot_write(path, exc) from None

    def write(self, data: bytes) -> None:
        if self._fd is None:
            raise ValueError(f"{self.path} is closed")
        try:
            written = os.write(self._fd, data)
        except OSError as exc:  # nothing was written: the file is whole
            raise cannot_write(self.path, exc) from None
        if written != len(data):
            self._finish(self._fd, data, written)

    def _finish(self, fd: int, data: bytes, written: int) -> None:
        """The rest of a short write; if it does not fit, the file is cut back to where
        this write began, unless another writer has appended after it since."""
        start = os.lseek(fd, 0, os.SEEK_CUR) - written
        try:
            _write_all(fd, data, written)
        except OSError as exc:
            with contextlib.suppress(OSError):
                if os.fstat(fd).st_size == os.lseek(fd, 0, os.SEEK_CUR):
                    os.ftruncate(fd, start)
            raise cannot_write(self.path, exc) from None

    def flush(self) -> None:
        """Nothing to do (writes are unbuffered); structlog calls it after each line."""

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


def open_append(path: str | None, on_error: Callable[[RunFilesError], None]
                ) -> AppendFile | None:
    """``path`` opened as an :class:`AppendFile`; None without a path, or after telling
    ``on_error`` why it cannot be opened."""
    if not path:
        return None
    try:
        return AppendFile(path)
    except RunFilesError as error:
        on_error(error)
        return None


def write_whole(path: Path, data: bytes | memoryview, *, mode: int = 0o666) -> None:
    """Write ``path`` whole or not at all (RunFilesError): a reader never finds it empty
    or cut short, even on a full disk. A memoryview is written as its bytes, uncopied.
    ``mode`` is the new file's (less the umask)."""
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        os.replace(temporary, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(temporary)
        raise cannot_write(path, exc) from None


class RunFiles:
    """The first failure to write one of the run's files, from any thread.

    The scheduler starts no task once there is one, and the run ends with exit 74,
    its report built from memory.
    """

    def __init__(self) -> None:
        self.error: RunFilesError | None = None
        self._lock = threading.Lock()

    def failed(self, error: RunFilesError) -> None:
        with self._lock:
            if self.error is None:
                self.error = error

    def check(self) -> None:
        """Raise the failure, if there was one."""
        if self.error is not None:
            raise self.error
