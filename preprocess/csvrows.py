"""CSV rows from a stream of byte chunks, in batches, through the csv module (C): RFC 4180 quotes, CRLF,
blank lines dropped. Work per field stays in C: callers take columns with zip(*batch)."""
from __future__ import annotations

import csv
import io
from itertools import islice
from typing import Iterable, Iterator

from .errors import InvalidEncoding, MalformedRow, MultilineRecord

BATCH = 2048               # rows per batch: small enough that a batch stays in the CPU caches
# What the csv module's own words mean for the file.
CSV_HINTS = {
    "',' expected after '\"'": ": a quoted field ends at a quote followed by a comma or a line break, and a quote "
                               'inside it is written twice ("")',
    "unexpected end of data": ": a quoted field is not closed (its closing quote is missing)",
    "field larger than field limit": f": a field may hold at most {csv.field_size_limit():,} characters",
}


class _ChunkStream(io.RawIOBase):
    """A raw stream over an iterator of byte chunks, so io's text layer can decode it."""

    def __init__(self, chunks: Iterator[bytes]):
        self._chunks = chunks
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            chunk = next(self._chunks, b"")
            if not chunk:
                return 0
            self._pending = memoryview(chunk)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _reader(chunks: Iterable[bytes]):
    text = io.TextIOWrapper(io.BufferedReader(_ChunkStream(iter(chunks)), 1 << 20), encoding="utf-8", newline="")
    return csv.reader(text, strict=True)


def batches(chunks: Iterable[bytes], where: str, single_line: bool = False) -> Iterator[tuple[int, list[list[str]]]]:
    """(the number of the batch's first row, its non-blank rows); the stream's first row is row 1.
    single_line: a record that spans lines (a quoted field holding a line break) is refused, because
    this stream is a byte range of a larger object, cut at line breaks."""
    reader = _reader(chunks)
    row, records = 1, 0
    try:
        while True:
            batch = list(islice(reader, BATCH))
            if not batch:
                return
            records += len(batch)
            if single_line and reader.line_num != records:
                raise MultilineRecord(
                    f"{where}: a quoted field holds a line break (near line {reader.line_num}); a file this large is "
                    "cut into byte ranges at line breaks, so it cannot hold one: store the dataset as several files "
                    "(a prefix of shards) or gzip it")
            rows = list(filter(None, batch))
            yield row, rows
            row += len(rows)
    except UnicodeDecodeError as error:
        raise InvalidEncoding(f"{where} is not UTF-8 text ({error.reason} after line {reader.line_num})") from None
    except csv.Error as error:
        hint = next((hint for start, hint in CSV_HINTS.items() if str(error).startswith(start)), "")
        raise MalformedRow(f"{where}, line {reader.line_num}: {error}{hint}") from None


def read_rows(chunks: Iterable[bytes], where: str) -> Iterator[list[str]]:
    """Every non-blank row of a CSV stream, fields unquoted."""
    for _, rows in batches(chunks, where):
        yield from rows


# Where a record ends: at a line break with an even count of quotes before it (outside quotes), which holds
# where the quoting is what the csv module reads strictly.
def first_record_end(data: bytes) -> int:
    """Just past the first line break outside quotes, or 0."""
    position = 0
    while breaks := [at for at in (data.find(b"\n", position), data.find(b"\r", position)) if at >= 0]:
        position = min(breaks) + 1
        if data.count(b'"', 0, position) % 2 == 0:
            return position
    return 0


def last_record_end(data: bytes) -> int:
    """Just past the last line break outside quotes, or 0."""
    cut = max(data.rfind(b"\n"), data.rfind(b"\r")) + 1
    quotes = data.count(b'"', 0, cut)
    while cut and quotes % 2:
        earlier = max(data.rfind(b"\n", 0, cut - 1), data.rfind(b"\r", 0, cut - 1)) + 1
        quotes -= data.count(b'"', earlier, cut)
        cut = earlier
    return cut
