"""BatchPredict: sagemaker:createTransformJob.sync over the test features.

The request carries no role: the job runs with the model's ExecutionRoleArn.
"""
from __future__ import annotations

from . import errors
from .iam import allow, list_tags, sync_rule
from .naming import job_name, tags
from .refs import Refs
from .settings import PipelineSettings

NAME = "BatchPredict"
MAX_PAYLOAD_MB = 6


def state(refs: Refs, settings: PipelineSettings, next_state: str) -> dict:
    output = {"S3OutputPath.$": "$.run.predictionsUri", "Accept": "text/csv", "AssembleWith": "Line"}
    if settings.kms_key_arn:
        output["KmsKeyId"] = settings.kms_key_arn
    return {
        "Type": "Task",
        "Comment": "Predicts the test rows, many records per request, one output line per input line.",
        "Resource": "arn:aws:states:::sagemaker:createTransformJob.sync",
        "Parameters": {
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
            "TransformResources": {
                "InstanceType": settings.transform_instance_type,
                "InstanceCount": settings.transform_instance_count,
                **({"VolumeKmsKeyId": settings.kms_key_arn} if settings.kms_key_arn else {}),
            },
            "Tags": tags(refs),
        },
        "Retry": errors.sagemaker_api_retry(),
        "Catch": errors.catch_all(NAME),
        "ResultSelector": {"jobName.$": "$.TransformJobName"},
        "ResultPath": "$.prediction",
        "Next": next_state,
    }


def statements(refs: Refs) -> list[dict]:
    return [
        allow("TransformJobs", ["sagemaker:AddTags", "sagemaker:CreateTransformJob",
                                "sagemaker:DescribeTransformJob", "sagemaker:StopTransformJob"],
              [refs.sagemaker_arn("transform-job")]),
        list_tags(),
        sync_rule(refs, "TransformJobEvents", "StepFunctionsGetEventsForSageMakerTransformJobsRule"),
    ]
