"""Results that cannot be written fail their own task, before anything counts them.

Data flow::

    executor ── Outcome ──> vet() ── Outcome ──> observers (Tally, Journal, ...)
                  │                               └─> JobReport: summary.json, --json, stdout
                  └─ a value that cannot be written as JSON: None in its place, and a
                     ResultError for its task

A result is written as JSON in three places (``runner.jsonable``): a value
whose ``__repr__``, ``isoformat()`` or ``dataclasses.asdict()`` raises (a
detached ORM object), or one nested too deep, would make each of them raise,
and the runner with them. The check is one orjson call per chunk, which a
million tiny results pass at a few nanoseconds each; only a chunk that fails it
is looked at item by item, so that just the items at fault fail.
"""

from __future__ import annotations

from typing import Any

from runner import log
from runner.errors import Interrupted, ResultError
from runner.jsonable import WRITTEN_AS_OPTIONS, dumps_compact, written_as, written_by
from runner.work import Outcome, TaskError

__all__ = ["MAX_DEPTH", "problem", "vet", "vetted"]

# How deeply lists and mappings may nest in a result. orjson writes 254 levels in C;
# past that mprun's writers recurse in Python, one frame per level, so a result
# much deeper than this would hit the recursion limit in one of them.
MAX_DEPTH = 255


class _Unwritable(Exception):
    """Raised by :func:`_written_as` when the step that turns a value into JSON raises."""


def vetted(outcome: Outcome, job: str, attempt: int = 1
           ) -> tuple[Outcome, bytes | None, bool]:
    """:func:`vet`, the values' JSON when they are plain JSON data (nothing written by
    ``written_as``), and whether orjson refused them (an int beyond 64 bits, say). The
    journal writes those bytes as they are, so that a million results are encoded once,
    not once to check them and once to write them; a refusal tells ``summary.json`` to
    take its slow path at once (``runner.jsonable.dumps_document``)."""
    import orjson

    converted = False

    def convert(value: Any) -> Any:
        nonlocal converted
        converted = True
        return _written_as(value)

    try:
        data = orjson.dumps(outcome.values, default=convert,
                            option=orjson.OPT_NON_STR_KEYS | WRITTEN_AS_OPTIONS)
    except BaseException as exc:  # refused, or a value at fault: the full check says which
        _reraise_interrupt(exc)
        return vet(outcome, job, attempt), None, True
    return outcome, None if converted else data, False


def vet(outcome: Outcome, job: str, attempt: int = 1) -> Outcome:
    """``outcome``, with each value that cannot be written replaced by ``None`` and its
    task failed as :class:`~runner.errors.ResultError` (the same object when all can)."""
    if problem(outcome.values, MAX_DEPTH + 1) is None:
        return outcome
    values, errors = list(outcome.values), list(outcome.errors)
    failed = {error.task for error in errors}
    for index, value in enumerate(values):
        task = outcome.first + index
        why = None if task in failed else problem(value)
        if why is not None:
            log.logger(job=job, task=task).error("a result could not be written", error=why)
            values[index] = None
            errors.append(TaskError.of(task, ResultError(why), attempts=attempt))
    if len(errors) == len(outcome.errors):  # each passes alone: nothing to fail
        return outcome
    errors.sort(key=lambda error: error.task)
    return Outcome(outcome.first, values, errors, outcome.seconds, outcome.pid, outcome.worker)


def problem(value: Any, depth: int = MAX_DEPTH, what: str = "the result") -> str | None:
    """Why ``value`` cannot be written as JSON, in words that call it ``what``; None
    when it can (its lists and mappings nested at most ``depth`` levels).

    One orjson call, then for what it refuses (an int beyond 64 bits, a tuple key,
    nesting past its limit) the exact path once, as the journal takes it.
    """
    import orjson

    try:
        try:
            orjson.dumps(value, default=_written_as,
                         option=orjson.OPT_NON_STR_KEYS | WRITTEN_AS_OPTIONS)
            return None
        except TypeError as exc:  # too deep, an int beyond 64 bits, an odd key; or below
            if exc.__cause__ is not None:
                raise exc.__cause__ from None
        if _deeper_than(value, depth):
            return f"{what} is nested deeper than {depth} levels"
        dumps_compact(value, _written_as, WRITTEN_AS_OPTIONS)  # the exact, slower path
        return None
    except _Unwritable as exc:
        step, raised, culprit = exc.args
        holder = f"{what}'s" if culprit is value else f"{what} holds a {_name(culprit)} whose"
        return f"{holder} {step} raised {_describe(raised)}"
    except BaseException as exc:
        _reraise_interrupt(exc)
        return f"{what} could not be written as JSON: {_describe(exc)}"


def _written_as(value: Any) -> Any:
    """``runner.jsonable.written_as``; raises :class:`_Unwritable` (the step, what it
    raised, the value) when that raises."""
    try:
        return written_as(value)
    except Interrupted:
        raise
    except BaseException as exc:  # SystemExit from a __repr__ too: the value's fault
        raise _Unwritable(written_by(value), exc, value) from None


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether lists and mappings nest in ``value`` deeper than ``limit``, read as orjson
    reads them (a subclass's own ``__iter__`` is not called); without recursion."""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = dict.values(item)
        elif isinstance(item, list):
            children = list.__iter__(item)
        elif type(item) is tuple:
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def _reraise_interrupt(exc: BaseException) -> None:
    """The run's own interrupt is never a result's fault; orjson may hold it as a cause."""
    for candidate in (exc, exc.__cause__):
        if isinstance(candidate, Interrupted):
            raise candidate


def _describe(exc: BaseException) -> str:
    try:
        text = str(exc)
    except Exception:  # an exception whose __str__ raises in turn
        text = "(its message could not be read)"
    return f"{_name(exc)}: {text}" if text else _name(exc)


def _name(value: Any) -> str:
    return type(value).__qualname__
