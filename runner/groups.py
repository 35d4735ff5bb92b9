"""Process groups: each worker process leads one, so that what its tasks start ends
with the run.

A task that runs ``subprocess.Popen(["sleep", "300"])`` or starts a
``multiprocessing.Process`` puts that process in its worker's group. Whenever
the runner ends a worker (a timeout, an interrupt, a crash, a worker replaced,
the job's end), it sends the whole group SIGTERM, which the task can catch
(``finally`` blocks run: see ``runner.worker``), and SIGKILLs what is left of
the group after :data:`KILL_GRACE_SECONDS`. When the runner itself dies, even
by SIGKILL, each worker does the same to its own group (``runner.worker``).
This is systemd's ``KillMode=control-group`` for one worker; a process that
must outlive the run is started in a new session (``start_new_session=True``),
which leaves the group.

A group outlives its leader while it has members, and Linux does not reuse
its id as a pid meanwhile, so signalling a group by its dead worker's pid
reaches only that worker's descendants.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from collections.abc import Iterable

__all__ = ["KILL_GRACE_SECONDS", "Groups", "alive", "lead", "send"]

# After SIGTERM, how long a worker's group has before SIGKILL.
KILL_GRACE_SECONDS = 2.0


def lead() -> bool:
    """Make the calling process the leader of a new process group (in a worker, at
    start-up); whether it is one."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    return os.getpgid(0) == os.getpid()


def adopt(pid: int) -> None:
    """Put a just-started worker in a group of its own from the runner's side too, so
    that no signal meant for its group finds it still in the runner's (the classic
    parent-and-child ``setpgid``). Fails harmlessly where the runner is not its parent
    (forkserver) or it has exec'd (spawn): it then does it itself."""
    with contextlib.suppress(OSError):
        os.setpgid(pid, pid)


def send(pgid: int, sig: int) -> bool:
    """Signal every process of group ``pgid``; whether it had any."""
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        return False
    return True


def alive(pgid: int) -> bool:
    """Whether group ``pgid`` has a process left that is not a zombie.

    A zombie keeps its group until it is reaped, and a container's init may never
    reap the orphans it inherits: such a group is over, though ``killpg`` still finds it.
    """
    if not send(pgid, 0):
        return False
    try:
        pids = [name for name in os.listdir("/proc") if name.isdigit()]
    except OSError:  # no /proc: the kernel's answer has to do
        return True
    return any(_state(pid, pgid) not in (None, "Z", "X") for pid in pids)


def _state(pid: str, pgid: int) -> str | None:
    """Process ``pid``'s state letter if it is in group ``pgid``, else None."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as stat:
            fields = stat.read().rpartition(b")")[2].split()
    except OSError:  # it ended meanwhile
        return None
    return fields[0].decode() if len(fields) > 2 and int(fields[2]) == pgid else None


class Groups:
    """Worker groups being ended: SIGTERM sent, SIGKILL due when their grace is over."""

    def __init__(self) -> None:
        self._due: dict[int, float] = {}  # pgid -> monotonic time of its SIGKILL

    def end(self, pgids: Iterable[int], grace: float = KILL_GRACE_SECONDS) -> None:
        """Send each group SIGTERM now and SIGKILL once ``grace`` is over (:meth:`sweep`)."""
        due = time.monotonic() + grace
        for pgid in pgids:
            if pgid not in self._due and send(pgid, signal.SIGTERM):
                self._due[pgid] = due

    def next_due(self) -> float:
        """When the next SIGKILL is due (monotonic time; infinity: none is)."""
        return min(self._due.values(), default=float("inf"))

    def sweep(self) -> None:
        """SIGKILL the groups whose grace is over; forget the empty ones."""
        now = time.monotonic()
        for pgid, due in list(self._due.items()):
            if not alive(pgid):
                del self._due[pgid]
            elif now >= due:
                send(pgid, signal.SIGKILL)
                del self._due[pgid]

    def finish(self) -> None:
        """Wait until every group is empty or its grace is over, SIGKILLing those left."""
        pause = 0.001
        while self._due:
            self.sweep()
            if self._due:  # a process given SIGTERM has no descriptor to wait on
                time.sleep(pause)
                pause = min(pause * 2, 0.05)
