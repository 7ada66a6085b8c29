"""What a command checks of its arguments before it imports an SDK or starts an engine: a mistake is one
line at once, not after seconds of start-up."""
from __future__ import annotations

import gzip
import socket
import zlib
from pathlib import Path

from .errors import UsageError

DATASET_SUFFIXES = (".csv", ".gz", ".txt")


def dataset_files(folder: Path) -> list[Path]:
    """A folder's shards: its CSV files, in any sub-folder, as a prefix of shards holds them."""
    return sorted(path for path in folder.rglob("*") if path.is_file() and path.name.lower().endswith(DATASET_SUFFIXES)
                  and not path.name.startswith(("_", ".")))


def check_dataset(dataset: str) -> None:
    """A local DATASET is a CSV file or a folder of shards (an s3:// URI is the engine's to read)."""
    if dataset.startswith("s3://"):
        return
    path = Path(dataset)
    if path.is_dir():
        if not dataset_files(path):
            raise UsageError(f"{dataset}: a folder with no CSV shard (expected .csv, .csv.gz or .txt files)")
    elif not path.is_file():
        raise UsageError(f"{dataset}: no such file or folder")
    elif not path.name.lower().endswith(DATASET_SUFFIXES):
        raise UsageError(f"{dataset}: not a CSV file (expected .csv, .csv.gz or .txt)")
    for file in dataset_files(path) if path.is_dir() else [path]:
        _check_format(file)


def _check_format(file: Path) -> None:
    """A file whose first bytes say JSON, Parquet or a workbook is refused here, as the preprocess step would
    refuse it (NotCsv), before the engine starts."""
    from preprocess.formats import not_csv_message

    try:
        with file.open("rb") as raw:
            gzipped = raw.read(2) == b"\x1f\x8b"
            raw.seek(0)
            with (gzip.open(raw) if gzipped else raw) as stream:
                first = stream.read(4096)
    except (OSError, EOFError, zlib.error):
        return                                  # the preprocess step names a broken gzip file, with its place
    message = not_csv_message(str(file), first.removeprefix(b"\xef\xbb\xbf"))
    if message:
        raise UsageError(message)


def writable_folder(path: Path) -> Path:
    """The folder a run's files go to, made now: a folder that cannot be written is a mistake to say
    before the run, not after it."""
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / ".sagestep-write-check"
        probe.touch()
        probe.unlink()
    except OSError as error:
        raise UsageError(f"--out {path}: cannot write there ({error.strerror})") from None
    return path


def free_port(host: str, port: int) -> int:
    """The port to serve on (0: a free one), refused at once when it is taken."""
    with socket.socket() as probe:
        try:
            probe.bind((host, port))
        except OSError as error:
            raise UsageError(f"cannot listen on {host}:{port}: {error.strerror}") from None
        return probe.getsockname()[1]
