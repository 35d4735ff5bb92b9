"""structlog set-up: one call per process, safe to repeat; JSON lines to one file each.

The runner's process writes ``runner.jsonl``; each worker process writes
``worker-PID.jsonl`` in the same run folder. Every line carries
``timestamp``, ``level``, ``event``, ``run_id``, ``pid`` and ``process``;
``job`` and ``task`` are bound where they apply. Values under a secret-looking
key (``password``, ``token``, ...) are written as ``"***"`` (``runner.redact``).

Each line is one ``write(2)`` to a file opened for appending, so lines from
threads never interleave, and a process killed mid-write leaves at most one
torn line, at the end of its own file: :func:`read_jsonl` skips it with a
:class:`TornLineWarning`. A write the disk takes only part of is completed or
cut back (``runner.runfiles``), so a full disk tears no line. A log file that
cannot be opened or written never fails the code that logs: its first failure
goes to ``on_error`` (the runner's: the run stops, exit 74) or, in a worker,
is one line on stderr, and the worker goes on without its log.

The runner configures logging per run with :func:`configured`, which puts
back what was there before (structlog's ``configure`` / ``reset_defaults``)
and closes the run's file, so that nothing a caller logs after ``run()``
lands in a finished run's folder. A worker process calls :func:`configure`
once; it ends with its run.

structlog is imported here, on first use, never at ``import runner``.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import warnings
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, BinaryIO, cast

from runner.errors import RunFilesError
from runner.jsonable import dumps_compact
from runner.redact import redact_event
from runner.runfiles import AppendFile, open_append
from runner.work import current_task

__all__ = ["TornLineWarning", "configure", "configured", "get_logger", "logger", "read_jsonl"]

OnError = Callable[[RunFilesError], None]

_static: dict[str, Any] = {}
_file: _LogFile | None = None
_configured_pid: int | None = None


def _tell_stderr(error: RunFilesError) -> None:
    """A worker's log file failed: said once, on stderr; the worker goes on."""
    line = f"mprun: worker {os.getpid()}: {error}; its log lines are dropped from here on\n"
    with contextlib.suppress(OSError):
        os.write(2, line.encode(errors="backslashreplace"))


class _LogFile:
    """structlog's file: each line one checked write. After the first failure (told to
    ``on_error``) lines are dropped: the disk is full or the folder gone, and a task
    that logs must not fail for it. Without a path, every line is dropped."""

    def __init__(self, path: str | None, on_error: OnError) -> None:
        self._on_error = on_error
        self._file: AppendFile | None = open_append(path, on_error)

    def write(self, data: bytes) -> None:
        file = self._file
        if file is None:
            return
        try:
            file.write(data)
        except RunFilesError as error:
            self.close()
            self._on_error(error)

    def flush(self) -> None:
        """Nothing to do: writes are unbuffered."""

    def close(self) -> None:
        file, self._file = self._file, None
        if file is not None:
            file.close()


def _add_static(_logger: Any, _name: str,
                event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    for key, value in _static.items():
        event_dict.setdefault(key, value)
    return event_dict


def _dumps(obj: Any, default: Any = None) -> bytes:
    """structlog's serializer: the same JSON as the journal (``default`` is ours: repr)."""
    return dumps_compact(obj)


def configure(*, path: str | None, run_id: str, process: str, level: str = "info",
              on_error: OnError | None = None, sink: Any = None,
              fields: dict[str, Any] | None = None) -> None:
    """Send this process's log lines to ``path`` (appending), tagged with run and process.

    ``on_error`` is told the first failure to open or write ``path``; by default it
    is one line on stderr (what a worker does). A ``sink`` (an object with ``write``
    of a line's bytes, ``flush`` and ``close``) takes the lines instead of a file: a
    dask worker's go to the runner (``runner.daskworker``). ``fields`` are added to
    every line (a dask worker's ``host``).
    """
    import structlog

    global _file, _configured_pid
    if _file is not None and _configured_pid == os.getpid():
        _file.close()
    _file = sink if sink is not None else _LogFile(path, on_error or _tell_stderr)
    _configured_pid = os.getpid()
    _static.clear()
    _static.update(run_id=run_id, pid=os.getpid(), process=process, **(fields or {}))
    structlog.configure(
        processors=[
            _add_static,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True, key="timestamp"),
            structlog.processors.format_exc_info,
            redact_event,
            structlog.processors.JSONRenderer(serializer=_dumps),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            logging.getLevelNamesMapping()[level.upper()]),
        # _LogFile has the write() and flush() that BytesLogger uses of a BinaryIO.
        logger_factory=structlog.BytesLoggerFactory(cast(BinaryIO, _file)),
        cache_logger_on_first_use=False,
    )


@contextlib.contextmanager
def configured(*, path: str | None, run_id: str, process: str, level: str = "info",
               on_error: OnError | None = None) -> Iterator[None]:
    """:func:`configure` for the ``with`` block; then the file is closed and structlog's
    configuration is what it was before (its defaults, if nobody had configured it)."""
    import structlog

    global _file, _configured_pid
    before = structlog.get_config() if structlog.is_configured() else None
    saved = (_file, _configured_pid, dict(_static))
    _file = None  # a caller's own file (an enclosing run's) stays open
    configure(path=path, run_id=run_id, process=process, level=level, on_error=on_error)
    try:
        yield
    finally:
        if _file is not None:
            _file.close()
        _file, _configured_pid = saved[0], saved[1]
        _static.clear()
        _static.update(saved[2])
        if before is None:
            structlog.reset_defaults()
        else:
            structlog.configure(**before)


def logger(**bind: Any) -> Any:
    """The runner's own logger, bound to ``bind``."""
    import structlog

    return structlog.get_logger().bind(**bind)


def get_logger(**bind: Any) -> Any:
    """A logger for task code, bound to the job and task running in this thread."""
    job, task = current_task()
    if job is not None:
        bind.setdefault("job", job)
    if task is not None:
        bind.setdefault("task", task)
    return logger(**bind)


class TornLineWarning(UserWarning):
    """Warned when :func:`read_jsonl` skips a line that is not a whole JSON object."""


def read_jsonl(path: str | os.PathLike[str]) -> list[dict[str, Any]]:
    """The JSON objects of a JSON-lines file mprun wrote, in order.

    A line that is not a whole JSON object (the torn last line of a process
    killed mid-write) is skipped with one :class:`TornLineWarning` naming the
    file and its line numbers; blank lines are ignored.
    """
    with open(path, "rb") as file:
        data = file.read()
    lines: list[dict[str, Any]] = []
    torn: list[int] = []
    for number, raw in enumerate(data.split(b"\n"), 1):
        if not raw.strip():
            continue
        try:
            line = json.loads(raw)
        except ValueError:  # JSONDecodeError and UnicodeDecodeError
            line = None
        if isinstance(line, dict):
            lines.append(line)
        else:
            torn.append(number)
    if torn:
        warnings.warn(f"{os.fspath(path)}: skipped {len(torn)} torn line"
                      f"{'s' * (len(torn) != 1)} (line {', '.join(map(str, torn))})",
                      TornLineWarning, stacklevel=2)
    return lines
