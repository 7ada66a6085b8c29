"""Start an execution and follow it: shared by `sagestep local` and `sagestep start`."""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Callable

from botocore.exceptions import BotoCoreError, ClientError

from sagestep.errors import UsageError
from sagestep.facts import json_object, output_so_far, run_facts
from statemachine.console import log_streams_url
from statemachine.framework import CLOUDWATCH_TAB, metric_definitions, scrape_series
from statemachine.train import LOG_GROUP as TRAINING_LOG_GROUP

TERMINAL = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# The history events (GetExecutionHistory's HistoryEventType) that end an attempt of the current state with an
# error, and those that start one. A Distributed Map's failure is MapRunFailed, then MapStateFailed.
STATE_FAILURES = ("TaskFailed", "TaskStartFailed", "TaskSubmitFailed", "TaskTimedOut", "LambdaFunctionFailed",
                  "LambdaFunctionScheduleFailed", "LambdaFunctionStartFailed", "LambdaFunctionTimedOut",
                  "MapRunFailed", "MapStateFailed", "ParallelStateFailed", "EvaluationFailed")
ATTEMPTS = ("TaskScheduled", "LambdaFunctionScheduled")


@dataclass
class StateRun:
    name: str
    status: str = "RUNNING"
    started: datetime | None = None
    ended: datetime | None = None

    @property
    def seconds(self) -> float | None:
        return None if not (self.started and self.ended) else round((self.ended - self.started).total_seconds(), 3)


@dataclass
class Progress:
    """What the history has said so far; on_state is told each time a state starts or ends."""
    states: list[StateRun] = field(default_factory=list)
    error: str | None = None
    cause: str | None = None
    seen: int = 0
    iterations: int = 0           # Map iterations under way: their inner states are not the run's states
    events: list[dict] = field(default_factory=list)     # the whole history, for the cost and the report

    def current(self) -> StateRun | None:
        return self.states[-1] if self.states else None

    def apply(self, event: dict, on_state: Callable[[StateRun], None]) -> None:
        kind, details = event["type"], event
        if kind == "MapIterationStarted":
            self.iterations += 1
        elif kind in ("MapIterationSucceeded", "MapIterationFailed", "MapIterationAborted"):
            self.iterations -= 1
        elif self.iterations:
            return
        if kind.endswith("StateEntered"):
            run = StateRun(event["stateEnteredEventDetails"]["name"], started=event["timestamp"])
            self.states.append(run)
            on_state(run)
        elif kind.endswith("StateExited") and self.current():
            run = self.current()
            run.ended = event["timestamp"]
            if run.status == "RUNNING":
                run.status = "SUCCEEDED"
            on_state(run)
        elif kind in STATE_FAILURES and self.current():
            self.current().status = "FAILED"
            failed = details.get(f"{kind[0].lower()}{kind[1:]}EventDetails")      # e.g. taskFailedEventDetails
            if failed:
                self.error, self.cause = failed.get("error"), failed.get("cause")
        elif kind in ATTEMPTS and self.current():
            self.current().status = "RUNNING"          # a Retry's next attempt: the failure before it is overcome
        elif kind == "ExecutionFailed":
            failed = details.get("executionFailedEventDetails", {})
            self.error, self.cause = failed.get("error", self.error), failed.get("cause", self.cause)
            run = self.current()
            if run and run.ended is None:
                run.ended, run.status = event["timestamp"], "FAILED"
                on_state(run)


def execution_input(dataset_uri: str, args) -> dict:
    """The execution input a command's run options make (DESIGN: labelColumn, hyperparameters,
    splitRatios, seed, idColumn, ignoreColumns, qualityMetric, qualityThreshold)."""
    options = {"labelColumn": args.label, "hyperparameters": dict(args.hyperparameter) or None,
               "splitRatios": args.split, "seed": args.seed, "idColumn": args.id, "ignoreColumns": args.ignore or None,
               "qualityMetric": args.quality_metric, "qualityThreshold": args.quality_threshold}
    return {"datasetUri": dataset_uri, **{key: value for key, value in options.items() if value is not None}}


def new_events(sfn, execution_arn: str, seen: int) -> list[dict]:
    """The history's events after the first `seen` (ids run 1, 2, …), read newest first: a poll reads what is new,
    not the whole history again (which, serialized by moto at every poll, slowed a local run's own thread)."""
    newer: dict[int, dict] = {}
    pages = sfn.get_paginator("get_execution_history").paginate(
        executionArn=execution_arn, reverseOrder=True, PaginationConfig={"PageSize": 100 if seen == 0 else 25})
    for page in pages:
        for event in page["events"]:
            if event["id"] <= seen:
                return [newer[key] for key in sorted(newer)]
            newer.setdefault(event["id"], event)     # a page read as the history grows may repeat an event
    return [newer[key] for key in sorted(newer)]


def follow(sfn, execution_arn: str, on_state: Callable[[StateRun], None] = lambda run: None,
           poll_seconds: float = 0.1, timeout_seconds: float | None = None) -> tuple[dict, Progress]:
    """Poll the history until the execution ends; returns DescribeExecution and the progress."""
    progress = Progress()
    started = time.monotonic()
    while True:
        description = sfn.describe_execution(executionArn=execution_arn)
        for event in new_events(sfn, execution_arn, progress.seen):
            progress.apply(event, on_state)
            progress.events.append(event)
        progress.seen = len(progress.events)
        if description["status"] in TERMINAL:
            return description, progress
        if timeout_seconds is not None and time.monotonic() - started > timeout_seconds:
            raise TimeoutError(f"{execution_arn} still {description['status']} after {timeout_seconds} s")
        time.sleep(poll_seconds)


def result_of(description: dict, progress: Progress) -> dict:
    """What `local` and `start` report of a finished execution (the --json object), before the
    parts only one of them knows (local files, console links)."""
    result = {"status": description["status"], "executionArn": description["executionArn"],
              "states": [{"name": s.name, "status": s.status, "seconds": s.seconds} for s in progress.states],
              "error": None, "cause": None, "metrics": {}, "outputs": {}}
    # The run's output, or as much of it as a run that did not succeed got to (its history); "output" is for the
    # caller to take apart (a failed run's has no predictions, only what it trained on and its training job).
    succeeded = description["status"] == "SUCCEEDED"
    result["output"] = json.loads(description["output"]) if succeeded else output_so_far(progress.events)
    result.update(run_facts(result["output"]))
    if not succeeded:
        result["error"], result["cause"] = failure_message(progress.error, progress.cause)
        result["failedState"] = failed_state(progress.states)
        job = failed_job(progress.cause)
        if job:
            result["failedJob"] = job
    return result


def progress_of(events: list[dict]) -> Progress:
    """The progress a whole history makes, read after the run (`runs`, the tests)."""
    progress = Progress(seen=len(events), events=events)
    for event in events:
        progress.apply(event, lambda state: None)
    return progress


def failed_state(states: list[StateRun]) -> str | None:
    """Where a run that did not succeed ended: the first state whose failure no Retry overcame, else the state
    it was in when it timed out or was stopped. Every Catch of the pipeline leads only to a clean-up and a Fail
    state, which pass that failure on (DiscardPreprocess re-raises a ProfileShards failure): they are not it."""
    failed = next((state.name for state in states if state.status == "FAILED"), None)
    open_states = [state.name for state in states if state.ended is None]
    return failed or (open_states[-1] if open_states else None)


def failure_message(error: str | None, cause: str | None) -> tuple[str | None, str | None]:
    """The original error behind a <Step>Failed state: its name and message."""
    caught = json_object(cause)
    if not caught:
        return error, cause
    try:
        inner = json.loads(caught.get("Cause", ""))
    except (json.JSONDecodeError, TypeError):
        inner = {}
    if isinstance(inner, dict) and "errorType" in inner:
        return inner["errorType"], inner.get("errorMessage")
    if isinstance(inner, dict) and inner.get("FailureReason"):
        return caught.get("Error"), inner["FailureReason"]
    return caught.get("Error", error), caught.get("Cause", cause)


def failed_job(cause: str | None) -> dict | None:
    """The SageMaker job a TrainFailed / BatchPredictFailed cause names, with its log group; only when
    the job ran and failed (States.TaskFailed): a refused request created no job and has no log."""
    caught = json_object(cause)
    job = caught.get("failedJob")
    if caught.get("Error") == "States.TaskFailed" and isinstance(job, dict) and job.get("name"):
        return {"name": job["name"], "logGroup": job["logGroup"]}
    return None


MAX_LOG_PAGES = 1000      # 1 MB a page: far more than a training job writes


def job_log(logs, group: str, job: str, last: int | None = None) -> list[str]:
    """A job's log as CloudWatch stores it: all its streams, in time order (only the last lines when
    last is given)."""
    events = []
    for page in logs.get_paginator("describe_log_streams").paginate(logGroupName=group, logStreamNamePrefix=f"{job}/"):
        for stream in page["logStreams"]:
            events += _stream_events(logs, group, stream["logStreamName"], last)
    events.sort(key=lambda event: event["timestamp"])
    return [event["message"] for event in (events[-last:] if last else events)]


def _stream_events(logs, group: str, stream: str, last: int | None) -> list[dict]:
    request = {"logGroupName": group, "logStreamName": stream}
    if last:
        return logs.get_log_events(**request, startFromHead=False, limit=last)["events"]
    events, token = [], None
    for _ in range(MAX_LOG_PAGES):
        # A page may be empty with more to come; the end is the same forward token answered twice.
        answer = logs.get_log_events(**request, startFromHead=True, **({"nextToken": token} if token else {}))
        events += answer["events"]
        if answer["nextForwardToken"] == token:
            break
        token = answer["nextForwardToken"]
    return events


def attach_job_log(result: dict, logs, region: str | None, lines: int = 10) -> None:
    """Adds the failed job's last log lines (its reason is there: the image's launcher overwrites the
    script's failure file) and the console link to them (none without a region: no console)."""
    job = result.get("failedJob")
    if not job:
        return
    if region:
        job["console"] = log_streams_url(region, job["logGroup"], job["name"])
    try:
        tail = job_log(logs, job["logGroup"], job["name"], last=lines)
    except (ClientError, BotoCoreError) as error:
        job["logTail"] = [f"(cannot read {job['logGroup']}: {error})"]
        return
    job["logTail"] = [line.replace(CLOUDWATCH_TAB, "  ") for line in tail]


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def download_outputs(s3, output: dict, out_dir: Path) -> dict[str, Path]:
    """A successful run's files, each into out_dir under its own name: the predictions joined with the
    held-out rows' labels (and ids), the schema, the metrics file and the model."""
    evaluation = output.get("evaluation") or {}
    uris = {"predictions": evaluation.get("predictionsFile"), "schema": output.get("schemaUri"), "metrics": evaluation.get("evaluationFile"),
            "modelArtifact": output.get("modelArtifacts")}
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, uri in uris.items():
        if uri:
            bucket, key = split_s3_uri(uri)
            files[name] = out_dir / Path(key).name
            s3.download_file(bucket, key, str(files[name]))
    return files


def download_schema(s3, output: dict, out_dir: Path) -> dict[str, Path]:
    """A run that did not succeed: its schema (the report's problem, label and features) when the preprocess step
    wrote one and it is still there (a failed preprocess leaves nothing; the run data expires)."""
    try:
        return download_outputs(s3, {"schemaUri": output.get("schemaUri")}, out_dir)
    except (ClientError, BotoCoreError):
        return {}


def attach_evaluation(result: dict, s3) -> None:
    """The Evaluate step's whole file (with the confusion matrix, too large for the run's output) in
    place of its summary; the summary stays if the file cannot be read."""
    uri = (result.get("evaluation") or {}).get("evaluationFile")
    if not uri:
        return
    bucket, key = split_s3_uri(uri)
    try:
        result["evaluation"] = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    except (ClientError, BotoCoreError) as error:
        result["evaluation"]["unreadable"] = f"cannot read {uri}: {error}"


def attach_curves(result: dict, logs) -> dict[str, list[float]] | None:
    """The validation curve(s) of a finished training job, scraped from its CloudWatch log with the
    image's own metric definitions: the points the SageMaker console plots. Returns the train and
    validation series of the same read (the report's learning curves), or None when it read no log."""
    job = (result.get("output") or {}).get("trainingJobName")
    if not job:
        return None
    try:
        series = scrape_series(job_log(logs, TRAINING_LOG_GROUP, job),
                               metric_definitions("train") + metric_definitions())
    except (ClientError, BotoCoreError) as error:
        result["curves"] = {"error": f"cannot read {TRAINING_LOG_GROUP}: {error}"}
        return None
    result["curves"] = {name: points for name, points in series.items() if name.startswith("validation:")}
    return series


def tuning_trials(sagemaker, job: str) -> list[dict]:
    """Every trial of a tuning job, in the order SageMaker started them: ListTrainingJobsForHyperParameterTuningJob,
    page after page, as {"name", "hyperparameters" (the tuned ones), "objective" (None when it reported none),
    "status"}."""
    request = {"HyperParameterTuningJobName": job, "SortBy": "CreationTime", "SortOrder": "Ascending",
               "MaxResults": 100}
    trials = []
    while True:
        page = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(**request)
        trials += [{"name": summary["TrainingJobName"], "hyperparameters": summary.get("TunedHyperParameters", {}),
                    "objective": (summary.get("FinalHyperParameterTuningJobObjectiveMetric") or {}).get("Value"),
                    "status": summary["TrainingJobStatus"]} for summary in page["TrainingJobSummaries"]]
        if not page.get("NextToken"):
            return trials
        request["NextToken"] = page["NextToken"]


def attach_tuning(result: dict, sagemaker) -> None:
    """result["tuning"] of a tuned run: the job, its objective, the best trial and every trial (DESIGN's --json
    shape); a trial list that cannot be read says why in place of the trials."""
    tuning = (result.get("output") or {}).get("tuning")
    if not isinstance(tuning, dict) or not tuning.get("job"):
        return
    best = (tuning.get("best") or {}).get("TrainingJobName")
    result["tuning"] = {"job": tuning["job"], "objective": tuning.get("objective"), "best": best}
    try:
        result["tuning"]["trials"] = tuning_trials(sagemaker, tuning["job"])
    except (ClientError, BotoCoreError) as error:
        result["tuning"]["trials"] = {"error": f"cannot list the trials of {tuning['job']}: {error}"}
