"""How the lines of a map file become items, one format per file suffix.

A format reads items from an iterator of lines (``runner.maplines.Lines``, whose
``line`` numbers the last line read, so that a bad item is named by its line):
``header`` takes what comes before the first item (a CSV header row), ``items``
yields the items after it, given that header. Both read lines lazily, one item's
lines at a time, so that a reader may stop between two items and start again there
later with the same header. ``scan`` is ``items`` for the check, which drops the
items: for JSON lines it lets orjson accept a line first (several times faster), and
asks ``json`` (what the run parses with) only about a line orjson refuses, since json
accepts all that orjson does and more (NaN, ints past 64 bits, lone surrogates).
"""

from __future__ import annotations

import csv
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import orjson

from runner.maplines import BadLine, Lines

__all__ = ["FORMATS", "Format", "format_for"]


# (lines, where, header) -> the items; ``where.line`` names the line of a bad one
_Items = Callable[[Iterator[str], Lines, list[str] | None], Iterator[Any]]


def _no_header(_lines: Iterator[str], _where: Lines) -> list[str] | None:
    return None


def _jsonl(lines: Iterator[str], where: Lines, _header: list[str] | None) -> Iterator[Any]:
    """One JSON value a line; blank lines skipped."""
    for line in lines:
        if line.strip():
            yield _json_value(line, where)


def _jsonl_scan(lines: Iterator[str], where: Lines, _header: list[str] | None) -> Iterator[Any]:
    accepts = orjson.loads
    for line in lines:
        if line.strip():
            try:
                accepts(line)
            except orjson.JSONDecodeError:
                _json_value(line, where)
            yield None


def _json_value(line: str, where: Lines) -> Any:
    try:
        return json.loads(line)
    except json.JSONDecodeError as exc:
        raise BadLine(where.line, f"not a JSON value: {exc.msg} (column {exc.colno})") \
            from None
    except RecursionError:
        raise BadLine(where.line, "not a JSON value: nested too deeply") from None


def _csv_header(lines: Iterator[str], where: Lines) -> list[str] | None:
    try:
        return next(csv.reader(lines), None)
    except csv.Error as exc:
        raise BadLine(where.line, f"not a CSV row: {exc}") from None


def _csv(lines: Iterator[str], where: Lines, header: list[str] | None) -> Iterator[Any]:
    """One mapping a row, keyed by the header (``csv.DictReader``'s rows)."""
    if header is None:  # an empty file
        return
    reader = csv.DictReader(lines, fieldnames=header)
    while True:
        try:
            row = next(reader, None)
        except csv.Error as exc:
            raise BadLine(where.line, f"not a CSV row: {exc}") from None
        if row is None:
            return
        if None in row:
            raise BadLine(where.line, "this row has more fields than the header")
        yield dict(row)


def _text(lines: Iterator[str], _where: Lines, _header: list[str] | None) -> Iterator[Any]:
    """One string a line, without its line end."""
    return lines


@dataclass(frozen=True)
class Format:
    """How one kind of map file is read."""

    name: str
    header: Callable[[Iterator[str], Lines], list[str] | None]  # reads lines before item 0
    items: _Items
    scan: _Items  # items, or Nones, one an item: what the check reads the file with


FORMATS = {
    ".jsonl": Format("jsonl", _no_header, _jsonl, _jsonl_scan),
    ".csv": Format("csv", _csv_header, _csv, _csv),
}
TEXT = Format("text", _no_header, _text, _text)


def format_for(suffix: str) -> Format:
    """The format of a file ending in ``suffix`` (any case); text for any other suffix."""
    return FORMATS.get(suffix.lower(), TEXT)
