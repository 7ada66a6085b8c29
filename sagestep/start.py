"""`sagestep start`: a run on the deployed stack (or anything that speaks the AWS API)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from statemachine.console import console_url

from .errors import UsageError
from .report import Reporter, execution_name, report
from .runner import attach_curves, attach_job_log, follow, result_of

ARN_VARIABLE = "SAGESTEP_STATE_MACHINE_ARN"


def state_machine_arn(flag: str | None) -> str:
    if flag:
        return flag
    if os.environ.get(ARN_VARIABLE):
        return os.environ[ARN_VARIABLE]
    if shutil.which("pulumi"):
        result = subprocess.run(["pulumi", "stack", "output", "stateMachineArn"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    raise UsageError(f"no deployed stack found: pass --state-machine-arn, set {ARN_VARIABLE}, "
                     "or run from the project folder with the Pulumi CLI and a deployed stack")


def start(args, console: Console) -> int:
    if not args.dataset_uri.startswith("s3://") or "/" not in args.dataset_uri[5:]:
        raise UsageError(f"{args.dataset_uri}: the dataset must be an s3://bucket/key URI (upload it first)")
    arn = state_machine_arn(args.state_machine_arn)
    sfn = boto3.client("stepfunctions", region_name=arn.split(":")[3])
    execution_input = {"datasetUri": args.dataset_uri, **({"labelColumn": args.label} if args.label else {})}
    try:
        execution = sfn.start_execution(stateMachineArn=arn, name=execution_name("run"),
                                        input=json.dumps(execution_input))["executionArn"]
    except ClientError as error:
        raise UsageError(f"cannot start {arn}: {error.response['Error']['Code']}: "
                         f"{error.response['Error']['Message']}") from None
    except BotoCoreError as error:
        raise UsageError(f"cannot reach Step Functions: {error}") from None
    region = arn.split(":")[3]
    link = console_url(region, "states", f"/v2/executions/details/{execution}")
    if not args.wait:
        print(json.dumps({"executionArn": execution, "console": link}) if args.json else f"{execution}\n{link}")
        return 0
    reporter = Reporter(console, args.json)
    if not args.json:
        console.print(f"execution {execution}\n{link}", highlight=False)
    description, progress = follow(sfn, execution, reporter.state, poll_seconds=2 if "amazonaws" in link else 0.2)
    result = {**result_of(description, progress), "console": link}
    logs = boto3.client("logs", region_name=region)
    attach_job_log(result, logs, region)
    attach_curves(result, logs)
    output = result.pop("output", None)
    if output:
        job = output.get("trainingJobName")
        result["outputs"] = {"predictions": output.get("predictionsUri"), "trainingJob": job,
                             "trainingJobConsole": console_url(region, "sagemaker", f"/jobs/{job}")}
    return report(result, args.json, console)
