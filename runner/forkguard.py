"""A task that forks and returns in the child must not become a second worker or runner.

``os.fork()`` in task code (directly, or through a library) leaves a child
that returns from the task into mprun's own loop: it would run the rest of the
chunk, send an answer down the worker's pipe (crediting results to the wrong
tasks) or, in serial mode, carry on as a second runner. :func:`install` makes
every process mprun runs tasks in note a fork that happens while a task runs;
the loop that ran the task then calls :func:`exit_if_forked`, which ends such
a child at once and quietly (``os._exit``), before it can answer. A child that
``exec``s or ends by itself (``subprocess``, ``multiprocessing``) never gets
back to the loop and is not affected.

Stdlib only: every worker imports this module.
"""

from __future__ import annotations

import os

from runner import work

__all__ = ["EXIT_FORKED_CHILD", "exit_if_forked", "install"]

# Exit code of a forked child that returned from a task (nobody waits for it).
EXIT_FORKED_CHILD = 0

_parent_pid: int | None = None
_installed = False


def _after_fork_in_child() -> None:
    if _parent_pid is not None and work.current_task()[0] is not None:
        work.stop_chunks()  # the chunk ends after the item that forked


def install() -> None:
    """Watch for forks in this process (once per process; safe to call again)."""
    global _parent_pid, _installed
    _parent_pid = os.getpid()
    if not _installed:
        os.register_at_fork(after_in_child=_after_fork_in_child)
        _installed = True


def exit_if_forked() -> None:
    """End this process now if it is a child forked inside a task (see the docstring)."""
    if _parent_pid is not None and os.getpid() != _parent_pid:
        os._exit(EXIT_FORKED_CHILD)
