"""The fork server, forked from the ``mprun`` command as it starts instead of exec'd.

Under forkserver every worker forks from one server process that has imported
the worker's modules and the jobs' modules, so no worker imports them again and
none inherits the runner's threads, locks or open files. multiprocessing starts
that server by exec'ing a new interpreter, which spends a whole Python start-up
(``site``, an editable install's finder, ``multiprocessing`` itself) before its
first import, and it is on the critical path of every run: the runner is ready to
start workers before the server is (README "Start-up").

So the CLI forks the server instead, first thing, on a config-cache hit (the
cache's hints name the start method and the modules). At that point the runner
is one thread, has no file open but stdio, and has imported only the standard
library and ``runner.cli``'s few small modules: the child is as clean as an
exec'd interpreter would be (the zygote design of Android and Chromium). The
child closes every descriptor it inherited but stdio, as ``spawnv_passfds``
does; puts back the signal handlers a fresh interpreter has (SIGINT ignored
while it imports: a Ctrl-C then is the runner's to report); imports mprun's
worker modules with ``sys.path`` as it is, and only then puts the config's
folder first for the jobs' modules (a ``logging.py`` beside a config must not
replace the standard library's), with what they print sent to stderr (a worker
points its own stdout where the run wants it); and then runs multiprocessing's
own server loop, ``multiprocessing.forkserver.main``, so
workers are forked, prepared and reaped exactly as by the stock server. It ends
with ``os._exit``: when the runner is gone there is nothing to tear down.

The runner's side sets what ``ForkServer.ensure_running`` would have set (the
server's address, its alive pipe, its pid). That is multiprocessing's private
state, so the fork is used only where ``forkserver.main`` has the signature it
was written against (Python 3.11 to 3.13; 3.14's takes an authentication key),
and only while no other thread runs; otherwise :func:`start` returns False and
the caller starts the stock server. The library API (``runner.run``) always
does: a program embedding mprun has threads and files of its own.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterable
from typing import Any, NamedTuple

__all__ = ["start"]

# What a fresh interpreter has; the CLI may have put its own in place already.
_FRESH: dict[signal.Signals, Any] = {signal.SIGINT: signal.default_int_handler,
                                     signal.SIGTERM: signal.SIG_DFL,
                                     signal.SIGHUP: signal.SIG_DFL}
_MAIN_ARGS = ("listener_fd", "alive_r", "preload", "main_path", "sys_path")


def supported() -> bool:
    """Whether this Python's fork server is the one this module drives."""
    from multiprocessing import forkserver

    code = forkserver.main.__code__
    return (code.co_varnames[:code.co_argcount] == _MAIN_ARGS
            and code.co_kwonlyargcount == 0
            and not hasattr(forkserver._forkserver, "_forkserver_authkey")
            and hasattr(forkserver._forkserver, "_forkserver_pid"))


def start(own: Iterable[str], jobs: Iterable[str], paths: Iterable[str]) -> bool:
    """Fork the fork server now, preloading mprun's ``own`` modules with ``sys.path`` as
    it is, then the ``jobs``' modules with ``paths`` put first (a job's folder must not
    shadow a module of the standard library that mprun imports); False, and nothing
    done, where it cannot be (see above)."""
    if threading.active_count() != 1 or not supported():
        return False
    import socket
    from multiprocessing import connection, forkserver, util

    server: Any = forkserver._forkserver  # private: see the module docstring
    if server._forkserver_pid is not None:
        return False
    preload = _Preload(list(own), list(jobs), list(paths))
    with socket.socket(socket.AF_UNIX) as listener:
        address = connection.arbitrary_address("AF_UNIX")  # type: ignore[attr-defined]
        listener.bind(address)
        if not util.is_abstract_socket_namespace(address):
            os.chmod(address, 0o600)
        listener.listen()
        alive_r, alive_w = os.pipe()
        for stream in (sys.stdout, sys.stderr):  # nothing buffered is written twice
            with contextlib.suppress(Exception):
                stream.flush()
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, _FRESH)
        try:
            pid = os.fork()
            if pid == 0:
                _serve(listener.fileno(), alive_r, preload, blocked)
        finally:
            signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
            os.close(alive_r)
    server._forkserver_address = address
    server._forkserver_alive_fd = alive_w
    server._forkserver_pid = pid
    server._preload_modules = [*preload.own, *preload.jobs]
    return True


class _Preload(NamedTuple):
    own: list[str]  # mprun's modules: imported with sys.path as it is
    jobs: list[str]  # the jobs' modules: imported with ``paths`` first
    paths: list[str]


def _serve(listener_fd: int, alive_r: int, preload: _Preload,
           blocked: set[int | signal.Signals]) -> None:
    """The child: become the fork server; never returns. SIGINT stays ignored while it
    imports (a Ctrl-C then is the runner's to report, not a traceback of the server's)."""
    code = 1
    try:
        _close_inherited(keep=(listener_fd, alive_r))
        for signum, handler in _FRESH.items():
            signal.signal(signum, signal.SIG_IGN if signum == signal.SIGINT else handler)
        signal.pthread_sigmask(signal.SIG_SETMASK, blocked)
        _import(preload)
        from multiprocessing import forkserver

        # What the workers get back from forkserver.main, which ignores SIGINT itself.
        signal.signal(signal.SIGINT, _FRESH[signal.SIGINT])
        forkserver.main(listener_fd, alive_r, [])
        code = 0
    except (SystemExit, KeyboardInterrupt):  # the runner is gone, or going: quietly
        code = 0
    except BaseException:
        with contextlib.suppress(Exception):
            sys.excepthook(*sys.exc_info())
    finally:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os._exit(code)


def _import(preload: _Preload) -> None:
    """Import the modules with file descriptor 1 pointed at stderr; one that fails to
    import is left to the worker, which reports it as its task's error."""
    from runner.imports import add_paths

    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        _import_each(preload.own)
        add_paths(preload.paths)  # as a worker does before its first task
        _import_each(preload.jobs)
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def _import_each(names: list[str]) -> None:
    for name in names:
        with contextlib.suppress(Exception):
            __import__(name)


def _close_inherited(keep: tuple[int, ...]) -> None:
    """Close every descriptor above stdio but ``keep``, as an exec'd server's start
    does (``_posixsubprocess`` lists ``/proc/self/fd`` too): what the runner's parent
    left open is not the server's to hold (a pipe held open would never see its EOF)."""
    try:
        fds = [int(name) for name in os.listdir("/proc/self/fd")]
    except OSError:  # no /proc: every number up to the hard limit (or 65536, if none)
        import resource

        hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        fds = list(range(3, hard if 0 < hard <= 1 << 20 else 1 << 16))
    for fd in fds:
        if fd > 2 and fd not in keep:
            with contextlib.suppress(OSError):
                os.close(fd)
