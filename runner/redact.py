"""Secrets out of logs and summaries: secret keys, and the values of secret variables.

Two rules, both applied on the way out (log lines, ``--json``, the human summary):

* **By key.** A mapping value under a secret key becomes ``"***"``. A key (or a
  variable name) is secret when, lower-cased and with ``_`` and ``-`` removed, it
  contains ``password``, ``secret``, ``token`` or ``apikey`` (``DB_PASSWORD``,
  ``apiToken``, ``X-Api-Key``, ``client_secret``).
* **By value.** The loader registers every value that a ``${VAR}`` or
  ``${VAR:-default}`` with a secret name put into the config
  (:func:`add_secret_values`); every occurrence of such a value inside any
  string, at any depth and under any key, becomes ``"***"``:
  ``dsn: "pg://u:${DB_PASSWORD}@h"`` is logged as ``pg://u:***@h``, and so is
  a task's ``ValueError`` that quotes it, in its message and its traceback.
  A number read from a whole ``${VAR}`` (``pin: ${PIN_SECRET}``) is masked when
  logged as a number, too. Occurrences that overlap are masked as one.

Values shorter than :data:`MIN_SECRET_LENGTH` characters are not registered.
Masking a one- or two-character value everywhere would turn every digit ``1``
of every timestamp, pid and count into ``***``, and the pattern of masks would
then show the value to anyone reading the log: no safer, and the log is lost.
Flags under secret-looking names (``USE_TOKEN=1``, ``API_KEY_REQUIRED=no``) are
common and would do exactly that. A value that short is no protection anyway;
under a secret key it is still masked by the first rule.

The registry is process-wide: a worker process registers the values it is sent
at start-up (``runner.worker.WorkerInit``), which covers spawn and forkserver.
Task code always receives the real values. Containers are copied only where a
value is replaced, so an event dict's objects are never changed in place; with
no value registered, redaction costs what the key rule alone costs.
"""

from __future__ import annotations

from collections.abc import Iterable, MutableMapping
from typing import Any

__all__ = ["MASK", "MIN_SECRET_LENGTH", "SECRET_WORDS", "add_secret_values",
           "clear_secret_values", "is_secret", "may_name_a_secret", "redact", "redact_event",
           "secret_values"]

MASK = "***"
# Compared against the key lower-cased with "_" and "-" removed ("api_key" -> "apikey").
SECRET_WORDS = ("password", "secret", "token", "apikey")
# Shorter values are not masked by value (see the module docstring for why).
MIN_SECRET_LENGTH = 4

# The registered values, longest first; empty: strings are not searched at all.
_values: tuple[str, ...] = ()


def is_secret(key: object) -> bool:
    """True if ``key`` is a string naming a secret (see the module docstring)."""
    if not isinstance(key, str):
        return False
    folded = key.lower().replace("_", "").replace("-", "")
    return any(word in folded for word in SECRET_WORDS)


def may_name_a_secret(text: bytes) -> bool:
    """Whether ``text`` (JSON, say) holds a word that makes a key secret, anywhere: a cheap
    test before walking a large document with :func:`redact`."""
    folded = text.lower().replace(b"_", b"").replace(b"-", b"")
    return any(word.encode() in folded for word in SECRET_WORDS)


def add_secret_values(values: Iterable[str]) -> None:
    """Mask every occurrence of each of ``values`` from now on, in this process.

    Values shorter than :data:`MIN_SECRET_LENGTH` are ignored; adding a value
    twice is harmless.
    """
    global _values
    added = {value for value in values if len(value) >= MIN_SECRET_LENGTH}
    if not added.issubset(_values):
        # Built whole and then assigned: a thread redacting meanwhile sees the old or new tuple.
        _values = tuple(sorted(added.union(_values), key=lambda v: (-len(v), v)))


def secret_values() -> tuple[str, ...]:
    """The values registered in this process, longest first."""
    return _values


def clear_secret_values() -> None:
    """Forget every registered value (for tests, and for a library that reloads)."""
    global _values
    _values = ()


def redact(value: Any) -> Any:
    """``value`` with secrets replaced by :data:`MASK`: entries under a secret key, and
    registered secret values inside strings.

    Walks dicts, lists and tuples (cycles are left alone); returns ``value``
    itself when nothing in it is secret.
    """
    return _redact(value, set())


def _mask_text(text: str) -> str:
    """``text`` with every occurrence of a registered value replaced by one MASK each;
    overlapping or adjacent occurrences become a single MASK."""
    spans: list[tuple[int, int]] = []
    for secret in _values:
        start = text.find(secret)
        while start != -1:
            spans.append((start, start + len(secret)))
            start = text.find(secret, start + 1)
    if not spans:
        return text
    spans.sort()
    parts: list[str] = []
    done = 0  # text[:done] is in parts already
    begin, end = spans[0]
    for start, stop in spans[1:]:
        if start <= end:
            end = max(end, stop)
            continue
        parts += [text[done:begin], MASK]
        done, (begin, end) = end, (start, stop)
    parts += [text[done:begin], MASK, text[end:]]
    return "".join(parts)


def _redact(value: Any, seen: set[int]) -> Any:
    if isinstance(value, dict):
        if id(value) in seen:
            return value
        seen.add(id(value))
        out = {key: MASK if is_secret(key) else _redact(item, seen)
               for key, item in value.items()}
        seen.discard(id(value))
        changed = any(out[key] is not item for key, item in value.items())
        return out if changed else value
    if isinstance(value, list | tuple):
        if id(value) in seen:
            return value
        seen.add(id(value))
        items = [_redact(item, seen) for item in value]
        seen.discard(id(value))
        if all(new is old for new, old in zip(items, value, strict=True)):
            return value
        return tuple(items) if isinstance(value, tuple) else items
    if not _values:
        return value
    if isinstance(value, str):
        return _mask_text(value)
    if isinstance(value, int | float) and not isinstance(value, bool) and str(value) in _values:
        return MASK
    return value


def redact_event(_logger: Any, _name: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: redact secret keys at every depth of the event dict, and
    registered secret values in every string (the message and a formatted traceback too)."""
    for key, item in event_dict.items():
        event_dict[key] = MASK if is_secret(key) else _redact(item, set())
    return event_dict
