"""What a finished execution's history says beyond its result: the jobs it started, what its Lambda
tasks and state transitions cost, and the record the run report is drawn from. Shared by `local`,
`start --wait` and `report`, on AWS and on the embedded engine alike."""
from __future__ import annotations

import json
from pathlib import Path

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError

from statemachine import jobs as pipeline_jobs
from statemachine import register
from statemachine.console import console_url
from statemachine.framework import metric_definitions, scrape_series
from statemachine.train import LOG_GROUP as TRAINING_LOG_GROUP

from .cost import run_cost
from .runner import job_log, tuning_trials


def jobs_in(events: list[dict]) -> dict[str, str]:
    """The SageMaker names the execution's tasks asked for, by kind (the last try of each)."""
    resources = {job.action: job for job in pipeline_jobs()}     # which task resource starts which job
    jobs = {}
    for event in events:
        details = event.get("taskScheduledEventDetails")
        if details and details["resource"] in resources:
            job = resources[details["resource"]]
            jobs[job.kind] = json.loads(details["parameters"])[job.name_field]
    return jobs


def lambda_seconds(events: list[dict]) -> list[tuple[float, str]]:
    """(seconds, function) of each Lambda task, from its start to its end in the history: what Step
    Functions saw, a little more than the function's own billed duration."""
    invocations, started, function = [], None, None
    for event in events:
        kind = event["type"]
        if kind == "TaskScheduled" and event["taskScheduledEventDetails"]["resourceType"] == "lambda":
            function = json.loads(event["taskScheduledEventDetails"]["parameters"])["FunctionName"]
        elif kind == "TaskStarted" and event["taskStartedEventDetails"]["resourceType"] == "lambda":
            started = event["timestamp"]
        elif kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut") and started is not None and function:
            invocations.append(((event["timestamp"] - started).total_seconds(), function))
            started = None
    return invocations


def transitions(events: list[dict]) -> int:
    """Standard workflows bill each state entered (states inside a Map's iterations too)."""
    return sum(1 for event in events if event["type"].endswith("StateEntered"))


def _described(sagemaker, jobs: dict[str, str], notes: list[str]) -> dict[str, dict]:
    """Each Job's Describe response (its trials' under "trials", when they bill for it), of the run's jobs that
    exist. A job SageMaker does not know was refused at creation and bills nothing; any other refusal leaves its
    cost out, saying so."""
    described = {}
    for job in pipeline_jobs():
        if job.kind not in jobs or not job.describe:
            continue
        try:
            described[job.kind] = _call(sagemaker, job.describe, {job.name_field: jobs[job.kind]})
            if job.trials:
                described[job.kind]["trials"] = [sagemaker.describe_training_job(TrainingJobName=trial["name"])
                                                 for trial in tuning_trials(sagemaker, jobs[job.kind])]
        except ClientError as error:
            if error.response["Error"]["Code"] not in ("ValidationException", "ResourceNotFound"):
                notes.append(f"the {job.kind} job's cost is left out: cannot describe {jobs[job.kind]} ({error})")
    return described


def _call(client, operation: str, request: dict) -> dict:
    """A client call by its API operation's name ("DescribeTrainingJob" -> describe_training_job)."""
    return getattr(client, xform_name(operation))(**request)


def _lambda_invocations(events: list[dict], clients, notes: list[str]) -> tuple[list[tuple[float, int]], str]:
    """(seconds, memory MB) of each Lambda task and the function's architecture; none when the function's
    configuration cannot be read (its cost is then left out, saying so)."""
    timed = lambda_seconds(events)
    if not timed:
        return [], "x86_64"
    try:
        configuration = clients("lambda").get_function_configuration(FunctionName=timed[0][1])
    except (ClientError, BotoCoreError) as error:
        notes.append(f"the Lambda's cost is left out: cannot read its configuration ({error})")
        return [], "x86_64"
    return ([(seconds, configuration["MemorySize"]) for seconds, _ in timed],
            (configuration.get("Architectures") or ["x86_64"])[0])


def attach_cost(result: dict, events: list[dict], clients, region: str, estimate: bool) -> dict[str, dict]:
    """result["cost"] from the jobs' billable time, the Lambda tasks' GB-seconds and the transitions;
    returns the jobs it described (the report shows them)."""
    notes: list[str] = []
    try:
        described = _described(clients("sagemaker"), jobs_in(events), notes)
    except BotoCoreError as error:
        described = {}
        notes.append(f"the jobs' cost is left out: cannot reach SageMaker ({error})")
    invocations, architecture = _lambda_invocations(events, clients, notes)
    result["cost"] = run_cost(region, described, invocations, transitions(events), estimate=estimate,
                              lambda_architecture=architecture)
    maps = sum(event["type"] == "MapRunStarted" for event in events)
    if maps:
        notes.append(f"not counted: the {maps} Distributed Map run(s)' child executions (one Lambda invocation and "
                     "their state transitions per work item; see docs/scaling.md)")
    result["cost"]["notes"] += notes
    return described


def learning_curves(logs, job: str | None) -> dict[str, list[float]]:
    """Train and validation values per round from the training job's log (what the report plots)."""
    if not job:
        return {}
    try:
        lines = job_log(logs, TRAINING_LOG_GROUP, job)
    except (ClientError, BotoCoreError):
        return {}
    return scrape_series(lines, metric_definitions("train") + metric_definitions())


def _job_facts(path: str, name: str | None, described: dict | None, region: str, local: bool) -> dict | None:
    if not name:
        return None
    described = described or {}
    resources = next((value for key, value in described.items() if key.endswith(("ResourceConfig", "Resources"))
                      and isinstance(value, dict) and "InstanceType" in value), {})
    return {"name": name, "instanceType": resources.get("InstanceType"), "instanceCount": resources.get("InstanceCount"),
            "console": None if local else console_url(region, "sagemaker", f"{path}{name}")}


def report_record(result: dict, description: dict, events: list[dict], definition: dict, described: dict,
                  files: dict[str, Path], curves: dict[str, list[float]] | None, logs, region: str,
                  local: bool) -> dict:
    """The run report's input (sagestep/run_report.py): the result, the definition, the jobs, the files.
    curves: what runner.attach_curves already scraped; None reads the training log here (a run that
    failed after training has no output to find the job by, but its history names it)."""
    jobs = jobs_in(events)
    schema = json.loads(files["schema"].read_text()) if files.get("schema") else None
    return {
        **result,
        "name": description["executionArn"].rsplit(":", 1)[-1],
        **{field: description[field].isoformat() for field in ("startDate", "stopDate") if description.get(field)},
        "region": region, "local": local, "definition": definition,
        "dataset": json.loads(description.get("input") or "{}").get("datasetUri"),
        "curves": learning_curves(logs, jobs.get("training")) if curves is None else curves,
        "schema": schema,
        "predictions": str(files["predictions"]) if files.get("predictions") else None,
        "model": str(files["modelArtifact"]) if files.get("modelArtifact") else None,
        "jobs": {job.kind: _job_facts(job.console, jobs.get(job.kind), described.get(job.kind), region, local)
                 for job in pipeline_jobs() if job.console},
        **({"registered": {**result["registered"], "console": None if local else register.group_console(
            region, result["registered"]["group"])}} if result.get("registered") else {}),
    }
