"""``results.jsonl``: the run's journal, appended as work finishes.

One write per outcome, unbuffered, so a runner that dies keeps every result
that had come back. A map chunk's consecutive successes share one line
(``first``, ``values``) so a million tiny tasks are not a million writes; a
failed task always has a line of its own. A failure's message has secret
values masked, as in the logs (``runner.redact``); results are data, kept as is.
"""

from __future__ import annotations

import dataclasses
import datetime
from typing import IO, Any

from runner.jsonable import dumps_line
from runner.redact import redact
from runner.work import Outcome

__all__ = ["Journal"]


class Journal:
    def __init__(self, path: str | None) -> None:
        self._file: IO[bytes] | None = open(path, "ab", buffering=0) if path else None  # noqa: SIM115

    def record(self, job: str, outcome: Outcome, *, attempt: int = 1,
               mode: str | None = None) -> None:
        if self._file is None:
            return
        self._file.write(b"".join(_dump(line) for line in _lines(job, outcome, attempt, mode)))

    def reused(self, job: str, values: dict[int, Any], run_id: str) -> None:
        """Record results taken over from run ``run_id`` (``--resume``), so that this
        run's journal is whole and can be resumed in turn."""
        if self._file is None or not values:
            return
        lines = []
        tasks = sorted(values)
        start = 0
        for end in range(1, len(tasks) + 1):
            if end == len(tasks) or tasks[end] != tasks[end - 1] + 1:
                lines.append(dumps_line({"job": job, "first": tasks[start], "status": "ok",
                                         "values": [values[t] for t in tasks[start:end]],
                                         "reused": run_id}))
                start = end
        self._file.write(b"".join(lines))

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


def _dump(line: dict[str, Any]) -> bytes:
    """``line`` as JSON; marked ``"lossy": true`` when a value is not JSON data (a
    complex, a set, a datetime, a dataclass, an object, a tuple dict key), so that
    ``--resume`` runs those tasks again rather than reuse a changed value."""
    import orjson

    lossy = False

    def written_as(value: Any) -> Any:
        nonlocal lossy
        lossy = True
        if isinstance(value, datetime.date | datetime.time):
            return value.isoformat()  # as orjson writes them, only marked
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        return repr(value)

    options = orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
    data = dumps_line(line, written_as, options)
    return dumps_line({**line, "lossy": True}, written_as, options) if lossy else data


def _lines(job: str, outcome: Outcome, attempt: int, mode: str | None) -> list[dict[str, Any]]:
    extra = {"mode": mode} if mode else {}
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
    run_start = outcome.first
    end = outcome.first + len(outcome.values)
    for task in [*sorted(failed), end]:
        if task > run_start:
            lines.append({"job": job, "first": run_start, "status": "ok",
                          "values": outcome.values[run_start - outcome.first:task - outcome.first],
                          "seconds": seconds, "pid": outcome.pid, **extra})
        if task < end:
            lines.append(_failure(job, failed[task], seconds, outcome.pid, extra))
        run_start = task + 1
    return lines


def _failure(job: str, error: Any, seconds: float, pid: int,
             extra: dict[str, Any]) -> dict[str, Any]:
    return {"job": job, "task": error.task, "status": "failed",
            "error": {"type": error.type, "message": redact(error.message)},
            "seconds": seconds, "attempt": error.attempts, "pid": pid, **extra}
