"""The `sagestep` command. Parsing imports nothing heavy: each command imports what it needs when it runs,
so `sagestep --help` loads no pulumi, boto3 or moto."""
from __future__ import annotations

import argparse
import importlib
import json
import math
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from . import DEFAULT_STACK, __version__

if TYPE_CHECKING:
    from rich.console import Console


def _synth(args: argparse.Namespace, console: Console) -> int:
    from . import ROOT
    from .synth import synthesize, write

    synthesis = synthesize(args.stack or DEFAULT_STACK)
    out_dir = Path(args.out) if args.out else ROOT / ".sagestep" / "synth" / synthesis.stack
    written = write(synthesis, out_dir)
    if args.summary:
        print_summary(synthesis, console)
    for path in written:
        console.print(f"wrote {path}")
    return 0


def print_summary(synthesis, console: Console) -> None:
    """Resources by type, the states in order, and the instance types."""
    from collections import Counter

    from rich.table import Table

    from statemachine import state_order
    from statemachine import summary as steps_summary
    from statemachine.tune import training_job

    from .cost import instance_price_lines
    from .synth import settings_summary

    table = Table(title=f"stack {synthesis.stack} ({synthesis.region}): what `pulumi up` would create")
    table.add_column("resource type")
    table.add_column("count", justify="right")
    for type_token, count in sorted(Counter(r["type"] for r in synthesis.resources).items()):
        table.add_row(type_token, str(count))
    console.print(table)
    definition = json.loads(synthesis.definition)
    console.print("states: " + " → ".join(state_order(definition)))
    for line in steps_summary(definition) + settings_summary(synthesis):
        console.print(line, highlight=False)
    training = training_job(definition["States"])["ResourceConfig"]
    transform = definition["States"]["BatchPredict"]["Parameters"]["TransformResources"]
    for line in instance_price_lines(training["InstanceType"], training["InstanceCount"], transform["InstanceType"],
                                     transform["InstanceCount"], synthesis.region):
        console.print(line, highlight=False)
    timeout = definition["States"]["BatchPredict"].get("TimeoutSeconds")
    if timeout:
        runtime = training_job(definition["States"])["StoppingCondition"]["MaxRuntimeInSeconds"]
        console.print(f"maxRunCostUsd: training may run {runtime // 60} min (MaxRuntimeInSeconds {runtime}), batch "
                      f"prediction {timeout // 60} min (its task's TimeoutSeconds {timeout})", highlight=False)
    console.print(f"image: {synthesis.outputs['trainingImage']}")


class OneLineParser(argparse.ArgumentParser):
    """A command-line mistake is one line and exit code 2 (argparse would print the usage first)."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def port(text: str) -> int:
    value = int(text) if text.isdigit() else -1
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port (0 to 65535; 0 picks a free one)")
    return value


def seed(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None


def number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"{text!r} is not a number")
    return value


def hyperparameter(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip() or not value.strip():
        raise argparse.ArgumentTypeError(f"{text!r} is not KEY=VALUE (e.g. max_depth=8)")
    return key.strip(), value.strip()


def split(text: str) -> dict[str, float]:
    """TRAIN,VALIDATION,TEST: three positive fractions that add up to 1."""
    try:
        ratios = [float(part) for part in text.split(",")]
    except ValueError:
        ratios = []
    if len(ratios) != 3 or min(ratios) <= 0 or abs(sum(ratios) - 1) > 1e-6:
        raise argparse.ArgumentTypeError(f"{text!r} is not TRAIN,VALIDATION,TEST fractions above 0 adding up to 1 "
                                         "(e.g. 0.7,0.15,0.15)")
    return dict(zip(("train", "validation", "test"), ratios))


def add_state_machine_option(command: argparse.ArgumentParser) -> None:
    """The deployed stack a command works on (start, runs, prune, models)."""
    command.add_argument("--state-machine-arn", help="default: $SAGESTEP_STATE_MACHINE_ARN or `pulumi stack output`")


def add_run_options(command: argparse.ArgumentParser) -> None:
    """What a run's execution input may carry besides the dataset (local and start alike)."""
    command.add_argument("--label", help="the label column (default: a column named label or target)")
    command.add_argument("--hyperparameter", metavar="KEY=VALUE", type=hyperparameter, action="append", default=[],
                         help="an XGBoost hyperparameter for this run (repeatable); overrides the stack's")
    command.add_argument("--id", metavar="COLUMN", help="a column that names each row: not a feature, and the first "
                                                        "field of every prediction, so results join back to the input")
    command.add_argument("--ignore", metavar="COLUMN", action="append", default=[],
                         help="a column to leave out of the features (repeatable)")
    command.add_argument("--quality-metric", metavar="METRIC",
                         help="the validation metric the model must reach before it is made, e.g. validation:auc "
                              "(overrides the stack's qualityMetric; \"\" turns the gate off)")
    command.add_argument("--quality-threshold", metavar="NUMBER", type=number,
                         help="the value --quality-metric must reach in its direction (overrides qualityThreshold)")
    command.add_argument("--seed", type=seed, help="the split's seed (default 42)")
    command.add_argument("--split", type=split, metavar="TRAIN,VALIDATION,TEST",
                         help="the split's fractions (default 0.7,0.15,0.15)")
    command.add_argument("--json", action="store_true", help="print one JSON object instead of progress")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="sagestep", description="Deploy and run the sagestep ML pipeline.")
    parser.add_argument("--version", action="version", version=f"sagestep {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)
    synth = commands.add_parser(
        "synth", help="write what `pulumi up` would deploy, with no CLI and no AWS",
        description="Run the stack program (__main__.py) under Pulumi's mocks, with no Pulumi CLI and no AWS "
                    "account, and write what `pulumi up` would deploy: resources.json, statemachine.asl.json and "
                    "outputs.json. A bad config value is one line and exit code 2.")
    synth.add_argument("--stack", help="stack name: reads Pulumi.<stack>.yaml when it exists, as pulumi would "
                                       f"(default {DEFAULT_STACK}; no file: the defaults)")
    synth.add_argument("--out", help="output folder (default .sagestep/synth/<stack>)")
    synth.add_argument("--summary", action="store_true", help="also print resources by type and the states")
    synth.set_defaults(run=_synth)

    local = commands.add_parser("local", help="run the pipeline on the embedded engine (no AWS, no Docker)",
                                description="sagestep local DATASET: run the pipeline on a CSV; "
                                            "sagestep local serve: keep the stack up behind an AWS-compatible endpoint")
    local.add_argument("dataset", metavar="DATASET|serve", help="a CSV or CSV.gz file, a folder of such shards with one header, an s3:// URI or prefix, or `serve`")
    add_run_options(local)
    local.add_argument("--out", help="where to copy the predictions, metrics and model (default runs/<execution>/)")
    local.add_argument("--report", action="store_true", help="also write report.html there: one self-contained page "
                                                             "of the run (graph, curves, evaluation, cost)")
    local.add_argument("--stack",
                       help=f"the stack whose settings to use (Pulumi.<stack>.yaml; default {DEFAULT_STACK})")
    local.add_argument("--host", default="127.0.0.1", help="serve: address to listen on")
    local.add_argument("--port", type=port, default=0, help="serve: port (default: a free one)")
    local.add_argument("--verbose", action="store_true",
                       help="serve: also log one line per request on stderr (client, method, path, status); "
                            "by default serve prints only its ready lines and errors")
    local.set_defaults(run=_local)

    start = commands.add_parser(
        "start", help="start a run on the deployed stack",
        description="Start an execution of the deployed state machine on a dataset in S3 and, with --wait, "
                    "follow it to the end: states, training metrics, evaluation, cost and console links. "
                    "AWS_ENDPOINT_URL points it at `sagestep local serve`.")
    start.add_argument("dataset_uri", metavar="DATASET_URI",
                       help="s3://bucket/key.csv, or a prefix of CSV and CSV.gz shards ending in /")
    add_run_options(start)
    start.add_argument("--wait", action="store_true", help="follow the execution until it ends")
    add_state_machine_option(start)
    start.set_defaults(run=_deferred("start", "start"))

    report = commands.add_parser(
        "report", help="write one self-contained report.html of a finished run",
        description="Read a finished execution (its history, jobs, logs and evaluation) and write one "
                    "self-contained report.html with its charts, beside the run's files.")
    report.add_argument("execution_arn", metavar="EXECUTION_ARN")
    report.add_argument("--out", help="where to write report.html and the run's files (default runs/<execution>/)")
    report.add_argument("--json", action="store_true", help="print {\"report\": path, \"status\"}")
    report.set_defaults(run=_deferred("start", "report_execution"))

    runs = commands.add_parser(
        "runs", help="the stack's recent executions: status, duration, metric, failed state",
        description="List the deployed stack's recent executions, newest first: status, start, duration, "
                    "the gate's metric and, for a failed run, the state that failed.")
    runs.add_argument("--last", metavar="N", type=runs_count, default=10,
                      help="how many, newest first (1 to 1000; default 10)")
    runs.add_argument("--json", action="store_true",
                      help="print {\"stateMachineArn\", \"runs\": [{\"name\", \"executionArn\", \"status\", \"start\", "
                           "\"seconds\", \"metric\", \"failedState\"}]}")
    add_state_machine_option(runs)
    runs.set_defaults(run=_deferred("runs", "runs"))

    prune = commands.add_parser("prune", description="Delete the SageMaker models this stack's executions "
                                "created, keeping the newest --keep, any younger than --older-than and any a "
                                "running transform job uses.",
                                help="delete the SageMaker models this stack's executions created, "
                                              "keeping the newest and any a running transform job uses")
    prune.add_argument("--keep", metavar="N", type=int, help="keep the newest N models (default 5)")
    prune.add_argument("--older-than", metavar="DAYS", type=number,
                       help="also keep every model younger than DAYS days")
    prune.add_argument("--dry-run", action="store_true", help="delete nothing; say what would be deleted")
    prune.add_argument("--json", action="store_true",
                       help="print {\"stack\", \"deleted\": [{\"name\", \"created\", \"alreadyGone\"}], "
                            "\"kept\": [{\"name\", \"created\", \"reason\"}], \"dryRun\"}; a dry run says "
                            "\"wouldDelete\" in place of \"deleted\"")
    add_state_machine_option(prune)
    prune.set_defaults(run=_deferred("prune", "prune"))

    models = commands.add_parser(
        "models", help="the stack's registered model versions (sagestep:registerModels); approve or reject one",
        description="List the versions the Register step added to the stack's model package group, newest first "
                    "(version, approval status, created, test metrics, execution), or set one's approval status.")
    models.add_argument("action", nargs="?", choices=("approve", "reject"),
                        help="approve: ModelApprovalStatus Approved; reject: Rejected")
    models.add_argument("version", nargs="?", metavar="VERSION", type=model_version,
                        help="the version to approve or reject")
    models.add_argument("--description", metavar="TEXT", help="with approve|reject: the ApprovalDescription")
    models.add_argument("--json", action="store_true",
                        help="print {\"group\", \"versions\": [{\"version\", \"arn\", \"status\", \"created\", "
                             "\"metrics\", \"executionArn\"}]}; with approve|reject {\"group\", \"version\", \"arn\", "
                             "\"status\"}")
    add_state_machine_option(models)
    models.set_defaults(run=_deferred("models", "models"))

    price_commands = commands.add_parser(
        "prices", help="the SageMaker price table that costs and maxRunCostUsd use",
        description="The price table (infra/prices.json) that prices runs and enforces maxRunCostUsd.")
    price_actions = price_commands.add_subparsers(dest="action", required=True, parser_class=OneLineParser)
    refresh = price_actions.add_parser(
        "refresh", help="regenerate the SageMaker training and batch-transform prices from the AWS Price List API",
        description="Regenerate the SageMaker training and batch-transform on-demand prices from the AWS Price "
                    "List API (pricing:GetProducts, needs AWS credentials); the Lambda and Step Functions "
                    "prices are kept. The file is replaced only once every price was read.")
    refresh.add_argument("--out", metavar="FILE", help="where to write the table (default infra/prices.json)")
    refresh.add_argument("--region", metavar="R", action="append",
                         help="refresh only this region's prices, keeping the others (repeatable; default: all)")
    refresh.set_defaults(run=_deferred("prices", "refresh"))
    return parser


def _deferred(module: str, function: str):
    """A command's runner, imported from sagestep.<module> only when the command runs (parsing stays light)."""
    def run(args: argparse.Namespace, console: Console) -> int:
        return getattr(importlib.import_module(f"sagestep.{module}"), function)(args, console)
    return run


def _local(args: argparse.Namespace, console: Console) -> int:
    from .checks import check_dataset, free_port, writable_folder

    if args.dataset == "serve":
        port = free_port(args.host, args.port)
        from .local.run import serve
        return serve(args, port, console)
    check_dataset(args.dataset)
    if args.out:
        writable_folder(Path(args.out))
    from .local.run import run_local
    return run_local(args, console)


def runs_count(text: str) -> int:
    """--last N: 1 to 1000 (ListExecutions' largest page, sagestep.runs.MAX_LAST; checked here so that
    parsing imports no boto3)."""
    value = int(text) if text.isdigit() else 0
    if not 1 <= value <= 1000:
        raise argparse.ArgumentTypeError(f"{text!r} is not a count from 1 to 1000")
    return value


def model_version(text: str) -> int:
    """VERSION: a model package version, 1 or more."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a model version (1, 2, ...)")
    return value


# The errors a command reports in one line with exit code 2, by the module that defines each: a module
# that was never imported cannot have raised its error, so the check imports nothing.
ONE_LINE_ERRORS = (("sagestep.errors", "UsageError"), ("infra.settings", "ConfigError"),
                   ("sagestep.synth", "StackFileError"))
OWN_PACKAGES = ("sagestep", "infra", "statemachine", "preprocess")


def _one_line_errors() -> tuple[type, ...]:
    return tuple(getattr(sys.modules[module], name) for module, name in ONE_LINE_ERRORS if module in sys.modules)


def _in_project() -> None:
    """The project's own folders (infra/, statemachine/, ...) are what a command runs, installed tool or not."""
    from . import project_root

    root = str(project_root())
    if root not in sys.path:
        sys.path.insert(0, root)


def main(argv: list[str] | None = None) -> int:
    from . import NotInProject

    args = build_parser().parse_args(argv)
    try:
        _in_project()
        from rich.console import Console

        # soft_wrap: output piped to a file or a program keeps its lines whole.
        return args.run(args, Console(soft_wrap=True))
    except NotInProject as error:
        print(f"sagestep {args.command}: {error}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as error:
        if not error.name or error.name.split(".")[0] in OWN_PACKAGES:
            raise
        print(f"sagestep {args.command}: needs the package {error.name.split('.')[0]}, which the tool's extra "
              "installs: pip install '.[local]' in the project folder (make run does it for you)", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sagestep {args.command}: interrupted; the local engine stopped its jobs and removed their folders"
              if args.command == "local" else f"sagestep {args.command}: interrupted", file=sys.stderr)
        return 130
    except Exception as error:
        if not isinstance(error, _one_line_errors()):
            raise
        print(f"sagestep {args.command}: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
