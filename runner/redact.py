"""Secrets out of logs and summaries: values under a secret-looking key become ``"***"``.

The rule is by key name only: a key is secret when, lower-cased and with ``_``
and ``-`` removed, it contains ``password``, ``secret``, ``token`` or ``apikey``
(``DB_PASSWORD``, ``apiToken``, ``X-Api-Key``, ``client_secret``). Where a value
came from (which ``${VAR}``) is not tracked: ``dsn: "pg://u:${DB_PASSWORD}@h"``
is not redacted, ``password: ${DB_PASSWORD}`` is.

Redaction happens on the way out (log lines, ``--json``, the human summary);
task code always receives the real values. Containers are copied only where a
value is replaced, so an event dict's objects are never changed in place.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from typing import Any

__all__ = ["MASK", "SECRET_WORDS", "is_secret", "redact", "redact_event"]

MASK = "***"
# Compared against the key lower-cased with "_" and "-" removed ("api_key" -> "apikey").
SECRET_WORDS = ("password", "secret", "token", "apikey")


def is_secret(key: object) -> bool:
    """True if ``key`` is a string naming a secret (see the module docstring)."""
    if not isinstance(key, str):
        return False
    folded = key.lower().replace("_", "").replace("-", "")
    return any(word in folded for word in SECRET_WORDS)


def redact(value: Any) -> Any:
    """``value`` with every mapping entry under a secret key replaced by :data:`MASK`.

    Walks dicts, lists and tuples (cycles are left alone); returns ``value``
    itself when nothing in it is secret.
    """
    return _redact(value, set())


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
    return value


def redact_event(_logger: Any, _name: str,
                 event_dict: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """A structlog processor: redact secret keys at every depth of the event dict."""
    for key, item in event_dict.items():
        event_dict[key] = MASK if is_secret(key) else _redact(item, set())
    return event_dict
