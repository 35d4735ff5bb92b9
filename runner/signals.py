"""SIGINT and SIGTERM become :class:`~runner.errors.Interrupted` in the runner's main thread."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from types import FrameType

from runner.errors import Interrupted

__all__ = ["interrupts", "quiet_interrupts"]

SIGNALS = (signal.SIGINT, signal.SIGTERM)


def _raise(signum: int, _frame: FrameType | None) -> None:
    raise Interrupted(signum)


def _note(signum: int, _frame: FrameType | None) -> None:
    """While cleaning up after an interrupt, a second signal must not cut cleanup short."""


@contextmanager
def interrupts() -> Iterator[None]:
    """Within this block, the first SIGINT/SIGTERM raises Interrupted; restore on exit."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {sig: signal.signal(sig, _raise) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def quiet_interrupts() -> None:
    """After the first interrupt: further signals are noted, not raised, until restored."""
    if threading.current_thread() is threading.main_thread():
        for sig in SIGNALS:
            signal.signal(sig, _note)
