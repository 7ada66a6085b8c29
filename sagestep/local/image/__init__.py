"""The SageMaker XGBoost 3.0-5 image's Python side, as a virtual environment built on first use.

Local jobs run through the image's own launcher (sagemaker-containers), which `pip install`s each code
bundle into the environment that runs it: so it gets its own environment under .sagestep/image-env,
never the project's venv. It is rebuilt when requirements.txt (or the interpreter) changes; concurrent
builders wait on a file lock, and a build happens in a temporary folder renamed into place. uv builds it
(the project's own installer, from its cache: seconds), or pip where the tool was installed without uv.
"""
from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from sagestep import ROOT

HERE = Path(__file__).resolve().parent
REQUIREMENTS = HERE / "requirements.txt"
SHIM = HERE / "shim"                       # our sagemaker_xgboost_container (script mode only)
ENV_DIR = ROOT / ".sagestep" / "image-env"
STAMP = "sagestep-requirements.sha256"
TRAINING_MODULE = "sagemaker_xgboost_container.training:main"
SERVING_MODULE = "sagemaker_xgboost_container.serving:main"


class ImageEnvError(RuntimeError):
    """The environment could not be built; the message is one line."""


def image_env() -> Path:
    """The environment's folder (bin/train, bin/python), built first if missing or out of date."""
    wanted = _digest()
    if _stamp(ENV_DIR) != wanted:
        with _locked(ENV_DIR.with_name("image-env.lock")):
            if _stamp(ENV_DIR) != wanted:
                _build(wanted)
    return ENV_DIR


def _digest() -> str:
    """Requirements and interpreter: a venv is tied to the Python that made it."""
    return hashlib.sha256(REQUIREMENTS.read_bytes() + sys.version.encode()).hexdigest()


def _stamp(env: Path) -> str | None:
    path = env / STAMP
    return path.read_text().strip() if path.is_file() else None


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _build(digest: str) -> None:
    """Under the lock: a fresh venv in a temporary folder, renamed over the old one when complete."""
    uv = _uv()
    print(f"building the SageMaker XGBoost image environment (first use, {'seconds' if uv else '~1 min'})…",
          file=sys.stderr, flush=True)
    for stale in ENV_DIR.parent.glob("image-env.tmp*"):     # left by a build that was killed
        shutil.rmtree(stale, ignore_errors=True)
    temp = Path(tempfile.mkdtemp(prefix="image-env.tmp", dir=ENV_DIR.parent))
    try:
        if uv:
            _run("uv venv", [uv, "venv", "--quiet", "--allow-existing", "--python", sys.executable, str(temp)])
            _run("uv pip install", [uv, "pip", "install", "--quiet", "--no-deps", "--compile-bytecode",
                                    "--python", str(temp / "bin/python"),
                                    "-r", str(REQUIREMENTS)])
        else:
            _run("python -m venv", [sys.executable, "-m", "venv", str(temp)])
            _run("pip install", [str(temp / "bin/python"), "-m", "pip", "install", "--quiet", "--no-deps",
                                 "--disable-pip-version-check", "-r", str(REQUIREMENTS)])
        _patch_mapping(temp)
        _relocate(temp, ENV_DIR)
        (temp / STAMP).write_text(digest)
        old = ENV_DIR.with_name(temp.name.replace("tmp", "tmp-old", 1))
        if ENV_DIR.exists():
            ENV_DIR.rename(old)
        temp.rename(ENV_DIR)
    finally:
        shutil.rmtree(temp, ignore_errors=True)
        for stale in ENV_DIR.parent.glob("image-env.tmp-old*"):
            shutil.rmtree(stale, ignore_errors=True)


def _uv() -> str | None:
    """The uv beside this interpreter (the `local` extra installs it), else one on PATH."""
    beside = Path(sys.executable).parent / "uv"
    return str(beside) if os.access(beside, os.X_OK) else shutil.which("uv")


def _run(step: str, command: list[str]) -> None:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        lines = [line for line in (result.stderr + result.stdout).splitlines() if line.strip()]
        detail = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else "")
        raise ImageEnvError(f"building the SageMaker XGBoost image environment failed at {step} "
                            f"(exit code {result.returncode}): {detail.strip()}")


def _patch_mapping(env: Path) -> None:
    """The image's Dockerfile patch: the launcher still uses collections.Mapping (gone in Python 3.10)."""
    for source in env.glob("lib/python*/site-packages/sagemaker_containers/*.py"):
        text = source.read_text()
        if "collections.Mapping" in text:
            source.write_text(text.replace("collections.Mapping", "collections.abc.Mapping"))


def _relocate(env: Path, final: Path) -> None:
    """Scripts (bin/train's shebang) and pyvenv.cfg name the folder they were built in."""
    for path in [*env.joinpath("bin").iterdir(), env / "pyvenv.cfg"]:
        if path.is_file() and not path.is_symlink():
            data = path.read_bytes()
            if str(env).encode() in data:
                path.write_bytes(data.replace(str(env).encode(), str(final).encode()))
