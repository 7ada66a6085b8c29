"""The command line stays light: `--help` of every command loads no cloud SDK, and the AWS path no emulator."""
import gzip
import subprocess
import sys

import pytest

from sagestep import ROOT
from sagestep.cli import build_parser

HEAVY = ("pulumi", "pulumi_aws", "grpc", "moto", "boto3", "botocore", "numpy", "yaml")
COMMANDS = sorted(build_parser()._subparsers._group_actions[0].choices)


def imported_by(args: list[str], tmp_path) -> list[str]:
    """The modules `python -m sagestep ARGS` imports (from Python's own import log)."""
    command = [sys.executable, "-X", "importtime", "-m", "sagestep", *(a.replace("{tmp}", str(tmp_path)) for a in args)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    imported = [line.rsplit("|", 1)[-1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    assert "sagestep.cli" in imported, "the import log is there"
    return imported


@pytest.mark.parametrize("args", [["--help"], ["--version"], *([command, "--help"] for command in COMMANDS)])
def test_help_and_version_load_no_sdk(args, tmp_path):
    assert not [name for name in imported_by(args, tmp_path) if name.split(".")[0] in HEAVY]


def test_synth_imports_no_emulator(tmp_path):
    assert not [name for name in imported_by(["synth", "--out", "{tmp}"], tmp_path) if name.split(".")[0] == "moto"]


def test_every_command_says_what_it_does_in_its_help():
    for command, parser in build_parser()._subparsers._group_actions[0].choices.items():
        assert parser.description and len(parser.description) > 20, f"sagestep {command} --help has no description"


def test_a_command_whose_packages_are_missing_says_which_in_one_line(monkeypatch, capsys):
    """`pip install .` without the `local` extra: a command that needs it names the package and the fix."""
    import sagestep.cli as cli

    def needs_rich(args, console):
        raise ModuleNotFoundError("No module named 'moto'", name="moto.core")

    monkeypatch.setattr("sagestep.runs.runs", needs_rich)          # what `runs` imports when it runs
    assert cli.main(["runs"]) == 2
    assert capsys.readouterr().err == ("sagestep runs: needs the package moto, which the tool's extra installs: "
                                       "pip install '.[local]' in the project folder (make run does it for you)\n")


@pytest.mark.parametrize("name, content, kind", [
    ("data.csv", b'[{"sepal_length": 5.1, "species": "setosa"}]', "JSON (or JSON Lines)"),
    ("data.csv", b'\xef\xbb\xbf{"a": 1}\n{"a": 2}\n', "JSON (or JSON Lines)"),
    ("data.csv.gz", gzip.compress(b'  {"a": 1}\n', mtime=0), "JSON (or JSON Lines)"),
    ("data.csv", b"PAR1\x15\x04\x15\x10", "a Parquet file"),
    ("shards/part-0.csv", b"PK\x03\x04\x14\x00", "a ZIP archive (an Excel .xlsx workbook is one)"),
], ids=["json", "json-lines-with-bom", "gzipped-json", "parquet", "xlsx-in-a-folder"])
def test_a_file_that_is_not_csv_is_one_line_naming_what_it_looks_like(tmp_path, name, content, kind):
    path = tmp_path / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(content)
    dataset = tmp_path / "shards" if name.startswith("shards/") else path
    result = subprocess.run([sys.executable, "-m", "sagestep", "local", str(dataset)], capture_output=True, text=True,
                            cwd=ROOT)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        f"sagestep local: {path} is not a CSV file: it looks like {kind}; export it as CSV with a header row"]
