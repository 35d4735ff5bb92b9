"""Reading the files a config names (the config itself, map files): regular files only.

A FIFO, a device or a socket is refused before it is opened: ``/dev/zero``
would be read until the machine runs out of memory, a FIFO with no writer
blocks its reader for good, and opening some devices does something by itself.
The file is then opened with ``O_NONBLOCK`` and checked again on the open
descriptor, so that a path swapped for a FIFO in between cannot block either;
a ``limit`` is checked there too, before anything is read.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

__all__ = ["FileRefused", "check_regular", "open_regular", "read_regular"]

_KINDS = ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISCHR, "a character device"),
          (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"),
          (stat.S_ISDIR, "a directory"))


class FileRefused(Exception):
    """Raised when a named file is missing, not a regular file, too large, or unreadable.

    ``str()`` is the reason, without the path (``no such file``, ``not a regular
    file (it is a FIFO)``); ``size`` is set when the file was too large.
    """

    def __init__(self, reason: str, *, missing: bool = False, directory: bool = False,
                 size: int | None = None) -> None:
        super().__init__(reason)
        self.missing, self.directory, self.size = missing, directory, size


# A config is read whole and parsed by pure-Python PyYAML, which needs minutes
# and gigabytes for tens of MB; real configs are kilobytes, bulk data goes in a
# map file, and a larger config is refused from its size, unread.
MAX_CONFIG_BYTES = 10 * 10**6

def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def _refused(mode: int) -> FileRefused:
    kind = _kind(mode)
    if stat.S_ISDIR(mode):
        return FileRefused("is a directory", directory=True)
    return FileRefused(f"not a regular file (it is {kind})")


def check_regular(path: Path) -> None:
    """Raise FileRefused unless ``path`` (symlinks followed) is a regular file. Never opens it."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileRefused("no such file", missing=True) from None
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    except ValueError:  # a NUL byte in the path: no file can have that name
        raise FileRefused("no such file (the path holds a NUL byte)", missing=True) from None
    if not stat.S_ISREG(mode):
        raise _refused(mode)


def open_regular(path: Path, *, limit: int | None = None) -> int:
    """A read-only descriptor (close-on-exec) of the regular file ``path``; FileRefused if it
    is not one, or holds more than ``limit`` bytes (from its size, before anything is read)."""
    check_regular(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except FileNotFoundError:
        raise FileRefused("no such file", missing=True) from None
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):  # replaced since check_regular looked
            raise _refused(info.st_mode)
        if limit is not None and info.st_size > limit:
            raise FileRefused("too large", size=info.st_size)
    except OSError as exc:
        os.close(fd)
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    except FileRefused:
        os.close(fd)
        raise
    return fd


def read_regular(path: Path, *, limit: int | None = None) -> bytes:
    """The bytes of the regular file ``path``; FileRefused if it is not one, or if it holds
    more than ``limit`` bytes (checked from its size before reading, and while reading)."""
    fd = open_regular(path, limit=limit)
    try:
        with os.fdopen(fd, "rb", closefd=False) as stream:
            data = stream.read() if limit is None else stream.read(limit + 1)
    except OSError as exc:
        raise FileRefused(f"cannot read: {exc.strerror}") from None
    finally:
        os.close(fd)
    if limit is not None and len(data) > limit:  # it grew while being read
        raise FileRefused("too large", size=len(data))
    return data
