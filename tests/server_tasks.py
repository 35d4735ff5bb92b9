"""Tasks that report on the process their worker was forked from (tests.test_forkserver)."""

from __future__ import annotations

import os
import sys
from typing import Any

IMPORTED_IN = os.getpid()  # the fork server's pid when it preloaded this module


def _status(pid: int) -> dict[str, str]:
    with open(f"/proc/{pid}/status") as file:
        return dict(line.rstrip("\n").split(":\t", 1) for line in file if ":\t" in line)


def server(_: Any = None) -> dict[str, Any]:
    """The worker's parent (the fork server under forkserver): its pid, command line,
    signal dispositions and what its descriptors point at; and what this worker has."""
    parent = os.getppid()
    with open(f"/proc/{parent}/cmdline", "rb") as file:
        cmdline = file.read().split(b"\0")
    status = _status(parent)
    targets = []
    for fd in os.listdir(f"/proc/{parent}/fd"):
        try:
            targets.append(os.readlink(f"/proc/{parent}/fd/{fd}"))
        except OSError:
            continue
    return {"pid": parent, "parent": int(status["PPid"]),
            "cmdline": [part.decode() for part in cmdline if part],
            "ignored": status["SigIgn"], "caught": status["SigCgt"], "fds": sorted(targets),
            "imported_in": IMPORTED_IN, "main": getattr(sys.modules["__main__"], "__file__", None)}


def wait_for_signal(marker: str) -> None:
    """Say it started (``marker`` is written), then wait to be stopped."""
    import time

    with open(f"/proc/{os.getppid()}/cmdline", "rb") as file:
        parent = file.read().replace(b"\0", b" ").decode()
    with open(marker + ".tmp", "w") as file:
        file.write(f"{os.getpid()}\n{parent}")
    os.replace(marker + ".tmp", marker)
    time.sleep(120)
