"""The dataset as work items, so that many Lambdas share it: one object or every shard under a prefix,
and each plain object larger than RANGE_BYTES cut into byte ranges.

A range owns the records that start inside it: it skips to the first line break at or after its start
(the previous range reads that record to its end) and reads past its end to finish its last record. The
cuts are at line breaks, so a quoted field holding a line break cannot be cut correctly: a ranged object
refuses one (csvrows.batches, single_line), and the range before the cut would see it first.
"""
from __future__ import annotations

from itertools import chain
from typing import Iterable, Iterator

from botocore.exceptions import ClientError

from .csvrows import batches, first_record_end
from .errors import DatasetNotFound, DatasetTooLarge, EmptyDataset, HeaderMismatch, InvalidEncoding, NotCsv
from .formats import not_csv_message
from .source import S3Object, decoded, without_bom

# What one Lambda reliably processes, in bytes of CSV per second (the slower, quoted-text path), and the
# compression a gzip CSV typically has: a gzip shard cannot be cut, so these bound what one can hold.
SAFE_BYTES_PER_SECOND = 25 << 20
GZIP_RATIO = 5
HEADER_BYTES = 8 << 20         # a header row longer than this is read as it is (the csv module refuses it)
SKIPPED_PREFIXES = ("_", ".")    # _SUCCESS, .crc and such, which Spark and Hadoop leave beside their shards


def is_gzip_name(key: str) -> bool:
    return key.lower().endswith(".gz")


def list_objects(s3, bucket: str, key: str) -> list[S3Object]:
    """The dataset's objects in key order: the one object a key names, or every shard under a prefix
    (a key ending in "/", or a key that names no object but is the folder of some)."""
    if not key.endswith("/"):
        try:
            return [S3Object(s3, bucket, key)]
        except DatasetNotFound:
            found = _listing(s3, bucket, f"{key}/")
            if not found:
                raise
            return found
    found = _listing(s3, bucket, key)
    if not found:
        raise DatasetNotFound(f"s3://{bucket}/{key} holds no dataset shard (no object with data under the prefix)")
    return found


def _listing(s3, bucket: str, prefix: str) -> list[S3Object]:
    objects = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            for item in page.get("Contents", []):
                name = item["Key"].rsplit("/", 1)[-1]
                if item["Size"] and name and not name.startswith(SKIPPED_PREFIXES):
                    objects.append(S3Object(s3, bucket, item["Key"], item["Size"], item["ETag"]))
    except ClientError as error:
        raise S3Object(s3, bucket, prefix, 0, "").error(error) from None
    return sorted(objects, key=lambda obj: obj.key)


def work_items(objects: list[S3Object], range_bytes: int, seconds: float) -> list[dict]:
    """One item per object, or per byte range of a large plain one, in dataset order. A gzip object is
    one item (it cannot be cut); one too large for a Lambda's seconds is refused here, before any work."""
    items = []
    for obj in objects:
        gzipped = is_gzip_name(obj.key) or (obj.size > range_bytes and obj.starts_with_gzip())
        if gzipped or obj.size <= range_bytes:
            if gzipped and obj.size * GZIP_RATIO > seconds * SAFE_BYTES_PER_SECOND:
                raise DatasetTooLarge(
                    f"{obj.where} is {obj.size / 1e9:.2f} GB of gzip, which cannot be cut into byte ranges; one "
                    f"preprocess Lambda with {seconds:.0f} s handles about "
                    f"{seconds * SAFE_BYTES_PER_SECOND / GZIP_RATIO / 1e9:.2f} GB of gzip: store it as several "
                    ".gz shards under a prefix, or uncompressed")
            cuts = [(0, None)]
        else:
            starts = range(0, obj.size, range_bytes)
            cuts = [(start, start + range_bytes if start + range_bytes < obj.size else None) for start in starts]
        for start, end in cuts:
            items.append({"item": len(items), "bucket": obj.bucket, "key": obj.key, "size": obj.size,
                          "etag": obj.etag, "start": start, "end": end, "ranged": len(cuts) > 1})
    return items


def item_where(item: dict) -> str:
    where = f"s3://{item['bucket']}/{item['key']}"
    if not item["ranged"]:
        return where
    return f"{where} (bytes {item['start']}-{'end' if item['end'] is None else item['end'] - 1})"


def item_stream(item: dict) -> str:
    """The item's own stream of split draws (rowsplit.RowSplitter): named by its object and first byte; the
    dataset's first item draws the seed's own, so a dataset of one item splits as a single stream."""
    return "" if item["item"] == 0 else f"{item['key']}@{item['start']}"


def item_object(s3, item: dict) -> S3Object:
    return S3Object(s3, item["bucket"], item["key"], item["size"], item["etag"])


def item_chunks(s3, item: dict) -> Iterator[bytes]:
    """The bytes an item owns: a whole object decoded, or the records that start in its range."""
    obj = item_object(s3, item)
    if not item["ranged"]:
        return obj.chunks()
    start = item["start"]
    owned = _owned(decoded(obj.get(max(start - 1, 0)), False, item_where(item)), start, item["end"])
    return without_bom(owned) if start == 0 else owned          # after _owned, which counts raw bytes


def _owned(raw: Iterator[bytes], start: int, end: int | None) -> Iterator[bytes]:
    """raw holds the object from byte max(start - 1, 0): yield from the first record that starts at or
    after start to the end of the last record that starts before end."""
    chunks = iter(raw)
    try:
        position = 0
        if start > 0:
            position = start - 1
            for chunk in chunks:
                cut = chunk.find(b"\n")
                if cut >= 0:
                    position += cut + 1
                    chunks = chain([chunk[cut + 1:]], chunks)
                    break
                position += len(chunk)
            else:
                return
        if end is None:
            yield from chunks
            return
        if position >= end:
            return
        for chunk in chunks:
            if position + len(chunk) < end:
                position += len(chunk)
                yield chunk
                continue
            head, tail = chunk[:end - position], chunk[end - position:]
            if head.endswith(b"\n"):
                yield head
                return
            cut = tail.find(b"\n")
            if cut >= 0:
                yield head + tail[:cut + 1]
                return
            yield chunk
            for rest in chunks:
                cut = rest.find(b"\n")
                if cut >= 0:
                    yield rest[:cut + 1]
                    return
                yield rest
            return
    finally:
        close = getattr(raw, "close", None)
        if close:
            close()


def read_header(obj: S3Object) -> list[str]:
    """The first row of an object (the dataset's header is its first shard's), read alone: a fault in a data
    row is its item's to report, with its row."""
    stream = obj.chunks()
    try:
        head = next(stream, b"")
        message = not_csv_message(obj.where, head)
        if message:
            raise NotCsv(message)
        head = head.lstrip(b"\r\n")
        while not first_record_end(head) and len(head) <= HEADER_BYTES and (more := next(stream, b"")):
            head = (head + more).lstrip(b"\r\n")
        for _, rows in batches([head[:first_record_end(head) or len(head)]], obj.where):
            if rows:
                return rows[0]
    except InvalidEncoding as error:
        raise InvalidEncoding(f"{error} (in the header row)") from None
    finally:
        stream.close()
    raise EmptyDataset(f"{obj.where} is empty (no header row)")



def data_batches(chunks: Iterable[bytes], where: str, header: list[str] | None,
                 single_line: bool = False) -> Iterator[tuple[int, list[list[str]]]]:
    """Data rows in batches, as (the row number of the batch's first row, rows). A stream that starts its
    object (header given) has its header checked against the dataset's and left out, and its rows numbered
    from 2, as in a spreadsheet; a later byte range's from 1 within the range."""
    pending_header = header is not None
    for row, rows in batches(chunks, where, single_line=single_line):
        if pending_header and rows:
            check_header(rows[0], header, where)
            rows, row, pending_header = rows[1:], row + 1, False
        if rows:
            yield row, rows


def check_header(found: list[str], header: list[str], where: str) -> None:
    if found != header:
        raise HeaderMismatch(f"{where} has the header {_line(found)}, but the dataset's first shard has "
                             f"{_line(header)}: every shard must have the same header")


def _line(fields: list[str]) -> str:
    text = ",".join(fields)
    return repr(text if len(text) <= 120 else text[:117] + "...")
