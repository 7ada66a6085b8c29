"""`sagestep models`: the versions the Register step added to the stack's model package group
(`sagestep:registerModels`), and `approve|reject VERSION`, on AWS or on `sagestep local serve` alike.

The group is the stack's: `<prefix>-models` (statemachine/register.py), the prefix read from the state machine
as `sagestep prune` reads it (its `sagestep:stack` tag, checked against its name).
"""
from __future__ import annotations

import json

from botocore.exceptions import BotoCoreError, ClientError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from statemachine.register import group_name

from .errors import UsageError, aws_failure
from .prune import prefix_of, stack_of, utc
from .registry import packages
from .runner import split_s3_uri
from .start import STATE_MACHINE_ARN, clients_in, state_machine_arn

DECISIONS = {"approve": "Approved", "reject": "Rejected"}
STATUS_STYLE = {"Approved": "green", "Rejected": "red", "PendingManualApproval": "yellow"}


def version_row(package: dict, metrics: dict | None) -> dict:
    """One version as the --json contract shows it; GeneratedBy holds the execution's ARN (the Register step's)."""
    return {"version": package["ModelPackageVersion"], "arn": package["ModelPackageArn"],
            "status": package["ModelApprovalStatus"], "created": utc(package["CreationTime"]), "metrics": metrics,
            "executionArn": (package.get("MetadataProperties") or {}).get("GeneratedBy")}


def check_options(action: str | None, version: int | None, description: str | None) -> None:
    if action is None and (version is not None or description is not None):
        raise UsageError("a VERSION or --description needs approve or reject first: sagestep models approve VERSION")
    if action is not None and version is None:
        raise UsageError(f"sagestep models {action} needs the VERSION to {action}, e.g. sagestep models {action} 3")


# ---------------------------------------------------------------- AWS (or `sagestep local serve`)

def stack_versions(clients, arn: str) -> tuple[str, list[dict]]:
    """The stack's group and its versions; one line when the stack has none (registerModels is off)."""
    stack = stack_of(clients("stepfunctions"), arn)
    group = group_name(prefix_of(arn.rsplit(":", 1)[1], stack))
    found = packages(clients("sagemaker"), group)
    if found is None:
        raise UsageError(f"stack {stack} has no model registry (no group {group}): set sagestep:registerModels "
                         "to true and deploy, then runs register their models")
    return group, found


def metrics_of(s3, package: dict) -> dict | None:
    """The test metrics of the version's statistics file (the run's evaluation.json); None once the run's data
    has expired (runDataExpirationDays) or cannot be read."""
    uri = (((package.get("ModelMetrics") or {}).get("ModelQuality") or {}).get("Statistics") or {}).get("S3Uri")
    if not uri:
        return None
    bucket, key = split_s3_uri(uri)
    try:
        evaluation = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, ValueError):
        return None
    return evaluation.get("metrics") if isinstance(evaluation, dict) else None


def decide(sagemaker, group: str, found: list[dict], version: int, status: str, description: str | None) -> dict:
    match = next((p for p in found if p["ModelPackageVersion"] == version), None)
    if match is None:
        known = ", ".join(str(p["ModelPackageVersion"]) for p in reversed(found)) or "none yet"
        raise UsageError(f"version {version} is not in model group {group} (versions: {known})")
    sagemaker.update_model_package(ModelPackageArn=match["ModelPackageArn"], ModelApprovalStatus=status,
                                   **({"ApprovalDescription": description} if description is not None else {}))
    return {"group": group, "version": version, "arn": match["ModelPackageArn"], "status": status}


def models(args, console: Console) -> int:
    check_options(args.action, args.version, args.description)
    arn = state_machine_arn(args.state_machine_arn)
    clients = clients_in(STATE_MACHINE_ARN.match(arn).group(1))
    sagemaker = clients("sagemaker")
    try:
        group, found = stack_versions(clients, arn)
        if args.action:
            decided = decide(sagemaker, group, found, args.version, DECISIONS[args.action], args.description)
            print(json.dumps(decided) if args.json else
                  f"{group} version {decided['version']}: {decided['status']}")
            return 0
        s3 = clients("s3")
        versions = [version_row(package, metrics_of(s3, package)) for package in found]
    except (ClientError, BotoCoreError) as error:
        raise aws_failure(f"cannot read the model registry of {arn}", "AWS", error) from None
    if args.json:
        print(json.dumps({"group": group, "versions": versions}))
    elif not versions:
        console.print(f"model group {group}: no versions yet", highlight=False)
    else:
        print_versions(group, versions, console)
    return 0


def print_versions(group: str, versions: list[dict], console: Console) -> None:
    table = Table(title=f"{escape(group)}: {len(versions)} versions, newest first (times in UTC)",
                  box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False)
    for column in ("version", "status", "created", "metrics", "execution"):
        table.add_column(column, overflow="fold")
    for row in versions:
        metrics = ", ".join(f"{name} {value:.4g}" if isinstance(value, (int, float)) else f"{name} {value}"
                            for name, value in (row["metrics"] or {}).items()) or "-"
        table.add_row(str(row["version"]), f"[{STATUS_STYLE.get(row['status'], 'bold')}]{row['status']}[/]",
                      row["created"].replace("T", " ").rstrip("Z"), escape(metrics),
                      escape((row["executionArn"] or "-").rsplit(":", 1)[-1]))
    if not console.is_terminal:          # piped: each version one whole line, as `sagestep runs` prints
        natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
        console = Console(file=console.file, width=max(console.width, natural), soft_wrap=True)
    console.print(table, highlight=False)
