"""Task functions for tests/test_map_stream.py."""

from __future__ import annotations

import os
from typing import Any


def rewrite_map_file(x: Any, path: str) -> Any:
    """On item 0: write the map file ``path`` again in place, the same size and the same
    modification time, with every ``1`` made a ``2`` (still valid JSON lines); then
    return ``x``. Only the bytes differ: what a size or time check cannot see."""
    if x == 0:
        info = os.stat(path)
        with open(path, "r+b") as stream:
            data = stream.read()
            stream.seek(0)
            stream.write(data.replace(b"1", b"2"))
        os.utime(path, ns=(info.st_atime_ns, info.st_mtime_ns))
    return x


def replace_map_file(x: Any, path: str) -> Any:
    """On item 0: put a new file in the place of ``path`` (renamed over it), with other
    items; then return ``x``."""
    if x == 0:
        with open(path + ".new", "w") as stream:
            stream.write("".join(f"{-i}\n" for i in range(1, 5000)))
        os.replace(path + ".new", path)
    return x


def fail_first_call(x: int, calls: str, every: int) -> int:
    """``x * x``; the first call of an item divisible by ``every`` raises (a file in the
    folder ``calls`` marks each such call)."""
    if x % every == 0:
        mark = os.path.join(calls, str(x))
        if not os.path.exists(mark):
            open(mark, "w").close()
            raise ValueError(f"{x} fails its first time")
    return x * x
