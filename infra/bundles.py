"""Deterministic code bundles: the same sources give the same bytes, under a content-hashed key."""
from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
from dataclasses import dataclass
from pathlib import Path

from preprocess import layout

ROOT = Path(__file__).resolve().parent.parent
BUILD_DIR = ROOT / ".sagestep" / "bundles"
SOURCE_SUFFIXES = (".py", ".txt", ".json")


@dataclass(frozen=True)
class Bundle:
    name: str
    path: Path          # the tar.gz on disk (what Pulumi uploads)
    sha256: str

    @property
    def key(self) -> str:
        return f"{layout.code_key_prefix(self.name)}{self.sha256[:16]}.tar.gz"


def source_files(directory: Path) -> list[Path]:
    """The files that ship: sources only, no caches, in a stable order."""
    return sorted(p for p in directory.rglob("*")
                  if p.is_file() and p.suffix in SOURCE_SUFFIXES and "__pycache__" not in p.parts)


def tar_gz(directory: Path) -> bytes:
    """A tar.gz of directory's sources at the archive root (script mode's sourcedir), without
    timestamps, owners or modes that vary between machines."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for path in source_files(directory):
            data = path.read_bytes()
            info = tarfile.TarInfo(path.relative_to(directory).as_posix())
            info.size, info.mtime, info.mode = len(data), 0, 0o644
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            archive.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as compressed:
        compressed.write(raw.getvalue())
    return out.getvalue()


def build(name: str, directory: Path, build_dir: Path = BUILD_DIR) -> Bundle:
    data = tar_gz(directory)
    digest = hashlib.sha256(data).hexdigest()
    build_dir.mkdir(parents=True, exist_ok=True)
    path = build_dir / f"{name}-{digest[:16]}.tar.gz"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)
    return Bundle(name=name, path=path, sha256=digest)
