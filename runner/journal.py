"""``results.jsonl``: the run's journal, appended as work finishes.

One write per outcome, unbuffered, so a runner that dies keeps every result
that had come back. A map chunk's consecutive successes share one line
(``first``, ``values``) so a million tiny tasks are not a million writes; a
failed task always has a line of its own. A failure's message has secret
values masked, as in the logs (``runner.redact``); results are data, kept as is.

A write the disk cannot complete is cut back (``runner.runfiles``), so the file
holds whole lines only; the failure goes to ``on_error`` (the run then starts
no more tasks, exit 74) and nothing more is written: the report, built from
memory, still has every result.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from runner.errors import RunFilesError
from runner.jsonable import WRITTEN_AS_OPTIONS, dumps_line, written_as
from runner.observe import Finished, Observer
from runner.redact import redact
from runner.runfiles import AppendFile, open_append
from runner.spans import gaps, runs
from runner.work import Outcome

__all__ = ["Journal"]


class Journal(Observer):
    """Writes each finished chunk's lines; an observer of the run (``runner.observe``)."""

    def __init__(self, path: str | None,
                 on_error: Callable[[RunFilesError], None] | None = None) -> None:
        self._on_error = on_error
        self._file: AppendFile | None = open_append(path, self._failed)

    def finished(self, event: Finished) -> None:
        self.record(event.job, event.outcome, attempt=event.attempt, mode=event.mode,
                    encoded=event.encoded)

    def record(self, job: str, outcome: Outcome, *, attempt: int = 1,
               mode: str | None = None, encoded: bytes | None = None) -> None:
        """Write ``outcome``'s lines; ``encoded``, its values' JSON if known, is written
        as it is into a chunk's one line (the same bytes ``_dump`` would make)."""
        if self._file is None:
            return
        if encoded is not None and outcome.values and not outcome.errors:
            self._write(_success_line(job, outcome, attempt, mode, encoded))
            return
        self._write(b"".join(_dump(line) for line in _lines(job, outcome, attempt, mode)))

    def reused(self, job: str, values: dict[int, Any], run_id: str) -> None:
        """Record results taken over from run ``run_id`` (``--resume``), so that this
        run's journal is whole and can be resumed in turn."""
        if self._file is None or not values:
            return
        self._write(b"".join(
            dumps_line({"job": job, "first": start, "status": "ok",
                        "values": [values[t] for t in range(start, stop)], "reused": run_id})
            for start, stop in runs(sorted(values))))

    def _write(self, data: bytes) -> None:
        assert self._file is not None
        try:
            self._file.write(data)
        except RunFilesError as error:
            self.close()
            self._failed(error)

    def _failed(self, error: RunFilesError) -> None:
        if self._on_error is None:
            raise error
        self._on_error(error)

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _dump(line: dict[str, Any]) -> bytes:
    """``line`` as JSON; marked ``"lossy": true`` when a value is not JSON data (a
    complex, a set, a datetime, a dataclass, an object, a tuple dict key), so that
    ``--resume`` runs those tasks again rather than reuse a changed value."""
    lossy = False

    def lossy_written_as(value: Any) -> Any:
        nonlocal lossy
        lossy = True
        return written_as(value)

    data = dumps_line(line, lossy_written_as, WRITTEN_AS_OPTIONS)
    return dumps_line({**line, "lossy": True}, written_as, WRITTEN_AS_OPTIONS) if lossy else data


def _success_line(job: str, outcome: Outcome, attempt: int, mode: str | None,
                  encoded: bytes) -> bytes:
    """The line :func:`_lines` makes for a chunk with no failure, around ``encoded``."""
    import orjson

    extra = _extra(outcome, mode)
    seconds = round(outcome.seconds, 6)
    if len(outcome.values) == 1:
        head = {"job": job, "task": outcome.first, "status": "ok"}
        key, value = b',"value":', encoded[1:-1]
        tail = {"seconds": seconds, "attempt": attempt, "pid": outcome.pid, **extra}
    else:
        head = {"job": job, "first": outcome.first, "status": "ok"}
        key, value = b',"values":', encoded
        tail = {"seconds": seconds, "pid": outcome.pid, **extra}
    # One copy of a chunk's (maybe megabytes of) values, not one per "+".
    return b"".join((memoryview(orjson.dumps(head))[:-1], key, value, b",",
                     memoryview(orjson.dumps(tail))[1:], b"\n"))


def _lines(job: str, outcome: Outcome, attempt: int, mode: str | None) -> list[dict[str, Any]]:
    extra = _extra(outcome, mode)
    seconds = round(outcome.seconds, 6)
    failed = {error.task: error for error in outcome.errors}
    if len(outcome.values) == 1:
        task = outcome.first
        error = failed.get(task)
        if error is None:
            return [{"job": job, "task": task, "status": "ok", "value": outcome.values[0],
                     "seconds": seconds, "attempt": attempt, "pid": outcome.pid, **extra}]
        return [_failure(job, error, seconds, outcome.pid, extra)]
    lines: list[dict[str, Any]] = []
    first = outcome.first
    for start, stop in gaps(sorted(failed), first + len(outcome.values), start=first):
        lines.append({"job": job, "first": start, "status": "ok",
                      "values": outcome.values[start - first:stop - first],
                      "seconds": seconds, "pid": outcome.pid, **extra})
    lines += [_failure(job, failed[task], seconds, outcome.pid, extra) for task in sorted(failed)]
    lines.sort(key=lambda line: line.get("first", line.get("task", 0)))
    return lines


def _extra(outcome: Outcome, mode: str | None) -> dict[str, Any]:
    """A line's last fields: the compare mode, and a remote worker's address."""
    extra: dict[str, Any] = {"mode": mode} if mode else {}
    if outcome.worker is not None:
        extra["worker"] = outcome.worker
    return extra


def _failure(job: str, error: Any, seconds: float, pid: int,
             extra: dict[str, Any]) -> dict[str, Any]:
    return {"job": job, "task": error.task, "status": "failed",
            "error": {"type": error.type, "message": redact(error.message)},
            "seconds": seconds, "attempt": error.attempts, "pid": pid, **extra}
