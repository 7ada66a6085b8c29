"""BatchPredict: sagemaker:createTransformJob.sync over the test features.

The request carries no role: the job runs with the model's ExecutionRoleArn. No Retry, as for Train:
a SageMaker API error can also come from a poll after the job was created (README, "Retries").
"""
from __future__ import annotations

from . import errors
from .iam import allow, list_tags, sync_rule
from .instances import has_local_storage
from .naming import job_name, tags
from .refs import Refs
from .settings import PipelineSettings

NAME = "BatchPredict"
LOG_GROUP = "/aws/sagemaker/TransformJobs"
MAX_PAYLOAD_MB = 6


def parameters(refs: Refs, settings: PipelineSettings) -> dict:
    output = {"S3OutputPath.$": "$.run.predictionsUri", "Accept": "text/csv", "AssembleWith": "Line"}
    resources = {"InstanceType": settings.transform_instance_type,
                 "InstanceCount": settings.transform_instance_count}
    if settings.kms_key_arn:
        output["KmsKeyId"] = settings.kms_key_arn
        if not has_local_storage(settings.transform_instance_type):
            resources["VolumeKmsKeyId"] = settings.kms_key_arn
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


def states(refs: Refs, settings: PipelineSettings, next_state: str) -> dict[str, dict]:
    return {
        NAME: {
            "Type": "Task",
            "Comment": "Predicts the test rows, many records per request, one output line per input line.",
            "Resource": refs.integration("sagemaker:createTransformJob.sync"),
            "Parameters": parameters(refs, settings),
            "Catch": errors.catch_all(NAME, via_job_cause=True),
            "ResultSelector": {"jobName.$": "$.TransformJobName"},
            "ResultPath": "$.prediction",
            "Next": next_state,
        },
        errors.failure_cause_state_name(NAME): errors.job_failure_cause(NAME, job_name("predict", attempt="0"), LOG_GROUP),
    }


def statements(refs: Refs) -> list[dict]:
    return [
        allow("TransformJobs", ["sagemaker:AddTags", "sagemaker:CreateTransformJob",
                                "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"],
              [refs.sagemaker_arn("transform-job")]),
        list_tags(),
        sync_rule(refs, "TransformJobEvents", "StepFunctionsGetEventsForSageMakerTransformJobsRule"),
    ]
