"""The dataset as a stream of byte chunks: from S3 (or any file-like), gunzipped when needed,
without the UTF-8 byte order mark."""
from __future__ import annotations

import os
import queue
import threading
import zlib
from typing import BinaryIO, Iterator

from botocore.exceptions import ClientError

from . import layout
from .errors import DatasetAccessDenied, DatasetChanged, DatasetNotFound, InvalidEncoding

CHUNK = 4 << 20
GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"


def chunks(stream: BinaryIO, gzipped: bool, where: str, size: int = CHUNK) -> Iterator[bytes]:
    """Read fixed-size chunks; decompress gzip incrementally; drop a leading BOM. The stream is
    closed when the iterator ends or is closed early."""
    return without_bom(decoded(stream, gzipped, where, size))


def without_bom(chunks: Iterator[bytes]) -> Iterator[bytes]:
    """The chunks without a UTF-8 byte order mark at their start (closing it closes them)."""
    try:
        for first in chunks:
            if first:
                yield first[len(BOM):] if first.startswith(BOM) else first
                break
        yield from chunks
    finally:
        chunks.close()


def decoded(stream: BinaryIO, gzipped: bool, where: str, size: int = CHUNK) -> Iterator[bytes]:
    """The stream's bytes in fixed-size chunks, gunzipped when gzipped; the stream is closed when the
    iterator ends or is closed early."""
    try:
        yield from _decoded(stream, gzipped, where, size)
    finally:
        stream.close()


def _decoded(stream: BinaryIO, gzipped: bool, where: str, size: int) -> Iterator[bytes]:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzipped else None
    while True:
        raw = stream.read(size)
        if not raw:
            break
        if decompressor is not None:
            try:
                data = decompressor.decompress(raw)
            except zlib.error as error:
                raise InvalidEncoding(f"{where} is not a valid gzip file ({error})") from None
        else:
            data = raw
        if data:
            yield data
    if decompressor is not None:
        if not decompressor.eof:
            raise InvalidEncoding(f"{where} is a truncated gzip file")
        rest = decompressor.flush()
        if rest:
            yield rest


class S3Object:
    """One object of a dataset (or of a run): its size, version and fresh chunk streams, one per pass,
    each reading the version the first one saw."""

    def __init__(self, s3, bucket: str, key: str, size: int | None = None, etag: str | None = None):
        self.s3, self.bucket, self.key = s3, bucket, key
        self.where = f"s3://{bucket}/{key}"
        if size is None or etag is None:
            try:
                head = s3.head_object(Bucket=bucket, Key=key)
            except ClientError as error:
                raise self.error(error) from None
            size, etag = head["ContentLength"], head["ETag"]
        self.size, self.etag = size, etag

    def error(self, error: ClientError) -> Exception:
        code = error.response["Error"]["Code"]
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
            return DatasetNotFound(f"{self.where} does not exist")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            return DatasetAccessDenied(
                f"{self.where} cannot be read by the stack; datasets are read from "
                f"s3://{os.environ.get('DATA_BUCKET', '<data bucket>')}/{layout.DATASETS_PREFIX} and the "
                "buckets in sagestep:datasetBuckets")
        if code in ("PreconditionFailed", "412"):
            return DatasetChanged(f"{self.where} changed while the run read it; start the run again")
        return error

    def get(self, first: int = 0, last: int | None = None) -> BinaryIO:
        """The object's bytes from first (to last, inclusive), streamed in the background."""
        extra = {} if first == 0 and last is None else {"Range": f"bytes={first}-{'' if last is None else last}"}
        try:
            # IfMatch: every pass reads the same version of the object.
            body = self.s3.get_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag, **extra)["Body"]
        except ClientError as error:
            raise self.error(error) from None
        return _Prefetch(body)

    def starts_with_gzip(self) -> bool:
        if self.size < len(GZIP_MAGIC):
            return False
        stream = self.get(0, len(GZIP_MAGIC) - 1)
        try:
            return stream.read(CHUNK) == GZIP_MAGIC
        finally:
            stream.close()

    def chunks(self) -> Iterator[bytes]:
        """The whole object, decoded: gunzipped when it is gzip (by its magic bytes), without a BOM."""
        stream = self.get()
        first = stream.read(CHUNK)
        return chunks(_Replay(first, stream), first.startswith(GZIP_MAGIC), self.where)


class _Replay:
    """A stream whose first block was read already (to look at it)."""

    def __init__(self, first: bytes, stream):
        self._first, self._stream = first, stream

    def read(self, size: int) -> bytes:
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return self._stream.read(size)

    def close(self) -> None:
        self._stream.close()


class _Prefetch:
    """Reads the next block in a background thread while the split works on this one."""

    def __init__(self, stream: BinaryIO, depth: int = 1):
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stream = stream
        self._thread = threading.Thread(target=self._run, name="prefetch", daemon=True)
        self._size = CHUNK
        self._stopped = threading.Event()
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stopped.is_set():
                block = self._stream.read(self._size)
                self._queue.put(block)
                if not block:
                    return
        except BaseException as error:  # noqa: BLE001 - handed to the reading thread
            self._queue.put(error)

    def read(self, size: int) -> bytes:
        block = self._queue.get()
        if isinstance(block, BaseException):
            raise block
        return block

    def close(self) -> None:
        """Stop reading (a pass that ended early), free the queue, release the connection."""
        self._stopped.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.05)
            except queue.Empty:
                pass
        self._stream.close()
