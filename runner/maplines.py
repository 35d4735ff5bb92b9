"""The lines of a UTF-8 map file, read a block at a time, cut as ``str.splitlines`` cuts them.

Data flow::

    read(BLOCK_BYTES) ── bytes ──> incremental UTF-8 decoder (a character cut by the
        block's end waits for the next block) ──> str.splitlines ──> one line at a time,
        ``offset`` (the byte where the next line starts) and ``line`` (lines so far) kept

Map files have always been cut into lines by ``str.splitlines`` (``\\n``, ``\\r``,
``\\r\\n``, ``\\v``, ``\\f``, ``\\x1c``-``\\x1e``, ``\\x85``, ``\\u2028``, ``\\u2029``), and
still are: the last line of a block is kept back until the next block unless it is
complete (one that ends in ``\\r`` is kept back too: a ``\\n`` may follow). A UTF-8 BOM
at the start of the file is skipped, as the ``utf-8-sig`` codec did.

Stdlib only.
"""

from __future__ import annotations

import codecs
from collections.abc import Callable, Iterator
from itertools import accumulate
from operator import length_hint

__all__ = ["BLOCK_BYTES", "BadLine", "Lines"]

# Bytes read at once: the memory one read holds, against the number of reads.
BLOCK_BYTES = 1 << 20

# What ends a line for str.splitlines, "\r\n" aside.
_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")


class BadLine(Exception):
    """Raised when a line of a map file cannot be read: ``line`` (1-based; None when the
    whole file is at fault) and ``message``, what is wrong with it."""

    def __init__(self, line: int | None, message: str) -> None:
        super().__init__(message)
        self.line, self.message = line, message


def _complete(piece: str) -> bool:
    """Whether a line cut by splitlines(keepends=True) ends for good at its last character."""
    return piece[-1] in _BREAKS and piece[-1] != "\r"


class Lines:
    """The lines ``read`` gives (each without its line end), from byte ``offset``.

    While they are iterated, ``offset`` is where the line after the last one given
    starts, and ``line`` the number of the last one given (``line`` starts as the
    number of lines before ``offset``). ``read(n)`` returns at most ``n`` bytes, and
    ``b""`` at the end. Both are worked out when asked for, from how far the current
    block's list of lines has been iterated: nothing is counted per line.
    """

    def __init__(self, read: Callable[[int], bytes], *, offset: int = 0, line: int = 0) -> None:
        self._read = read
        self._block: list[str] = []
        self._given: Iterator[str] = iter(self._block)
        self._ends = [offset]  # the byte after each line of the block, after its start
        self._first_line = line  # lines before the block
        self.blocks = 0  # blocks read so far

    @property
    def offset(self) -> int:
        return self._ends[self._consumed()]

    @property
    def line(self) -> int:
        return self._first_line + self._consumed()

    def _consumed(self) -> int:
        return len(self._block) - length_hint(self._given)

    def __iter__(self) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")()
        kept, first = "", self.offset == 0
        read_at = self.offset
        while True:
            block = self._read(BLOCK_BYTES)
            final = not block
            if first:
                block = self._skip_bom(block)
                read_at, first = self.offset, False
            text = kept + self._decode(decoder, block, final, read_at, kept)
            read_at += len(block)
            whole = text.splitlines(keepends=True)
            kept = "" if final or not whole or _complete(whole[-1]) else whole.pop()
            body = text[:len(text) - len(kept)]
            sizes = map(len, whole) if body.isascii() else map(len, map(str.encode, whole))
            self._ends = list(accumulate(sizes, initial=self.offset))
            self._first_line = self.line
            self._block = body.splitlines()
            self._given = iter(self._block)
            self.blocks += 1
            yield from self._given
            if final:
                return

    def _skip_bom(self, block: bytes) -> bytes:
        """The first block without a UTF-8 BOM (read on until it has 3 bytes, or the end)."""
        while len(block) < len(codecs.BOM_UTF8) and (more := self._read(BLOCK_BYTES)):
            block += more
        if block.startswith(codecs.BOM_UTF8):
            self._ends = [self.offset + len(codecs.BOM_UTF8)]
            return block[len(codecs.BOM_UTF8):]
        return block

    def _decode(self, decoder: codecs.IncrementalDecoder, block: bytes, final: bool,
                read_at: int, kept: str) -> str:
        """``block`` decoded; BadLine naming the line and the file's byte if it is not UTF-8."""
        waiting = len(decoder.getstate()[0])  # bytes of a character the last block cut
        try:
            return decoder.decode(block, final)
        except UnicodeDecodeError as exc:
            before = kept + exc.object[:exc.start].decode("utf-8", "replace")
            pieces = before.splitlines(keepends=True)
            line = self.line + len(pieces) + (not pieces or pieces[-1][-1] in _BREAKS)
            where = read_at - waiting + exc.start
            width = exc.end - exc.start
            what = (f"byte 0x{exc.object[exc.start]:02x} in position {where}" if width == 1
                    else f"bytes in position {where}-{where + width - 1}")
            raise BadLine(line, f"cannot read the map file: 'utf-8' codec can't decode "
                                f"{what}: {exc.reason}") from None
