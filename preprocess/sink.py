"""Outputs that appear whole or not at all.

Each output buffers up to one part; small ones are one PutObject at commit, larger ones a
multipart upload whose parts go up in background threads while the split goes on, completed
only at commit and aborted on any failure.
"""
from __future__ import annotations

import os
import threading
from concurrent.futures import Future, ThreadPoolExecutor, wait

PART_SIZE = 8 << 20
PARTS_IN_FLIGHT = 2          # bounds memory: at most this many parts wait for the network


class Uploader:
    """Background part uploads shared by a set of outputs, with a bound on parts held in memory."""

    def __init__(self, workers: int = PARTS_IN_FLIGHT):
        self.pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="upload")
        self.slots = threading.BoundedSemaphore(workers)

    def submit(self, fn, *args, **kwargs) -> Future:
        self.slots.acquire()
        future = self.pool.submit(fn, *args, **kwargs)
        future.add_done_callback(lambda _: self.slots.release())
        return future

    def close(self) -> None:
        self.pool.shutdown(wait=True)


class S3Output:
    def __init__(self, s3, bucket: str, key: str, content_type: str, uploader: Uploader | None = None):
        self.s3, self.bucket, self.key, self.content_type = s3, bucket, key, content_type
        self.uploader = uploader
        self.buffer = bytearray()
        self.upload_id: str | None = None
        self.parts: list[Future] = []

    def write(self, data: bytes) -> None:
        self.buffer += data
        if len(self.buffer) >= PART_SIZE:
            self._upload_part()

    def _send(self, number: int, body: bytes) -> dict:
        response = self.s3.upload_part(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                       PartNumber=number, Body=body)
        return {"PartNumber": number, "ETag": response["ETag"]}

    def _upload_part(self) -> None:
        if self.upload_id is None:
            self.upload_id = self.s3.create_multipart_upload(
                Bucket=self.bucket, Key=self.key, ContentType=self.content_type)["UploadId"]
        number, body = len(self.parts) + 1, bytes(self.buffer)
        self.buffer.clear()
        if self.uploader is None:
            done: Future = Future()
            done.set_result(self._send(number, body))
            self.parts.append(done)
        else:
            self.parts.append(self.uploader.submit(self._send, number, body))

    def commit(self) -> None:
        if self.upload_id is None:
            self.s3.put_object(Bucket=self.bucket, Key=self.key, Body=bytes(self.buffer), ContentType=self.content_type)
        else:
            if self.buffer:
                self._upload_part()
            parts = [future.result() for future in self.parts]     # re-raises a failed part
            self.s3.complete_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id,
                                              MultipartUpload={"Parts": parts})
        self.buffer.clear()

    def abort(self) -> None:
        """Drop what was written; the output may be written again from the start."""
        wait(self.parts)
        if self.upload_id is not None:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
            self.upload_id = None
        self.parts.clear()
        self.buffer.clear()


class Outputs:
    """A set of outputs committed together: `with Outputs(...) as out:` aborts all of them on error."""

    def __init__(self, outputs: dict, uploader: Uploader | None = None):
        self.outputs, self.uploader = outputs, uploader

    def __getitem__(self, name: str):
        return self.outputs[name]

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, kind, error, trace) -> bool:
        if kind is not None:
            self.abort()
        if self.uploader is not None:
            self.uploader.close()
        return False

    def abort(self) -> None:
        for output in self.outputs.values():
            output.abort()
    def commit(self) -> None:
        """Complete every output; the completions run side by side (each is one request)."""
        if self.uploader is None or len(self.outputs) < 2:
            for output in self.outputs.values():
                output.commit()
            return
        # Not on the uploader's pool: a completion waits for its parts, which run there.
        with ThreadPoolExecutor(max_workers=len(self.outputs), thread_name_prefix="commit") as pool:
            for future in [pool.submit(output.commit) for output in self.outputs.values()]:
                future.result()


class FileOutput:
    """The same contract on a local disk (benchmarks, tools): a temp file renamed at commit."""

    def __init__(self, path: str):
        self.path, self.partial = path, f"{path}.partial"
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.file = None

    def write(self, data: bytes) -> None:
        if self.file is None:
            self.file = open(self.partial, "wb")
        self.file.write(data)

    def commit(self) -> None:
        self.write(b"")
        self.file.close()
        os.replace(self.partial, self.path)
        self.file = None

    def abort(self) -> None:
        """Drop what was written; the output may be written again from the start."""
        if self.file is not None:
            self.file.close()
            os.remove(self.partial)
            self.file = None
