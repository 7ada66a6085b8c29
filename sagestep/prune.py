"""`sagestep prune`: delete the SageMaker models that this stack's executions left behind.

Every run's CreateModel registers a model that nothing else deletes: the console's list grows by one a run,
and with `modelRetentionDays` the artifacts an old model points at expire while the model stays. Only what
is provably this stack's is touched: a model must carry the tag `sagestep:stack` = the stack named by the
state machine's own tag AND a name under the stack's prefix, `<prefix>--` (preprocess/naming.py: no other
stack's names can start with it, so `dev` never touches `dev-2`'s models, nor a model someone named alike).
The choice is the pure `select`; the calls to AWS stay at the edges.
"""
from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Mapping, Sequence

from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console
from rich.markup import escape

from statemachine.naming import name_prefix
from statemachine.register import group_name
from preprocess.naming import SEPARATOR

from .errors import UsageError
from .registry import artifacts, packages
from .start import STATE_MACHINE_ARN, clients_in, state_machine_arn

DEFAULT_KEEP = 5
STACK_TAG = "sagestep:stack"
# infra/pipeline.py names the state machine "<prefix>-pipeline" and tags it sagestep:stack.
STATE_MACHINE_SUFFIX = "-pipeline"
# A job that is stopping still runs on its instances until it has stopped.
RUNNING_TRANSFORM = ("InProgress", "Stopping")


@dataclass(frozen=True)
class Model:
    name: str
    created: datetime


@dataclass(frozen=True)
class Plan:
    delete: list[Model]                  # oldest first
    keep: list[tuple[Model, str]]        # newest first, each with why


def prefix_of(state_machine_name: str, stack: str) -> str:
    """The stack's name prefix, from its `sagestep:stack` tag; the state machine's own name must agree,
    or this is not a state machine that sagestep deployed and nothing is pruned."""
    prefix = name_prefix(stack)
    if state_machine_name != prefix + STATE_MACHINE_SUFFIX:
        raise UsageError(f"state machine {state_machine_name!r} is tagged {STACK_TAG}={stack} but is not named "
                         f"{prefix + STATE_MACHINE_SUFFIX!r}, as that stack's is; pruning nothing")
    return prefix


def foreign(tags: Mapping[str, str], stack: str) -> str | None:
    """Why a model under the stack's prefix is still not the stack's (None when it is)."""
    tagged = tags.get(STACK_TAG)
    if tagged is None:
        return f"not this stack's: no {STACK_TAG} tag"
    if tagged != stack:
        return f"not this stack's: tagged {STACK_TAG}={tagged}"
    return None


def days(value: float) -> str:
    return f"{value:g} day" + ("" if value == 1 else "s")


def select(models: Sequence[Model], keep: int, in_use: Mapping[str, str], now: datetime,
           older_than_days: float | None = None) -> Plan:
    """Which of the stack's models to delete. The newest `keep` stay (by CreationTime; ties by name, so a
    rerun chooses the same), and so does any model a running transform job uses (in_use: model -> why) and,
    with older_than_days, any younger than that; the first reason that applies is the one reported."""
    newest_first = sorted(models, key=lambda model: (model.created, model.name), reverse=True)
    delete, kept = [], []
    for rank, model in enumerate(newest_first):
        if model.name in in_use:
            kept.append((model, in_use[model.name]))
        elif rank < keep:
            kept.append((model, "the newest" if keep == 1 else f"among the newest {keep}"))
        elif older_than_days is not None and now - model.created < timedelta(days=older_than_days):
            kept.append((model, f"younger than {days(older_than_days)}"))
        else:
            delete.append(model)
    return Plan(delete=delete[::-1], keep=kept)


def spare_registered(plan: Plan, model_data: Mapping[str, str | None], registered: Mapping[str, str]) -> Plan:
    """A model chosen for deletion is kept when a registered version serves the same artifacts: the same
    ModelDataUrl (model_data: model -> its URL; registered: URL -> why), so a version is never left without
    the model its run made from it."""
    spared = [(model, registered[model_data[model.name]]) for model in plan.delete
              if model_data.get(model.name) in registered]
    return Plan(delete=[model for model in plan.delete if model not in {m for m, _ in spared}],
                keep=[*plan.keep, *spared])


def check_options(keep: int, older_than: float | None) -> None:
    if keep < 0:
        raise UsageError(f"--keep {keep}: must be 0 or more")
    if older_than is not None and not (math.isfinite(older_than) and older_than >= 0):
        raise UsageError(f"--older-than {older_than:g}: must be a number of days, 0 or more")


# ---------------------------------------------------------------- AWS (or `sagestep local serve`)

def stack_of(sfn, arn: str) -> str:
    """The stack name from the state machine's own tag (ListTagsForResource)."""
    tags = {tag["key"]: tag["value"] for tag in sfn.list_tags_for_resource(resourceArn=arn)["tags"]}
    if not tags.get(STACK_TAG):
        raise UsageError(f"{arn} has no {STACK_TAG} tag: not a state machine that sagestep deployed; pruning nothing")
    return tags[STACK_TAG]


def gone(error: ClientError) -> bool:
    """SageMaker's answer about a model that no longer exists: ValidationException "Could not find model"."""
    return (error.response["Error"]["Code"] == "ValidationException"
            and "Could not find model" in error.response["Error"]["Message"])


def listed_models(sagemaker, stack: str, prefix: str) -> tuple[list[Model], list[tuple[Model, str]]]:
    """The stack's models, and the others under its prefix with why they are not the stack's. Only names
    under the prefix are looked at any closer (ListTags is granted on those alone)."""
    owned = prefix + SEPARATOR
    mine, others = [], []
    for page in sagemaker.get_paginator("list_models").paginate(NameContains=owned):
        for summary in page["Models"]:
            if not summary["ModelName"].startswith(owned):        # NameContains matches anywhere in the name
                continue
            model = Model(summary["ModelName"], summary["CreationTime"])
            try:
                tags = {tag["Key"]: tag["Value"] for page in sagemaker.get_paginator("list_tags").paginate(
                    ResourceArn=summary["ModelArn"]) for tag in page["Tags"]}
            except ClientError as error:
                if gone(error):                                 # deleted since it was listed
                    continue
                raise
            reason = foreign(tags, stack)
            if reason is None:
                mine.append(model)
            else:
                others.append((model, reason))
    return mine, others


def models_in_use(sagemaker, prefix: str) -> dict[str, str]:
    """model name -> why: the stack's transform jobs that are running (InProgress or Stopping). Only jobs
    under the prefix are described: the state machine names every job it starts so, and DescribeTransformJob
    is granted on those alone."""
    owned = prefix + SEPARATOR
    in_use: dict[str, str] = {}
    for status in RUNNING_TRANSFORM:
        for page in sagemaker.get_paginator("list_transform_jobs").paginate(StatusEquals=status, NameContains=owned):
            for job in page["TransformJobSummaries"]:
                name = job["TransformJobName"]
                if name.startswith(owned):
                    model = sagemaker.describe_transform_job(TransformJobName=name)["ModelName"]
                    in_use[model] = f"used by transform job {name} ({job['TransformJobStatus']})"
    return in_use


def registered_artifacts(sagemaker, prefix: str) -> dict[str, str]:
    """ModelDataUrl -> why, of every version in the stack's model package group (none without the registry)."""
    group = group_name(prefix)
    return {url: f"registered as version {package['ModelPackageVersion']} of {group}"
            for package in packages(sagemaker, group) or [] for url in artifacts(package)}


def model_data_url(sagemaker, name: str) -> str | None:
    """The artifacts the model serves; None once it is gone."""
    try:
        described = sagemaker.describe_model(ModelName=name)
    except ClientError as error:
        if gone(error):
            return None
        raise
    return (described.get("PrimaryContainer") or {}).get("ModelDataUrl")


def delete(sagemaker, name: str) -> bool:
    """True when deleted; False when it was already gone (deleted by hand, or by another prune meanwhile)."""
    try:
        sagemaker.delete_model(ModelName=name)
    except ClientError as error:
        if gone(error):
            return False
        raise
    return True


def prune(args, console: Console) -> int:
    """Read everything first, choose, then delete: a mistake or a refused call before the first delete
    deletes nothing, and one after it says how many were already deleted."""
    keep = DEFAULT_KEEP if args.keep is None else args.keep
    check_options(keep, args.older_than)
    arn = state_machine_arn(args.state_machine_arn)
    clients = clients_in(STATE_MACHINE_ARN.match(arn).group(1))
    sagemaker = clients("sagemaker")
    deleted: list[dict] = []
    try:
        stack = stack_of(clients("stepfunctions"), arn)
        prefix = prefix_of(arn.rsplit(":", 1)[1], stack)
        mine, others = listed_models(sagemaker, stack, prefix)
        plan = select(mine, keep, models_in_use(sagemaker, prefix), datetime.now(timezone.utc), args.older_than)
        registered = registered_artifacts(sagemaker, prefix)
        if registered:
            plan = spare_registered(plan, {model.name: model_data_url(sagemaker, model.name)
                                           for model in plan.delete}, registered)
        for model in plan.delete:
            row = {"name": model.name, "created": utc(model.created)}
            if not args.dry_run:
                row["alreadyGone"] = not delete(sagemaker, model.name)
            deleted.append(row)
    except ClientError as error:
        so_far = f" ({len(deleted)} deleted before that)" if deleted and not args.dry_run else ""
        raise UsageError(f"cannot prune the models of {arn}: {error.response['Error']['Code']}: "
                         f"{error.response['Error']['Message']}{so_far}") from None
    except BotoCoreError as error:
        raise UsageError(f"cannot reach AWS: {error}") from None
    kept = [{"name": model.name, "created": utc(model.created), "reason": reason}
            for model, reason in [*plan.keep, *others]]
    if args.json:
        # A dry run deleted nothing: what it chose is "wouldDelete", so no program reads it as done.
        print(json.dumps({"stack": stack, "wouldDelete" if args.dry_run else "deleted": deleted, "kept": kept,
                          "dryRun": args.dry_run}))
    else:
        print_pruned(stack, prefix, deleted, kept, args.dry_run, console)
    return 0


def utc(moment: datetime) -> str:
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def print_pruned(stack: str, prefix: str, deleted: list[dict], kept: list[dict], dry_run: bool,
                 console: Console) -> None:
    """One line a model, deleted first (oldest first), then kept with why; then the totals. Lines, not a
    table: piped to a file or a program, a table is cut to 80 columns and the reasons would be lost."""
    if not deleted and not kept:
        console.print(f"stack {stack}: no models under {prefix}{SEPARATOR}; nothing to delete", highlight=False)
        return
    console.print(f"stack {stack}: models under {prefix}{SEPARATOR} (times in UTC)"
                  + (", dry run: nothing deleted" if dry_run else ""), highlight=False)
    width = max(len(row["name"]) for row in [*deleted, *kept])
    def line(action: str, style: str, row: dict, reason: str = "") -> None:
        console.print(f"  [{style}]{action:<12}[/] {escape(row['name']):<{width}}  "
                      f"{row['created'][:19].replace('T', ' ')}  {escape(reason)}".rstrip(), highlight=False)
    for row in deleted:
        line(*(("would delete", "yellow") if dry_run else ("already gone", "dim") if row["alreadyGone"]
               else ("deleted", "red")), row)
    for row in kept:
        line("kept", "green", row, row["reason"])
    already = sum(row.get("alreadyGone", False) for row in deleted)
    done = f"would delete {len(deleted)}" if dry_run else f"deleted {len(deleted) - already}" + (
        f", {already} already gone" if already else "")
    console.print(f"{done}, kept {len(kept)}", highlight=False)
