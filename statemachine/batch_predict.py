"""BatchPredict: sagemaker:createTransformJob.sync over the test features.

The request carries no role: the job runs with the model's ExecutionRoleArn. No Retry, as for Train:
a SageMaker API error can also come from a poll after the job was created (README, "Retries").
"""
from __future__ import annotations

from . import errors, instances
from .iam import allow, list_tags, sync_rule
from .naming import job_name, tags
from .refs import Refs
from .settings import PipelineSettings
from .step import Step, then

NAME = "BatchPredict"
LOG_GROUP = "/aws/sagemaker/TransformJobs"
MAX_PAYLOAD_MB = 6


def parameters(refs: Refs, settings: PipelineSettings) -> dict:
    output = {"S3OutputPath.$": "$.run.predictionsUri", "Accept": "text/csv", "AssembleWith": "Line"}
    if settings.kms_key_arn:
        output["KmsKeyId"] = settings.kms_key_arn
    resources = instances.with_volume_key({"InstanceType": settings.transform_instance_type,
                                           "InstanceCount": settings.transform_instance_count}, settings.kms_key_arn)
    return {
        "TransformJobName.$": job_name("predict"),
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


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    return {
        NAME: {
            "Type": "Task",
            "Comment": "Predicts the test rows, many records per request, one output line per input line.",
            "Resource": refs.integration("sagemaker:createTransformJob.sync"),
            "Parameters": parameters(refs, settings),
            "Catch": errors.catch_all(NAME, via_job_cause=True),
            # CreateTransformJob has no runtime limit of its own: with a budget, the task's timeout bounds it
            # (Step Functions stops the job when the task times out).
            **({"TimeoutSeconds": settings.transform_timeout_seconds} if settings.transform_timeout_seconds else {}),
            "ResultSelector": {"jobName.$": "$.TransformJobName"},
            "ResultPath": "$.prediction",
            **then(next_state),
        },
        # BatchPredict never retries (R7): its job is attempt 0.
        **errors.job_fail_states(NAME, job_name("predict", attempt="0"), LOG_GROUP),
    }


def statements(refs: Refs) -> list[dict]:
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


STEP = Step(NAME, states, statements, summary=summary, outputs={
    "transformJobName.$": "$.prediction.jobName", "predictionsUri.$": "$.run.predictionsUri"})
