"""Dependencies by role: requirements.txt is what `pulumi up` needs and runs the stack program alone; the
tool installs from the project (`pip install '.[local]'`) and finds its project as `pulumi` does."""
import json
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from sagestep import ROOT, __version__

UV = Path(sys.executable).parent / "uv"     # the `local` extra's uv, the version the Makefile bootstraps
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def uv(*args: str, cwd: Path = ROOT) -> str:
    result = subprocess.run([str(UV), *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


def venv(path: Path, *install: str) -> Path:
    """A fresh venv with only what `install` names (uv pip install arguments); its python."""
    uv("venv", "--quiet", "--python", sys.executable, str(path))
    python = path / "bin" / "python"
    uv("pip", "install", "--quiet", "--python", str(python), *install)
    return python


@pytest.fixture(scope="module", autouse=True)
def scratch(tmp_path_factory):
    """uv's lock files and build folders go under the test's own temporary folder, not the system's /tmp."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TMPDIR", str(tmp_path_factory.mktemp("uv-tmp")))
        yield


def pins(text: str) -> list[str]:
    return sorted(line.split()[0].lower() for line in text.splitlines() if re.match(r"^[A-Za-z0-9]", line))


@pytest.fixture(scope="module")
def deploy_python(tmp_path_factory) -> Path:
    return venv(tmp_path_factory.mktemp("deploy") / "venv", "-r", str(ROOT / "requirements.txt"))


def test_requirements_txt_is_the_lock_s_stack_dependencies_and_nothing_else():
    exported = uv("export", "--frozen", "--no-emit-project", "--no-hashes")
    assert pins((ROOT / "requirements.txt").read_text()) == pins(exported), "run `make lock`"
    direct = {re.split(r"[=<>\[ ]", spec)[0].lower() for spec in PYPROJECT["project"]["dependencies"]}
    assert direct == {"pulumi", "pulumi-aws", "pyyaml"}
    assert all("==" in spec for extra in PYPROJECT["project"]["optional-dependencies"].values() for spec in extra)
    assert PYPROJECT["project"]["version"] == __version__


def test_pulumi_installs_the_lock_with_the_same_installer():
    import yaml
    project = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"]["toolchain"] == "uv" and (ROOT / "uv.lock").is_file()
    # Its `uv sync` installs the stack's dependencies only: into a venv of its own, never the tool's .venv.
    assert project["runtime"]["options"]["virtualenv"] == ".venv-stack"
    assert f"UV_VERSION := {uv('--version').split()[1]}" in (ROOT / "Makefile").read_text()


def test_the_stack_program_runs_in_a_venv_with_requirements_txt_alone(deploy_python, stack, tmp_path):
    """__main__.py under Pulumi's mocks (sagestep.synth, which needs only the stack's packages), in a venv
    that holds requirements.txt and nothing else: the same definition as the suite's stack."""
    script = ("import json, sys; from sagestep.synth import synthesize, write; s = synthesize('dev', {}); "
              f"write(s, __import__('pathlib').Path({str(tmp_path)!r})); "
              "print(json.dumps(sorted(m for m in sys.modules if m.split('.')[0] in "
              "('boto3', 'botocore', 'numpy', 'moto', 'rich', 'sagemaker', 'jsonpath_ng', 'regex'))))")
    result = subprocess.run([str(deploy_python), "-c", script], cwd=ROOT, capture_output=True, text=True,
                            env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"}, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout) == []
    assert (tmp_path / "statemachine.asl.json").read_text() == stack.definition
    assert len(json.loads((tmp_path / "resources.json").read_text())) == len(stack.resources)


@pytest.fixture(scope="module")
def tool(tmp_path_factory) -> Path:
    """`pip install '.[local]'`, not editable: the installed package holds sagestep/ only."""
    python = venv(tmp_path_factory.mktemp("tool") / "venv", f"{ROOT}[local]")
    return python.parent / "sagestep"


def run_tool(tool: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(tool), *args], cwd=cwd, capture_output=True, text=True, timeout=300,
                          env={"PATH": f"{tool.parent}:/usr/bin:/bin", "HOME": str(cwd)})


def test_the_installed_tool_finds_its_project_from_a_subfolder(tool, tmp_path):
    assert run_tool(tool, "--version", cwd=tmp_path).stdout == f"sagestep {__version__}\n"
    result = run_tool(tool, "synth", "--out", str(tmp_path / "out"), cwd=ROOT / "examples")
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads((tmp_path / "out/statemachine.asl.json").read_text())["StartAt"]


def test_the_installed_tool_says_in_one_line_where_it_works(tool, tmp_path):
    result = run_tool(tool, "synth", cwd=tmp_path)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == (f"sagestep synth: no sagestep Pulumi.yaml in {tmp_path.resolve()} or above it: run sagestep "
                             "inside a sagestep project (a clone of its repository)\n")
    (tmp_path / "Pulumi.yaml").write_text("name: another\nruntime: python\n")
    other = run_tool(tool, "runs", cwd=tmp_path)
    assert other.returncode == 2 and other.stderr.count("\n") == 1 and "another Pulumi project's" in other.stderr


def imports_of(folder: Path) -> set[tuple[str, str]]:
    """(file, top-level package) of every import in a folder's Python files (or one file)."""
    import ast
    found = set()
    for path in ([folder] if folder.is_file() else sorted(folder.rglob("*.py"))):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                found |= {(path.relative_to(ROOT).as_posix(), alias.name.split(".")[0]) for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add((path.relative_to(ROOT).as_posix(), node.module.split(".")[0]))
    return found


@pytest.mark.parametrize("room, forbidden", [
    ("__main__.py", {"sagestep"}), ("infra", {"sagestep"}),
    ("statemachine", {"sagestep", "infra", "pulumi", "pulumi_aws"}),
    ("preprocess", {"sagestep", "infra", "statemachine", "pulumi"}),
    ("training", {"sagestep", "infra", "statemachine", "preprocess", "pulumi"}),
    ("inference", {"sagestep", "infra", "statemachine", "preprocess", "pulumi"}),
])
def test_imports_run_one_way(room, forbidden):
    """sagestep/ -> infra/ -> statemachine/; the code that runs in the cloud imports none of them."""
    assert sorted((path, package) for path, package in imports_of(ROOT / room) if package in forbidden) == []
