"""The `sagestep` command."""
from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from rich.console import Console
from rich.table import Table

from . import ROOT, __version__

DEFAULT_STACK = "dev"


def _synth(args: argparse.Namespace, console: Console) -> int:
    from infra.settings import ConfigError

    from .synth import StackFileError, synthesize, write

    try:
        synthesis = synthesize(args.stack)
    except (ConfigError, StackFileError) as error:
        print(f"sagestep synth: {error}", file=sys.stderr)
        return 2
    out_dir = Path(args.out) if args.out else ROOT / ".sagestep" / "synth" / args.stack
    written = write(synthesis, out_dir)
    if args.summary:
        print_summary(synthesis, console)
    for path in written:
        console.print(f"wrote {path}")
    return 0


def print_summary(synthesis, console: Console) -> None:
    """Resources by type, the states in order, and the instance types."""
    table = Table(title=f"stack {synthesis.stack} ({synthesis.region}): what `pulumi up` would create")
    table.add_column("resource type")
    table.add_column("count", justify="right")
    for type_token, count in sorted(Counter(r["type"] for r in synthesis.resources).items()):
        table.add_row(type_token, str(count))
    console.print(table)
    definition = json.loads(synthesis.definition)
    order, name = [], definition["StartAt"]
    while name:
        order.append(name)
        name = definition["States"][name].get("Next")
    console.print("states: " + " → ".join(order))
    train = definition["States"]["Train"]["Parameters"]["ResourceConfig"]
    predict = definition["States"]["BatchPredict"]["Parameters"]["TransformResources"]
    console.print(f"training: {train['InstanceCount']} x {train['InstanceType']}; "
                  f"batch prediction: {predict['InstanceCount']} x {predict['InstanceType']}")
    console.print(f"image: {synthesis.outputs['trainingImage']}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="sagestep", description="Deploy and run the sagestep ML pipeline.")
    parser.add_argument("--version", action="version", version=f"sagestep {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    synth = commands.add_parser("synth", help="write what `pulumi up` would deploy, with no CLI and no AWS")
    synth.add_argument("--stack", default=DEFAULT_STACK, help="stack name; reads Pulumi.<stack>.yaml when present")
    synth.add_argument("--out", help="output folder (default .sagestep/synth/<stack>)")
    synth.add_argument("--summary", action="store_true", help="also print resources by type and the states")
    synth.set_defaults(run=_synth)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args, Console())


if __name__ == "__main__":
    sys.exit(main())
