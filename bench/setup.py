"""How long a new user waits: `make run` on a fresh clone (venv, image environment and the run), warm, and
what `pulumi install` installs, with uv (the project's installer) beside pip (the baseline), in one run.

  python bench/setup.py                  # fresh clone with this machine's uv cache, then warm; pip vs uv
  python bench/setup.py --cold-cache     # also a fresh clone with an empty uv cache (downloads everything)
  python bench/setup.py --pip-full       # also pip installing every pin of uv.lock (minutes)

It clones the committed HEAD, so commit what you measure.
"""
from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(command: list[str], cwd: Path, env: dict[str, str] | None = None) -> float:
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, env={**os.environ, **(env or {})})
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed in {cwd}:\n{result.stdout[-2000:]}{result.stderr[-2000:]}")
    return time.perf_counter() - started


def size(path: Path) -> str:
    return subprocess.run(["du", "-sh", str(path)], capture_output=True, text=True).stdout.split()[0]


def fresh_clone(work: Path, name: str) -> Path:
    clone = work / name
    subprocess.run(["git", "clone", "--quiet", str(ROOT), str(clone)], check=True)
    return clone


def make_run(clone: Path, label: str, env: dict[str, str] | None = None) -> None:
    seconds = run(["make", "run"], clone, env)
    print(f"{label:<62} {seconds:>7.1f} s   .venv {size(clone / '.venv')}, image env "
          f"{size(clone / '.sagestep/image-env')}")


def stack_install(work: Path, uv: Path) -> None:
    """What `pulumi install` installs (requirements.txt, the stack's closure): pip beside uv."""
    pip_venv, uv_venv = work / "pip-stack", work / "uv-stack"
    seconds_pip = run([sys.executable, "-m", "venv", str(pip_venv)], work)
    seconds_pip += run([str(pip_venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", "-r",
                        str(ROOT / "requirements.txt")], work)
    seconds_uv = run([str(uv), "venv", "--quiet", str(uv_venv)], work)
    seconds_uv += run([str(uv), "pip", "install", "--quiet", "--python", str(uv_venv / "bin/python"), "-r",
                       str(ROOT / "requirements.txt")], work)
    print(f"{'the stack closure (requirements.txt), pip':<62} {seconds_pip:>7.1f} s   {size(pip_venv)}")
    print(f"{'the stack closure (requirements.txt), uv':<62} {seconds_uv:>7.1f} s   {size(uv_venv)}")


def pip_full(work: Path, uv: Path) -> None:
    lock = work / "all.txt"
    run([str(uv), "export", "--quiet", "--frozen", "--all-extras", "--no-emit-project", "--no-hashes",
         "--output-file", str(lock)], ROOT)
    venv = work / "pip-all"
    seconds = run([sys.executable, "-m", "venv", str(venv)], work)
    seconds += run([str(venv / "bin/pip"), "install", "--quiet", "--disable-pip-version-check", "-r", str(lock)], work)
    print(f"{'every pin of uv.lock, pip (the old make: pip)':<62} {seconds:>7.1f} s   {size(venv)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cold-cache", action="store_true")
    parser.add_argument("--pip-full", action="store_true")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="sagestep-setup-") as temp:
        work = Path(temp)
        print(f"{'what':<62} {'seconds':>9}   size")
        if args.cold_cache:
            make_run(fresh_clone(work, "cold"), "make run, fresh clone, empty uv cache (downloads all)",
                     {"UV_CACHE_DIR": str(work / "uv-cache")})
        clone = fresh_clone(work, "clone")
        make_run(clone, "make run, fresh clone, this machine's uv cache")
        make_run(clone, "make run, warm (venv and image env in place)")
        uv = clone / ".sagestep/uv/bin/uv"
        stack_install(work, uv)
        if args.pip_full:
            pip_full(work, uv)
        shutil.rmtree(work / "uv-cache", ignore_errors=True)


if __name__ == "__main__":
    main()
