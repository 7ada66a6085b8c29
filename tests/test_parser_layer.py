"""The preprocess Lambda's pyarrow: a layer built from the pinned wheel, holding what the parser loads."""
import hashlib
import io
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pulumi.runtime.settings
import pyarrow
import pytest

from infra import parser
from sagestep.synth import synthesize


def small_wheel() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as wheel:
        for name in ("pyarrow/__init__.py", "pyarrow/libarrow.so.2200", "pyarrow/libarrow.so", "pyarrow/_flight.py",
                     "pyarrow/include/arrow/api.h", "pyarrow-1.dist-info/licenses/LICENSE.txt"):
            wheel.writestr(name, name)
    return out.getvalue()


def test_the_layer_holds_what_the_parser_loads_and_nothing_it_does_not(tmp_path):
    """The layer's rule (parser.DROPPED) applied to this environment's pyarrow (the same release, for this
    machine): pyarrow.csv and pyarrow.compute import from what it keeps alone."""
    site = Path(pyarrow.__file__).parent.parent
    dropped = []
    for path in sorted(site.glob("pyarrow/**/*")):
        name = path.relative_to(site).as_posix()
        if not path.is_file() or "__pycache__" in path.parts:
            continue
        if parser.DROPPED.search(name):
            dropped.append(name)
        else:
            (tmp_path / "python" / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, tmp_path / "python" / name)
    assert any("flight" in name for name in dropped) and any("/include/" in name for name in dropped)
    found = subprocess.run(
        [sys.executable, "-S", "-c", "import sys; sys.path.insert(0, sys.argv[1]); import pyarrow.csv, "
         "pyarrow.compute; print(pyarrow.__file__)", str(tmp_path / "python")], capture_output=True, text=True)
    assert found.returncode == 0, found.stderr[-2000:]
    assert found.stdout.strip().startswith(str(tmp_path)), "imported from the layer, not the environment"


def test_the_same_wheel_gives_the_same_layer():
    layer = parser.layer_zip(small_wheel())
    assert layer == parser.layer_zip(small_wheel())
    assert zipfile.ZipFile(io.BytesIO(layer)).namelist() == ["python/pyarrow-1.dist-info/licenses/LICENSE.txt",
                                                            "python/pyarrow/__init__.py",
                                                            "python/pyarrow/libarrow.so.2200"]


@pytest.mark.parametrize("limit", ["DIRECT_UPLOAD_BYTES", "EXTRACTED_BYTES"])
def test_a_layer_past_lambdas_size_quotas_is_refused_before_any_upload(monkeypatch, limit):
    wheel = small_wheel()
    layer = zipfile.ZipFile(io.BytesIO(parser.layer_zip(wheel)))
    size = len(parser.layer_zip(wheel)) if limit == "DIRECT_UPLOAD_BYTES" else sum(
        item.file_size for item in layer.infolist())
    monkeypatch.setattr(parser, limit, size)
    assert parser.layer_zip(wheel)          # at the quota: taken
    monkeypatch.setattr(parser, limit, size - 1)
    with pytest.raises(RuntimeError, match="the parser layer is .* MiB zipped and .* MiB extracted; Lambda takes"):
        parser.layer_zip(wheel)


def test_a_deployment_builds_the_layer_once_from_a_wheel_with_the_pinned_hash(tmp_path, monkeypatch):
    monkeypatch.setattr(pulumi.runtime.settings, "get_monitor", lambda: None)       # not under the mocks
    wheel = small_wheel()
    pinned = parser.Wheel("https://example.invalid/pyarrow-0-py3-none-any.whl", hashlib.sha256(wheel).hexdigest())
    fetched = []
    path = parser.layer_archive(pinned, tmp_path, get=lambda w: fetched.append(w) or wheel)
    assert path == parser.layer_path(pinned, tmp_path) and path.read_bytes() == parser.layer_zip(wheel)
    assert parser.layer_archive(pinned, tmp_path, get=lambda w: fetched.append(w) or wheel) == path
    assert fetched == [pinned], "fetched once"


def test_a_wheel_with_another_hash_is_refused(monkeypatch):
    monkeypatch.setattr(parser.urllib.request, "urlopen", lambda url, timeout: io.BytesIO(b"not the wheel"))
    with pytest.raises(RuntimeError, match="not the pinned ce20fe"):
        parser.fetch(parser.PYARROW)


def test_the_function_runs_with_the_layer_for_its_runtime_and_architecture():
    stack = synthesize("layer", {})
    layer = stack.one("aws:lambda/layerVersion:LayerVersion")["inputs"]
    function = stack.one("aws:lambda/function:Function")["inputs"]
    assert layer["compatibleRuntimes"] == [function["runtime"]] == ["python3.13"]
    assert layer["compatibleArchitectures"] == function["architectures"] == ["arm64"]
    assert layer["code"] == {"file": parser.layer_path().relative_to(parser.ROOT).as_posix()}
    assert "cp313-cp313-manylinux_2_28_aarch64" in layer["code"]["file"]
    assert function["layers"] == ["arn:aws:lambda:us-east-1:123456789012:layer:sagestep-layer-preprocess-pyarrow:1"]


def test_a_local_synthesis_is_reused_without_the_layer_a_deployment_builds():
    from sagestep import synth
    assert synth.LAYERS == parser.LAYERS_DIR.relative_to(parser.ROOT).as_posix() + "/"
