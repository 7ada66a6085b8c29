"""The sagemaker service of moto's ASL interpreter (registered through moto_adapter), run locally.

Every request is checked against botocore's service model first, and against AWS's server-side rules
by the emulator (aws_rules.py); an invalid one fails the task as SageMaker would. A valid one is
recorded in moto's SageMaker backend; with .sync, the job runs as a subprocess (containers.py) and
the task ends with the job's final Describe* document, or States.TaskFailed whose cause is that document.
StopTransformJob, which moto lacks, stops a local transform job (stop_transform_job). A tuning job's trials run
as local training jobs too (tuning.py).
"""
from __future__ import annotations

import importlib
import json
import math
import threading
from datetime import datetime
from typing import Any, Callable

import boto3
from botocore import xform_name
from botocore.exceptions import ClientError
from botocore.validate import ParamValidator

from statemachine import jobs as pipeline_jobs
from statemachine.check import sagemaker_model
from statemachine.errors import SAGEMAKER_API_ERROR

from . import tuning
from .containers import Outcome, TrainingRun, TransformRun, host_names
from .job_logs import JobLogs, final_metrics
from .moto_adapter import ServiceTask, sagemaker_jobs, task_timed_out


def validate_request(operation: str, params: dict) -> list[str]:
    """What botocore's client would refuse before sending (required, unknown, types, min): the
    task fails as Step Functions reports it. AWS's server-side rules answer on the request itself
    (aws_rules.py)."""
    model = sagemaker_model().operation_model(operation)
    report = ParamValidator().validate(params, model.input_shape)
    return [p.strip() for p in report.generate_report().splitlines()] if report.has_errors() else []


def to_sfn_json(value: Any) -> Any:
    """Step Functions hands job documents on with timestamps as epoch milliseconds."""
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: to_sfn_json(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, list):
        return [to_sfn_json(v) for v in value]
    return value


STARTING_WAIT_SECONDS = 30.0     # how long closing waits for a job caught starting (data download, processes)


class LocalJobs:
    """The engine's side of the hook: where jobs run and who hears their output."""

    def __init__(self, region: str, on_line: Callable[[str, str], None] | None = None):
        self.region = region
        self.on_line = on_line or (lambda job, line: None)
        self._clients: dict[str, object] = {}
        self._lock = threading.Lock()
        self.running: set = set()
        self.stopped: set[str] = set()      # jobs a Stop*Job request named, perhaps before they started here
        self.tunings: dict[str, Any] = {}     # the tuning jobs run here (tuning.TuningRun), by name
        self.closed = False
        self._starting = 0                    # jobs being started (their folder made, their processes starting)
        self._started = threading.Condition(self._lock)

    def stop_all(self) -> None:
        """The engine is closing (the run ended or was interrupted): no job outlives it, and a job the
        interpreter's thread starts after this is stopped as it starts. The jobs are no longer running, so
        no thread records their end (or writes their log) after the emulator has gone."""
        for run in list(self.tunings.values()):
            run.close()
        with self._lock:
            self.closed = True
            running = list(self.running)
            self.running.clear()
        for run in running:
            run.stop()
        # A job still starting (Ctrl-C as its processes start) is stopped by its own thread as it is tracked;
        # wait for that, or its folder outlives the engine when the process exits.
        with self._started:
            self._started.wait_for(lambda: self._starting == 0, timeout=STARTING_WAIT_SECONDS)

    def start(self, start: Callable[[], Any]):
        """start() a job's run and track it at once (a job that cannot start: _NotStarted, with its reason)."""
        with self._lock:
            self._starting += 1
        try:
            try:
                run = start()
            except Exception as error:  # noqa: BLE001 - the job fails with the reason, as SageMaker's would
                run = _NotStarted(error)
            self.track(run)
            return run
        finally:
            with self._started:
                self._starting -= 1
                self._started.notify_all()

    def track(self, run) -> None:
        with self._lock:
            if not self.closed and getattr(run, "name", None) not in self.stopped:
                self.running.add(run)
                return
        run.stop()

    def release(self, run) -> bool:
        """The job ended by itself: it leaves the running jobs; False when a stop took it first."""
        with self._lock:
            if run in self.running:
                self.running.discard(run)
                return True
            return False

    def stop(self, name: str, record: Callable[[], None]) -> None:
        """A Stop*Job request: record() its Stopped status (with the lock held, so that the job's own ending
        cannot record another), then the job's processes and folder go, if it runs here."""
        with self._lock:
            run = next((r for r in self.running if getattr(r, "name", None) == name), None)
            self.running.discard(run)
            self.stopped.add(name)
            record()
        if run is not None:
            run.stop()

    def job_logs(self, kind: str, job: str, instances: int) -> JobLogs:
        """The job's CloudWatch log, a stream per instance; each line also goes to on_line (live progress)."""
        return JobLogs(self.client("logs"), kind, job, host_names(instances), lambda line: self.on_line(job, line))

    def client(self, service: str):
        """One client per service, made once: creating boto3 clients from several interpreter threads
        at a time is not thread-safe (using one is)."""
        with self._lock:
            if service not in self._clients:
                self._clients[service] = boto3.client(service, region_name=self.region)
            return self._clients[service]

    def backend(self):
        return sagemaker_jobs(self.region)


JOBS: LocalJobs | None = None     # the running engine's; None once it has closed


def current_jobs(task: "SageMakerLocal", env) -> LocalJobs:
    """The engine's jobs, read once per task: the engine may close (Ctrl-C) while the interpreter's thread
    is still inside a task, and that thread keeps the object it started with."""
    jobs = JOBS
    if jobs is None:
        raise task.failure(env, "States.Runtime", "the local engine has closed")
    return jobs


class SageMakerLocal(ServiceTask):
    def _operation(self) -> str:
        action = self.resource.api_action
        return action[0].upper() + action[1:]

    def _get_supported_parameters(self) -> set[str] | None:
        """The operation's members (moto refuses a resource without them); unknown actions: None."""
        model = sagemaker_model()
        if self._operation() not in model.operation_names:
            return None
        return set(model.operation_model(self._operation()).input_shape.members)

    def _eval_parameters(self, env) -> dict:
        """Keep unknown parameters, so the request check rejects them as SageMaker would
        (the base class drops them silently)."""
        if self.parargs is None:
            return {}
        self.parargs.eval(env=env)
        return env.stack.pop()

    def _from_error(self, env, ex: Exception):
        if isinstance(ex, ClientError):
            # Step Functions names every SageMaker API error so; the code is in the cause.
            code = ex.response["Error"]["Code"]
            return self.failure(env, SAGEMAKER_API_ERROR,
                                f"{ex.response['Error']['Message']} (Service: SageMaker, Status Code: 400, "
                                f"Error Code: {code})").failure_event
        return super()._from_error(env=env, ex=ex)

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, *args, **kwargs):
        operation = self._operation()
        problems = validate_request(operation, normalised_parameters)
        if problems:
            raise self.failure(env, SAGEMAKER_API_ERROR, "; ".join(problems)
                               + " (Service: SageMaker, Status Code: 400, Error Code: ValidationException)")
        tuned = operation == "CreateHyperParameterTuningJob"
        if tuned and (refused := tuning.hyperband_refusal(normalised_parameters)):
            raise self.task_failed(env, refused)
        client = current_jobs(self, env).client("sagemaker")
        env.stack.append(to_sfn_json(getattr(client, xform_name(operation))(**normalised_parameters)))

    def _build_sync_resolver(self, env, resource_runtime_part, normalised_parameters, *args, **kwargs):
        """The .sync job runs as its step's Job declares (Job.local, "module:function"): the function gets
        (this task, env, the engine's LocalJobs, the request) and returns the interpreter's resolver."""
        env.stack.pop()
        action = f"{self.resource.api_action}.sync"
        job = next((job for job in pipeline_jobs() if job.action == action and job.local), None)
        if job is None:
            raise self.failure(env, "States.Runtime", f"{self._operation()} has no .sync integration")
        module, function = job.local.split(":")
        return getattr(importlib.import_module(module), function)(self, env, current_jobs(self, env),
                                                                  normalised_parameters)


def training_job(task: SageMakerLocal, env, jobs: LocalJobs, request: dict) -> Callable:
    """CreateTrainingJob.sync: the job's container runs here (train.JOB's local runner)."""
    name = request["TrainingJobName"]
    job, run, log = start_training(jobs, request)
    return _sync_job(task, env, jobs, run, log,
                     lambda outcome, launched: record_training(job, outcome, request, log, launched),
                     lambda: jobs.client("sagemaker").describe_training_job(TrainingJobName=name))


def transform_job(task: SageMakerLocal, env, jobs: LocalJobs, request: dict) -> Callable:
    """CreateTransformJob.sync: the model's serving container runs here (batch_predict.JOB's local runner)."""
    name = request["TransformJobName"]
    client = jobs.client("sagemaker")
    job = jobs.backend().transform_jobs[name]
    job.transform_job_status = "InProgress"
    model = client.describe_model(ModelName=request["ModelName"])
    log = jobs.job_logs("transform", name, request["TransformResources"]["InstanceCount"])
    run = jobs.start(lambda: TransformRun(jobs.client("s3"), request, model, log.add))

    def launch(launched: datetime) -> None:
        job.transform_start_time = launched        # what a stopped job is billed from
    return _sync_job(task, env, jobs, run, log,
                     lambda outcome, launched: _record(job, "CreateTransformJob", outcome, None, launched),
                     lambda: client.describe_transform_job(TransformJobName=name), launch)


def tuning_job(task: SageMakerLocal, env, jobs: LocalJobs, request: dict) -> Callable:
    """CreateHyperParameterTuningJob.sync: its trials run here as training jobs (tune.JOB's local runner)."""
    return tuning.tuning_resolver(task, env, jobs, request["HyperParameterTuningJobName"])


def _sync_job(task: SageMakerLocal, env, jobs: LocalJobs, run, log: JobLogs,
              record: Callable[[Outcome, datetime | None], None], describe: Callable[[], dict],
              launch: Callable[[datetime], None] = lambda launched: None) -> Callable:
    """A started job, watched until it ends: the resolver returns its final Describe* document, or fails the task
    (States.TaskFailed) with it when the job did not complete."""
    # SageMaker bills a job from when it starts on its instances: here, once its container process is up
    # (preparing the image's environment is the instances' start-up, which AWS does not bill).
    launched = None if isinstance(run, _NotStarted) else datetime.now().astimezone()
    if launched:
        launch(launched)

    def ended(outcome: Outcome) -> None:
        """The job's own end, recorded unless a Stop*Job request (or the engine closing) stopped it first."""
        if jobs.release(run):
            log.flush()
            record(outcome, launched)

    def watch() -> None:
        """A stopped execution (or Parallel branch) stops the job. A Task timeout does not: the Step
        Functions guide ("Run a Job (.sync)") names a stopped execution and a failed Parallel branch or Map
        iteration, not a timeout, so the job runs on until it ends or a Stop*Job request stops it
        (BatchPredictStop), and its end is recorded (the cautious reading: docs/operations.md)."""
        while env.is_running() and run.poll_running():
            threading.Event().wait(0.1)
        if not run.poll_running():
            return
        if not task_timed_out(env):
            run.stop()
            log.flush()
            return
        while run in jobs.running and run.poll_running():
            threading.Event().wait(0.1)
        if run in jobs.running:
            ended(run.poll())
    threading.Thread(target=watch, daemon=True).start()

    def resolver():
        outcome = run.poll()
        log.flush()
        if outcome is None:
            return None
        ended(outcome)
        described = to_sfn_json(describe())
        if described.get("TrainingJobStatus", described.get("TransformJobStatus")) != "Completed":
            raise task.task_failed(env, json.dumps(described))
        return described
    return resolver


def stop_transform_job(service: str, operation: str, params: dict) -> tuple[int, dict, str] | None:
    """StopTransformJob, which moto does not implement: an InProgress job ends Stopped ("the status of the job
    changes to Stopping. After Amazon SageMaker stops the job, the status is set to Stopped", API reference,
    StopTransformJob; here at once), its local processes and folder gone. An unknown job: ResourceNotFound, the
    error the API reference lists (its message is not documented). A job that already ended is left as it is
    (what AWS answers then is not documented). The request was checked against the model first (aws_rules)."""
    jobs = JOBS
    if (service, operation) != ("sagemaker", "StopTransformJob") or jobs is None:
        return None
    name = params.get("TransformJobName")
    job = jobs.backend().transform_jobs.get(name)
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if job is None:
        return 400, headers, json.dumps({"__type": "ResourceNotFound", "message": f"Transform job {name} not found"})

    def record() -> None:
        if job.transform_job_status == "InProgress":
            job.transform_job_status = "Stopped"
            job.transform_end_time = job.last_modified_time = datetime.now().astimezone()
    jobs.stop(name, record)
    return 200, headers, "{}"


class _NotStarted:
    """A job whose container could not even start (say, its code bundle is missing)."""

    def __init__(self, error: Exception):
        self.outcome = Outcome("Failed", f"ClientError: {type(error).__name__}: {error}")

    def poll(self) -> Outcome:
        return self.outcome

    def poll_running(self) -> bool:
        return False

    def stop(self) -> None:
        pass


def start_training(jobs: LocalJobs, request: dict):
    """A training job moto recorded, started here: (moto's job, its local run, its log). moto completes
    jobs at creation and invents metric definitions; the truth goes back first."""
    name = request["TrainingJobName"]
    job = jobs.backend().training_jobs[name]
    job.algorithm_specification = request["AlgorithmSpecification"]
    job.training_job_status, job.secondary_status = "InProgress", "Training"
    job.final_metric_data_list = None
    log = jobs.job_logs("training", name, request["ResourceConfig"]["InstanceCount"])
    return job, jobs.start(lambda: TrainingRun(jobs.client("s3"), request, log.add)), log


def record_training(job, outcome: Outcome, request: dict, log: JobLogs, launched: datetime | None) -> None:
    """A training job's end in moto, with the metrics scraped from its log."""
    _record(job, "CreateTrainingJob", outcome, final_metrics(request, log.stored), launched)


def _record(job, operation: str, outcome: Outcome, metrics: list[dict] | None, launched: datetime | None) -> None:
    """The final status in moto, as DescribeTrainingJob / DescribeTransformJob would show it, with the
    metrics SageMaker would have scraped from the job's log (none: the field is left out). A job that ran
    (launched) gets its start time and, for training, TrainingTimeInSeconds and BillableTimeInSeconds from
    its real wall time, what the cost of a local run is estimated from; with managed spot the billable time
    is the training time too, as no spot discount can be known locally."""
    now = datetime.now().astimezone()
    if operation == "CreateTrainingJob":
        job.training_job_status = outcome.status
        job.secondary_status = outcome.status
        job.training_end_time = job.last_modified_time = now
        job.final_metric_data_list = metrics
        if launched:
            job.training_start_time = launched
            job.training_time_in_seconds = job.billable_time_in_seconds = max(
                1, math.ceil((now - launched).total_seconds()))
    else:
        job.transform_job_status = outcome.status
        job.transform_end_time = job.last_modified_time = now
        if launched:
            job.transform_start_time = launched
    job.failure_reason = outcome.failure_reason
