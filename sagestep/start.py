"""`sagestep start`: a run on the deployed stack (or anything that speaks the AWS API)."""
from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError
from rich.console import Console

from statemachine import register, train, tune
from statemachine.console import console_url

from .checks import writable_folder
from .errors import UsageError, aws_failure
from .report import Reporter, execution_name, in_cli_terms, report
from .record import attach_cost, report_record
from .run_report import write_report
from .runner import (attach_curves, attach_evaluation, attach_job_log, attach_tuning, download_outputs, download_schema,
                     execution_input, follow, result_of)

ARN_VARIABLE = "SAGESTEP_STATE_MACHINE_ARN"
STATE_MACHINE_ARN = re.compile(r"^arn:aws[a-z-]*:states:([a-z0-9-]+):\d{12}:stateMachine:[A-Za-z0-9_.-]{1,80}$")
EXECUTION_ARN = re.compile(r"^arn:aws[a-z-]*:states:([a-z0-9-]+):\d{12}:execution:[A-Za-z0-9_.-]{1,80}:([^:\s]{1,80})$")
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
    except (ClientError, BotoCoreError) as error:
        raise aws_failure(f"cannot start {arn}", "Step Functions", error) from None
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
        attach_tuning(result, boto3.client("sagemaker", region_name=region))
        attach_evaluation(result, boto3.client("s3", region_name=region))
        attach_cost(result, progress.events, clients_in(region), region, estimate=emulated)
    except (ClientError, BotoCoreError) as error:
        raise UsageError(f"lost track of {execution} (it goes on): {error}") from None
    output = result.pop("output", None)
    if output and result["status"] == "SUCCEEDED":
        job = output.get("trainingJobName")
        evaluation = output.get("evaluation") or {}
        result["outputs"] = {"predictions": evaluation.get("predictionsFile"), "metrics": evaluation.get("evaluationFile"),
                             "modelArtifact": output.get("modelArtifacts"), "trainingJob": job}
        if not emulated:
            result["outputs"].update(console_links(region, job, result.get("tuning"), result.get("registered")))
    return report(in_cli_terms(result), args.json, console)


def console_links(region: str, training_job: str | None, tuning: dict | None, registered: dict | None) -> dict[str, str]:
    """The AWS console pages of a finished run: its training job, its tuning job and the model group it
    registered a version in (each only when the run had one)."""
    jobs = {"trainingJobConsole": (train.JOB.console, training_job),
            "tuningJobConsole": (tune.JOB.console, (tuning or {}).get("job"))}
    links = {field: console_url(region, "sagemaker", f"{path}{name}") for field, (path, name) in jobs.items() if name}
    if registered:
        links["modelGroupConsole"] = register.group_console(region, registered["group"])
    return links


def clients_in(region: str):
    """boto3 clients by service name for one region (AWS_ENDPOINT_URL, when set, reaches them all)."""
    return lambda service: boto3.client(service, region_name=region)


def report_execution(args, console: Console) -> int:
    """`sagestep report EXECUTION_ARN`: a finished execution's report.html, from what AWS (or `sagestep
    local serve`) still holds of it: its history, definition, jobs, logs and files."""
    match = EXECUTION_ARN.match(args.execution_arn)
    if not match:
        raise UsageError(f"{args.execution_arn!r} is not an execution ARN "
                         "(arn:aws:states:<region>:<account>:execution:<state machine>:<name>)")
    region, name = match.groups()
    clients = clients_in(region)
    emulated = bool(os.environ.get("AWS_ENDPOINT_URL"))
    out_dir = writable_folder(Path(args.out) if args.out else Path("runs") / name)
    sfn = clients("stepfunctions")
    try:
        if sfn.describe_execution(executionArn=args.execution_arn)["status"] == "RUNNING":
            raise UsageError(f"{name} is still running; report it when it has ended "
                             "(sagestep start --wait follows a run to its end)")
        description, progress = follow(sfn, args.execution_arn)
        definition = json.loads(sfn.describe_state_machine_for_execution(executionArn=args.execution_arn)["definition"])
        result = result_of(description, progress)
        logs = clients("logs")
        attach_job_log(result, logs, None if emulated else region)
        curves = attach_curves(result, logs)
        attach_tuning(result, clients("sagemaker"))
        output = result.pop("output", None) or {}
        if result["status"] == "SUCCEEDED":
            files = download_outputs(clients("s3"), output, out_dir)
            attach_evaluation(result, clients("s3"))
        else:
            files = download_schema(clients("s3"), output, out_dir)
        described = attach_cost(result, progress.events, clients, region, estimate=emulated)
    except (ClientError, BotoCoreError) as error:
        raise aws_failure(f"cannot read {args.execution_arn}", "Step Functions", error) from None
    record = report_record(result, description, progress.events, definition, described, files, curves, logs,
                           region, local=emulated)
    path = write_report(record, out_dir)
    print(json.dumps({"report": str(path), "status": result["status"]}) if args.json else path)
    return 0
