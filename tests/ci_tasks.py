"""Task functions for tests/test_ci_outputs.py: ok, raising, crashing and slow tasks."""

from __future__ import annotations

import os
import time


def ok(x: int) -> int:
    return x * 2


def fails_on_odd(x: int) -> int:
    """Raises for odd items: a <failure> in JUnit, an ::error line under GitHub Actions."""
    if x % 2:
        raise ValueError(f"odd item {x}: 100% bad, <a & b>\nsecond line")
    return x


def crash(x: int) -> int:
    """Kills its worker on item 1: a WorkerCrashed, an <error> in JUnit."""
    if x == 1:
        os._exit(3)
    return x


def hang(x: int) -> int:
    """Item 1 runs past any small timeout: a TaskTimeout, an <error> in JUnit."""
    if x == 1:
        time.sleep(60)
    return x


def sleep_for(seconds: float) -> float:
    """Runs ``seconds``: the slowest tasks are the longest sleeps."""
    time.sleep(seconds)
    return seconds
