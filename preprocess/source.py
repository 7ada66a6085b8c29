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
from .errors import DatasetAccessDenied, DatasetNotFound, DatasetTooLarge, InvalidEncoding

CHUNK = 4 << 20
GZIP_MAGIC = b"\x1f\x8b"
BOM = b"\xef\xbb\xbf"
# What one run reliably processes, in bytes of input per second (the slower, quoted-text path),
# and the compression a gzip CSV typically has; together they bound what one Lambda run can finish.
SAFE_BYTES_PER_SECOND = 25 << 20
GZIP_RATIO = 5


def chunks(stream: BinaryIO, gzipped: bool, where: str, size: int = CHUNK) -> Iterator[bytes]:
    """Read fixed-size chunks; decompress gzip incrementally; drop a leading BOM. The stream is
    closed when the iterator ends or is closed early."""
    try:
        yield from _decoded(stream, gzipped, where, size)
    finally:
        stream.close()


def _decoded(stream: BinaryIO, gzipped: bool, where: str, size: int) -> Iterator[bytes]:
    decompressor = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS) if gzipped else None
    first = True
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
        if first and data:
            data = data[len(BOM):] if data.startswith(BOM) else data
            first = False
        if data:
            yield data
    if decompressor is not None:
        if not decompressor.eof:
            raise InvalidEncoding(f"{where} is a truncated gzip file")
        rest = decompressor.flush()
        if rest:
            yield rest


class S3Dataset:
    """One dataset object: its size, whether it is gzip, and fresh chunk streams (one per pass)."""

    def __init__(self, s3, bucket: str, key: str):
        self.s3, self.bucket, self.key = s3, bucket, key
        self.where = f"s3://{bucket}/{key}"
        try:
            head = s3.head_object(Bucket=bucket, Key=key)
        except ClientError as error:
            raise self._error(error) from None
        self.size = head["ContentLength"]
        self.etag = head["ETag"]
        self.gzipped = key.endswith(".gz") or head.get("ContentEncoding") == "gzip" or self._starts_with_gzip_magic()

    def _error(self, error: ClientError) -> Exception:
        code = error.response["Error"]["Code"]
        if code in ("NoSuchKey", "NoSuchBucket", "404", "NotFound"):
            return DatasetNotFound(f"{self.where} does not exist")
        if code in ("AccessDenied", "403", "Forbidden", "AllAccessDisabled"):
            return DatasetAccessDenied(
                f"{self.where} cannot be read by the stack; datasets are read from "
                f"s3://{os.environ.get('DATA_BUCKET', '<data bucket>')}/{layout.DATASETS_PREFIX} and the "
                "buckets in sagestep:datasetBuckets")
        return error

    def _starts_with_gzip_magic(self) -> bool:
        if self.size < 2:
            return False
        return self._get(Range="bytes=0-1")["Body"].read() == GZIP_MAGIC

    def _get(self, **extra):
        try:
            # IfMatch: every pass reads the same version of the object.
            return self.s3.get_object(Bucket=self.bucket, Key=self.key, IfMatch=self.etag, **extra)
        except ClientError as error:
            raise self._error(error) from None

    def check_size(self, remaining_ms: int) -> None:
        """Refuse what cannot finish in the time this invocation has left."""
        expanded = self.size * (GZIP_RATIO if self.gzipped else 1)
        limit = remaining_ms / 1000 * SAFE_BYTES_PER_SECOND
        if expanded > limit:
            raise DatasetTooLarge(
                f"{self.where} is {self.size / 1e9:.2f} GB{' gzip' if self.gzipped else ''}; one preprocess run "
                f"with {remaining_ms / 1000:.0f} s left handles about {limit / 1e9:.2f} GB of CSV "
                f"({SAFE_BYTES_PER_SECOND >> 20} MB/s): split the dataset into several files or raise "
                "sagestep:preprocessTimeoutSeconds")

    def chunks(self) -> Iterator[bytes]:
        return chunks(_Prefetch(self._get()["Body"]), self.gzipped, self.where)


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
