"""BatchPredict: sagemaker:createTransformJob.sync over the test features.

The request carries no role: the job runs with the model's ExecutionRoleArn. No Retry, as for Train:
a SageMaker API error can also come from a poll after the job was created (README, "Retries").
With a budget, the task's TimeoutSeconds bounds the job, and BatchPredictStop stops it when that time runs out.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone

from . import errors, instances
from .iam import allow, list_tags, sync_rule
from .naming import job_name, tags
from .refs import Refs
from .settings import PipelineSettings
from .step import Job, JobUse, Step, then

NAME = "BatchPredict"
STOP = f"{NAME}Stop"
LOG_GROUP = "/aws/sagemaker/TransformJobs"
MAX_PAYLOAD_MB = 6


def cost(job: dict, estimate: bool) -> JobUse:
    """Batch transform bills its instances from TransformStartTime to TransformEndTime, per second."""
    resources = job["TransformResources"]
    started, ended = job.get("TransformStartTime"), job.get("TransformEndTime")
    seconds = math.ceil((_instant(ended) - _instant(started)).total_seconds()) if started and ended else None
    return JobUse("batch transform", resources["InstanceType"], resources["InstanceCount"], seconds, "transform",
                  "no start and end time" if seconds is None else f"{seconds} s",
                  "the job reports no start and end time (it may never have started)")


def _instant(value: datetime | int | float) -> datetime:
    """A Describe* timestamp as boto3 returns it (datetime) or as Step Functions hands a job document on
    (epoch milliseconds)."""
    return value if isinstance(value, datetime) else datetime.fromtimestamp(value / 1000, timezone.utc)


# botocore's sagemaker model: TransformJobName at most 63 characters.
JOB = Job("transform", "createTransformJob.sync", "TransformJobName", "-predict-", 63, describe="DescribeTransformJob",
          console="/transform-jobs/", log_group=LOG_GROUP, cost=cost, local="sagestep.local.sagemaker_task:transform_job")
# BatchPredict never retries (R7): its job is attempt 0.
JOB_NAME = job_name(JOB, attempt="0")
TIMED_OUT_CAUSE = ("batch prediction ran past the time maxRunCostUsd leaves it (the BatchPredict task's "
                   "TimeoutSeconds); its transform job was stopped")


def parameters(refs: Refs, settings: PipelineSettings) -> dict:
    output = {"S3OutputPath.$": "$.run.predictionsUri", "Accept": "text/csv", "AssembleWith": "Line"}
    if settings.kms_key_arn:
        output["KmsKeyId"] = settings.kms_key_arn
    resources = instances.with_volume_key({"InstanceType": settings.transform_instance_type,
                                           "InstanceCount": settings.transform_instance_count}, settings.kms_key_arn)
    return {
        "TransformJobName.$": job_name(JOB),
        "ModelName.$": "$.model.name",
        "BatchStrategy": "MultiRecord",
        "MaxPayloadInMB": MAX_PAYLOAD_MB,
        "TransformInput": {
            "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri.$": "$.run.transformInput"}},
            "ContentType": "text/csv",
            "SplitType": "Line",
            "CompressionType": "None",
        },
        "TransformOutput": output,
        "TransformResources": resources,
        "Tags": tags(refs),
    }


def stop_on_timeout(refs: Refs, timeout_seconds: int) -> tuple[dict, list[dict], dict[str, dict]]:
    """CreateTransformJob has no runtime limit of its own: the task's TimeoutSeconds bounds it. Whether a Task
    timeout stops a .sync job is not clear (the Step Functions guide's "Run a Job (.sync)" names a stopped
    execution, a failed Parallel branch and a failed Map iteration; docs/operations.md, "Budget guard"), so
    States.Timeout goes to BatchPredictStop, which stops the job (aws-sdk:sagemaker:stopTransformJob), then
    to the step's Fail state with a cause that says so. A failed stop keeps its error under
    $.error.stopFailed beside the timeout: the job may still be running."""
    catch = {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": STOP}
    stop = {STOP: {
        "Type": "Task",
        "Comment": "The budget's time ran out: stops the transform job, which a Task timeout leaves running.",
        "Resource": refs.integration("aws-sdk:sagemaker:stopTransformJob"),
        "Parameters": {"TransformJobName.$": JOB_NAME},
        "ResultSelector": {"Error": "States.Timeout", "Cause": TIMED_OUT_CAUSE},
        "ResultPath": "$.error",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error.stopFailed",
                   "Next": errors.failure_cause_state_name(NAME)}],
        "Next": errors.failure_cause_state_name(NAME),
    }}
    return {"TimeoutSeconds": timeout_seconds}, [catch], stop


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    timeout, catch, stop = (stop_on_timeout(refs, settings.transform_timeout_seconds)
                            if settings.transform_timeout_seconds else ({}, [], {}))
    return {
        NAME: {
            "Type": "Task",
            "Comment": "Predicts the test rows, many records per request, one output line per input line.",
            "Resource": refs.integration("sagemaker:createTransformJob.sync"),
            "Parameters": parameters(refs, settings),
            "Catch": catch + errors.catch_all(NAME, via_job_cause=True),
            **timeout,
            "ResultSelector": {"jobName.$": "$.TransformJobName"},
            "ResultPath": "$.prediction",
            **then(next_state),
        },
        **stop,
        **errors.job_fail_states(NAME, JOB_NAME, LOG_GROUP),
    }


def statements(refs: Refs) -> list[dict]:
    """StopTransformJob: for the .sync integration and for BatchPredictStop, on this stack's jobs only."""
    return [
        allow("TransformJobs", ["sagemaker:AddTags", "sagemaker:CreateTransformJob",
                                "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"],
              [refs.sagemaker_arn("transform-job")]),
        list_tags(),
        sync_rule(refs, "TransformJobEvents", "StepFunctionsGetEventsForSageMakerTransformJobsRule"),
    ]


def summary(rendered: dict[str, dict]) -> list[str]:
    parameters = rendered[NAME]["Parameters"]
    return instances.summary("batch prediction", parameters["TransformResources"],
                             "KmsKeyId" in parameters["TransformOutput"])


STEP = Step(NAME, states, statements, job=JOB, summary=summary, outputs={
    "transformJobName.$": "$.prediction.jobName", "predictionsUri.$": "$.run.predictionsUri"})
