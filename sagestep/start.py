"""`sagestep start`: a run on the deployed stack (or anything that speaks the AWS API)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from statemachine.console import console_url

from .errors import UsageError
from .report import Reporter, execution_name, in_cli_terms, report
from .runner import attach_curves, attach_evaluation, attach_job_log, execution_input, follow, result_of

ARN_VARIABLE = "SAGESTEP_STATE_MACHINE_ARN"
STATE_MACHINE_ARN = re.compile(r"^arn:aws[a-z-]*:states:([a-z0-9-]+):\d{12}:stateMachine:[A-Za-z0-9_.-]{1,80}$")
# Each poll reads the whole history: every 2 s on AWS (Step Functions throttles), faster against an emulator.
POLL_SECONDS = {"aws": 2.0, "emulator": 0.2}


def state_machine_arn(flag: str | None) -> str:
    """From the flag, the environment, or `pulumi stack output`; checked, so a typo is one line."""
    found = flag or os.environ.get(ARN_VARIABLE) or _pulumi_output()
    if not found:
        raise UsageError(f"no deployed stack found: pass --state-machine-arn, set {ARN_VARIABLE}, "
                         "or run from the project folder with the Pulumi CLI and a deployed stack")
    if not STATE_MACHINE_ARN.match(found):
        raise UsageError(f"{found!r} is not a state machine ARN "
                         "(arn:aws:states:<region>:<account>:stateMachine:<name>)")
    return found


def _pulumi_output() -> str | None:
    if shutil.which("pulumi"):
        result = subprocess.run(["pulumi", "stack", "output", "stateMachineArn"], capture_output=True, text=True)
        if result.returncode == 0 and result.stdout.strip():
            return result.stdout.strip()
    return None


def start(args, console: Console) -> int:
    if not args.dataset_uri.startswith("s3://") or "/" not in args.dataset_uri[5:]:
        raise UsageError(f"{args.dataset_uri}: the dataset must be an s3://bucket/key URI (upload it first)")
    arn = state_machine_arn(args.state_machine_arn)
    region = STATE_MACHINE_ARN.match(arn).group(1)
    sfn = boto3.client("stepfunctions", region_name=region)
    run_input = execution_input(args.dataset_uri, args)
    try:
        execution = sfn.start_execution(stateMachineArn=arn, name=execution_name("run"),
                                        input=json.dumps(run_input))["executionArn"]
    except ClientError as error:
        raise UsageError(f"cannot start {arn}: {error.response['Error']['Code']}: "
                         f"{error.response['Error']['Message']}") from None
    except BotoCoreError as error:
        raise UsageError(f"cannot reach Step Functions: {error}") from None
    # Against an endpoint (sagestep local serve) there is no AWS console to link to.
    emulated = bool(os.environ.get("AWS_ENDPOINT_URL"))
    link = None if emulated else console_url(region, "states", f"/v2/executions/details/{execution}")
    links = {"console": link} if link else {}
    if not args.wait:
        text = "\n".join(filter(None, [execution, link]))
        print(json.dumps({"executionArn": execution, **links}) if args.json else text)
        return 0
    reporter = Reporter(console, args.json)
    if not args.json:
        console.print("\n".join(filter(None, [f"execution {execution}", link])), highlight=False)
    poll = POLL_SECONDS["emulator" if emulated else "aws"]
    try:
        description, progress = follow(sfn, execution, reporter.state, poll_seconds=poll)
        result = {**result_of(description, progress), **links}
        logs = boto3.client("logs", region_name=region)
        attach_job_log(result, logs, None if emulated else region)
        attach_curves(result, logs)
        attach_evaluation(result, boto3.client("s3", region_name=region))
    except (ClientError, BotoCoreError) as error:
        raise UsageError(f"lost track of {execution} (it goes on): {error}") from None
    output = result.pop("output", None)
    if output:
        job = output.get("trainingJobName")
        evaluation = output.get("evaluation") or {}
        result["outputs"] = {"predictions": evaluation.get("predictionsFile"), "metrics": evaluation.get("evaluationFile"),
                             "modelArtifact": output.get("modelArtifacts"), "trainingJob": job}
        if not emulated:
            result["outputs"]["trainingJobConsole"] = console_url(region, "sagemaker", f"/jobs/{job}")
    return report(in_cli_terms(result), args.json, console)
