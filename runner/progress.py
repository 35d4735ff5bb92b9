"""The run's progress lines on stderr: the CLI's observer (``runner.observe``).

Its own module so that commands that run nothing (``validate``, ``schema``) do not
import the observer machinery.
"""

from __future__ import annotations

import os
import signal
import sys
from typing import Any

from runner.observe import JobStart, Observer

__all__ = ["Progress"]


class Progress(Observer):
    """The run's progress lines on stderr."""

    def waiting_for_lock(self, holder: dict[str, Any], config: str | None,
                         wait: float) -> None:
        print(f"mprun: {config} is already running (pid {holder.get('pid', '?')}, "
              f"run {holder.get('run_id', '?')}); waiting up to {wait:g}s for it",
              file=sys.stderr, flush=True)

    def stopping(self, signum: int, grace: float) -> None:
        # Called in a signal handler: print() there can hit a reentrant-write error.
        name = signal.Signals(signum).name
        os.write(2, f"mprun: {name}: starting no more tasks; running ones have "
                    f"{grace:g}s to finish (send it again to stop them now)\n".encode())

    def job_started(self, event: JobStart) -> None:
        workers = event.workers
        print(f"mprun: {event.job}: {event.tasks} task{'s' * (event.tasks != 1)} "
              f"in {event.mode} mode, {workers} worker{'s' * (workers != 1)}",
              file=sys.stderr, flush=True)
