"""The preprocess Lambda's CSV parser: pyarrow for the Lambda's runtime and architecture (python3.13, arm64), as a
layer built from the pinned wheel, checked against its hash and stripped of what the parser does not load.

The wheel is fetched once, when the program runs for a deployment (`pulumi preview` / `up`), into .sagestep/layers/;
under Pulumi's mocks (`sagestep synth`, the tests, the local engine, which runs the handler with the environment's
own pyarrow, the same pin) nothing is fetched.
"""
from __future__ import annotations

import hashlib
import io
import re
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pulumi.runtime.settings
from pulumi.runtime.mocks import MockMonitor

ROOT = Path(__file__).resolve().parent.parent
LAYERS_DIR = ROOT / ".sagestep" / "layers"


@dataclass(frozen=True)
class Wheel:
    url: str
    sha256: str

    @property
    def name(self) -> str:
        return self.url.rsplit("/", 1)[-1]


# The same release as the local environment's pyarrow (pyproject.toml) and the batch-transform image's.
PYARROW = Wheel("https://files.pythonhosted.org/packages/ff/c0/782344c2ce58afbea010150df07e3a2f5fdad299cd631697ae7bd3bac6e3/"
                "pyarrow-22.0.0-cp313-cp313-manylinux_2_28_aarch64.whl",
                "ce20fe000754f477c8a9125543f1936ea5b8867c5406757c224d745ed033e691")
RUNTIME, ARCHITECTURE = "python3.13", "arm64"
# Lambda's quotas (AccountLimit CodeSizeZipped, CodeSizeUnzipped): a zip uploaded directly, and a function's code
# with its layers once extracted; the function's own code is a few hundred KB.
DIRECT_UPLOAD_BYTES, EXTRACTED_BYTES = 50 * 1024 * 1024, 250 * 1024 * 1024
# Not loaded by `import pyarrow.csv, pyarrow.compute`: Flight (24 MB), the C++ tests, headers and Cython sources, and
# the unversioned and fully versioned copies of a library whose soname (lib*.so.2200) is kept.
DROPPED = re.compile(r"^pyarrow/(?:include/|tests/|src/|.*flight|_pyarrow_cpp_tests)|"
                     r"\.(?:pxd|pyx|pxi|h|hpp|cc|cpp|cmake)$|^pyarrow/lib[a-z_]+\.so(?:\.\d+\.\d+\.\d+)?$")


def layer_zip(wheel: bytes) -> bytes:
    """The layer's zip: the wheel's files under python/ (on the Lambda's path), less DROPPED, in a stable order
    with fixed dates, so the same wheel gives the same bytes."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(wheel)) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as layer:
        for info in sorted(source.infolist(), key=lambda item: item.filename):
            if info.is_dir() or DROPPED.search(info.filename):
                continue
            entry = zipfile.ZipInfo(f"python/{info.filename}", date_time=(1980, 1, 1, 0, 0, 0))
            entry.external_attr = (0o755 if info.filename.endswith(".so") or ".so." in info.filename else 0o644) << 16
            layer.writestr(entry, source.read(info), zipfile.ZIP_DEFLATED)
        extracted = sum(item.file_size for item in layer.infolist())
    zipped = out.getbuffer().nbytes
    if zipped > DIRECT_UPLOAD_BYTES or extracted > EXTRACTED_BYTES:
        raise RuntimeError(f"the parser layer is {zipped / 2**20:.1f} MiB zipped and {extracted / 2**20:.1f} MiB "
                           f"extracted; Lambda takes at most {DIRECT_UPLOAD_BYTES / 2**20:.0f} MiB uploaded directly "
                           f"and {EXTRACTED_BYTES / 2**20:.0f} MiB extracted")
    return out.getvalue()


def layer_path(wheel: Wheel = PYARROW, directory: Path = LAYERS_DIR) -> Path:
    """Where the layer's zip is, named by the wheel's hash."""
    return directory / f"{wheel.name.removesuffix('.whl')}-{wheel.sha256[:16]}.zip"


def fetch(wheel: Wheel) -> bytes:
    """The wheel from PyPI, refused unless it has the pinned hash."""
    with urllib.request.urlopen(wheel.url, timeout=120) as response:
        data = response.read()
    digest = hashlib.sha256(data).hexdigest()
    if digest != wheel.sha256:
        raise RuntimeError(f"{wheel.url} has sha256 {digest}, not the pinned {wheel.sha256}")
    return data


def layer_archive(wheel: Wheel = PYARROW, directory: Path = LAYERS_DIR, get=fetch) -> Path:
    """The layer's zip, built from the wheel the first time a deployment needs it (not under the mocks)."""
    path = layer_path(wheel, directory)
    if not path.exists() and not isinstance(pulumi.runtime.settings.get_monitor(), MockMonitor):
        directory.mkdir(parents=True, exist_ok=True)
        partial = path.with_suffix(".partial")
        partial.write_bytes(layer_zip(get(wheel)))
        partial.replace(path)
    return path
