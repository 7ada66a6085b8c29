"""The AWS path does not load the emulator: `start`, `synth` and `--help` import nothing from moto."""
import subprocess
import sys

import pytest

from sagestep import ROOT


@pytest.mark.parametrize("args", [["start", "--help"], ["synth", "--help"], ["--help"], ["--version"],
                                  ["synth", "--out", "{tmp}"]])
def test_the_aws_path_imports_no_moto(args, tmp_path):
    command = [sys.executable, "-X", "importtime", "-m", "sagestep", *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert len(imported) > 50, "the import log is there"
    assert not [name for name in imported if name.split(".")[0] == "moto"]
