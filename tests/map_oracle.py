"""The map file reader as it was before map files streamed (whole file in memory), kept
verbatim as the oracle ``tests/test_map_stream.py`` checks ``runner.mapfile`` against."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any


class Bad(Exception):
    """The oracle's verdict on a bad file: ``line`` (None: the whole file) and message."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(line, message)
        self.line, self.message = line, message


def read_map_file(path: Path) -> list[Any]:
    """Items of a map file: ``.jsonl`` values, ``.csv`` row mappings, or text lines."""
    text = path.read_bytes().decode("utf-8-sig")
    suffix = path.suffix.lower()
    if suffix == ".jsonl":
        items = []
        for number, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                items.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise Bad(number, f"not a JSON value: {exc.msg} (column {exc.colno})") from None
        return items
    if suffix == ".csv":
        reader = csv.DictReader(text.splitlines())
        rows: list[Any] = []
        for row in reader:
            if None in row:
                raise Bad(reader.line_num, "this row has more fields than the header")
            rows.append(dict(row))
        return rows
    return text.splitlines()
