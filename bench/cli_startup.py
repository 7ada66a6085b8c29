"""How fast the command line answers: `sagestep --help`, `--version` and every `COMMAND --help`, beside
the bare interpreter and beside what `--help` used to load (the stack's Pulumi SDK, rich and the definition).

  python bench/cli_startup.py            # median of 15 runs each, and the modules each one imports
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SAGESTEP = [sys.executable, "-m", "sagestep"]
# Before the CLI imported lazily, `sagestep --help` loaded these (pulumi through infra.settings' ConfigError).
BEFORE = "import pulumi, pulumi.runtime.config, rich.console, rich.table, statemachine, infra.settings"


def timed(command: list[str], runs: int) -> tuple[float, int]:
    """(median seconds, modules imported) of a command run from the project folder."""
    seconds = []
    for _ in range(runs):
        started = time.perf_counter()
        subprocess.run(command, cwd=ROOT, capture_output=True, check=True)
        seconds.append(time.perf_counter() - started)
    log = subprocess.run([command[0], "-X", "importtime", *command[1:]], cwd=ROOT, capture_output=True, text=True)
    return statistics.median(seconds), log.stderr.count("import time:") - 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    from sagestep.cli import build_parser

    commands = sorted(build_parser()._subparsers._group_actions[0].choices)
    rows = [("python -c pass (the interpreter alone)", [sys.executable, "-c", "pass"]),
            ("what --help loaded before (pulumi, rich, the stack)", [sys.executable, "-c", BEFORE])]
    rows += [(f"sagestep {' '.join(extra)}", [*SAGESTEP, *extra])
             for extra in (["--help"], ["--version"], *([command, "--help"] for command in commands))]
    print(f"{'command':<55} {'median':>8} {'modules':>8}")
    for label, command in rows:
        seconds, modules = timed(command, args.runs)
        print(f"{label:<55} {seconds * 1000:>6.0f} ms {modules:>8}")


if __name__ == "__main__":
    main()
