"""A ``{file: PATH}`` map's items, read from the file as chunks are asked for.

Data flow::

    check, once, before anything runs: one pass over the file, a block at a time
        ── every item parsed and dropped (a bad one: ConfigError, FILE:LINE, exit 2)
        ── kept: the count, the file's sha256, the CSV header, and a segment every
           SEGMENT_ITEMS items or SEGMENT_BYTES bytes (its first item, byte offset,
           line and a digest of its bytes): a few bytes per thousand items
    run: items[a:b] ── the segments that hold tasks a .. b-1, each read again from the
        still open file, its digest compared, parsed ──> a list; the last segment read
        is kept, so chunks asked for in order read the file once, and a retry of one
        task reads one segment

What the run hands out is what was checked. The file stays open from the check to
the end of the run, so a new file renamed over it changes nothing. A file written in
place is caught before any item of the changed part goes out: a segment whose bytes
differ from their digest, or a file whose size or modification time differs from the
check's, raises :class:`~runner.errors.MapFileChanged`.
"""

from __future__ import annotations

import hashlib
import io
import os
from array import array
from bisect import bisect_right
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, overload

from runner.errors import ConfigError, ConfigIssue, MapFileChanged
from runner.files import FileRefused, open_regular
from runner.mapformats import format_for
from runner.maplines import BLOCK_BYTES, BadLine, Lines

__all__ = ["SEGMENT_BYTES", "SEGMENT_ITEMS", "MapFile"]

# A segment ends after this many items: a retry of one task parses at most this many
# (more segments cost 40 bytes each, and a read and a digest each at run time)...
SEGMENT_ITEMS = 1024
# ...or once it holds this many bytes: the most one read holds at run time (beyond it
# only for a single longer item).
SEGMENT_BYTES = BLOCK_BYTES


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=16).digest()


class _Reader:
    """Reads ``fd`` from byte ``position`` on, by ``pread``: no file offset is shared."""

    def __init__(self, fd: int, position: int = 0,
                 on_block: Callable[[bytes], Any] | None = None) -> None:
        self.fd, self.position, self.on_block = fd, position, on_block

    def read(self, size: int) -> bytes:
        block = os.pread(self.fd, size, self.position)
        self.position += len(block)
        if self.on_block is not None:
            self.on_block(block)
        return block


class MapFile(Sequence[Any]):
    """The items of the map file ``path``, checked at once; ConfigError (naming ``field``
    and the bad line) if it cannot be read or a line is not an item. :meth:`close` it."""

    def __init__(self, path: Path, field: str) -> None:
        self.path, self.field = path, field
        self.format = format_for(path.suffix)
        try:
            self._fd = open_regular(path)
        except FileRefused as exc:
            raise self._invalid(None, f"cannot read the map file: {exc}") from None
        try:
            self._stat = self._stat_now()
            self._scan()
            self._digests = [_digest(self._bytes(j)) for j in range(len(self._firsts))]
            if self._stat_now() != self._stat:
                raise self._invalid(None, "the map file changed while it was being checked")
        except OSError as exc:
            self.close()
            raise self._invalid(None, f"cannot read the map file: {exc.strerror}") from None
        except BaseException:
            self.close()
            raise
        self._cached: tuple[int, list[Any]] = (-1, [])

    def _scan(self) -> None:
        """The check: every item parsed once, and what the run needs to find them again."""
        sha = hashlib.sha256()
        reader = _Reader(self._fd, on_block=sha.update)
        lines = Lines(reader.read)
        stream = iter(lines)
        self._firsts, self._offsets, self._lines = array("q", [0]), array("q", [0]), \
            array("q", [0])
        count = first = offset = blocks = 0
        try:
            self.header = self.format.header(stream, lines)
            for _item in self.format.scan(stream, lines, self.header):
                count += 1
                # Bytes are counted at the first item of each block read (a line's byte
                # offset costs more than a small item), so a segment may hold about
                # SEGMENT_BYTES + BLOCK_BYTES.
                if lines.blocks != blocks:
                    blocks = lines.blocks
                elif count - first < SEGMENT_ITEMS:
                    continue
                if count - first >= SEGMENT_ITEMS or lines.offset - offset >= SEGMENT_BYTES:
                    first, offset = count, lines.offset
                    self._cut(count, offset, lines.line)
        except BadLine as exc:
            raise self._invalid(exc.line, exc.message) from None
        if len(self._firsts) > 1 and self._firsts[-1] == count:  # the last one holds no item
            for column in (self._firsts, self._offsets, self._lines):
                column.pop()
        self.size, self.sha256, self._length = reader.position, sha.hexdigest(), count

    def _cut(self, first: int, offset: int, line: int) -> None:
        self._firsts.append(first)
        self._offsets.append(offset)
        self._lines.append(line)

    def __len__(self) -> int:
        return self._length

    def __repr__(self) -> str:
        return f"MapFile({str(self.path)!r}, {self._length} items)"

    @overload
    def __getitem__(self, index: int) -> Any: ...

    @overload
    def __getitem__(self, index: slice) -> list[Any]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            start, stop, step = index.indices(self._length)
            return self._span(start, stop) if step == 1 else \
                [self._span(i, i + 1)[0] for i in range(start, stop, step)]
        position = index + self._length if index < 0 else index
        if not 0 <= position < self._length:
            raise IndexError("map file index out of range")
        return self._span(position, position + 1)[0]

    def __iter__(self) -> Iterator[Any]:
        for segment in range(len(self._firsts)):
            yield from self._segment(segment)

    def _span(self, start: int, stop: int) -> list[Any]:
        """Items ``start .. stop - 1``, from the segments that hold them."""
        found: list[Any] = []
        segment = bisect_right(self._firsts, start) - 1
        while start < stop:
            items, first = self._segment(segment), self._firsts[segment]
            found += items[start - first:stop - first]
            start, segment = first + len(items), segment + 1
        return found

    def _segment(self, segment: int) -> list[Any]:
        """The items of one segment, read again; MapFileChanged unless it is as checked."""
        if self._cached[0] == segment:
            return self._cached[1]
        line = self._lines[segment] + 1
        try:
            if self._stat_now() != self._stat:
                raise self._changed(line, "its size or modification time is not the same")
            data = self._bytes(segment)
        except OSError as exc:
            raise self._changed(line, f"it cannot be read: {exc.strerror}") from None
        if _digest(data) != self._digests[segment]:
            raise self._changed(line, "its bytes from this line on are not the same")
        lines = Lines(io.BytesIO(data).read, offset=self._offsets[segment], line=line - 1)
        stream = iter(lines)
        try:
            header = self.format.header(stream, lines) if segment == 0 else self.header
            items = list(self.format.items(stream, lines, header))
        except BadLine as exc:  # the same bytes parse the same: only if the digest collided
            raise self._changed(exc.line, exc.message) from None
        self._cached = (segment, items)
        return items

    def _bytes(self, segment: int) -> bytes:
        """The bytes of one segment: from its offset to the next one's (or the end)."""
        start = self._offsets[segment]
        stop = self._offsets[segment + 1] if segment + 1 < len(self._offsets) else self.size
        data = os.pread(self._fd, stop - start, start)
        while len(data) < stop - start:
            more = os.pread(self._fd, stop - start - len(data), start + len(data))
            if not more:
                break
            data += more
        return data

    def _stat_now(self) -> tuple[int, int]:
        info = os.fstat(self._fd)
        return info.st_size, info.st_mtime_ns

    def _invalid(self, line: int | None, message: str) -> ConfigError:
        return ConfigError([ConfigIssue(str(self.path), line, None, self.field, message)])

    def _changed(self, line: int | None, why: str) -> MapFileChanged:
        where = str(self.path) if line is None else f"{self.path}:{line}"
        return MapFileChanged(f"{where}: the map file changed since it was "
                              f"checked ({why}); its tasks not yet started were not run")

    def close(self) -> None:
        """Close the file; idempotent. Items can no longer be read."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
