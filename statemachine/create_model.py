"""CreateModel: register the trained artifacts with the inference code (request-response only).

Owns the model role, which CreateModel passes and the batch transform job then runs under.
"""
from __future__ import annotations

from preprocess import layout

from . import errors
from .batch_predict import LOG_GROUP as TRANSFORM_LOG_GROUP
from .iam import RUN_OBJECTS, allow, document, job_common, list_run_data, list_tags, pass_role, sagemaker_trust
from .naming import job_name, tags
from .refs import Refs
from .settings import PipelineSettings
from .step import Job, JobRole, Step, then

NAME = "CreateModel"
# botocore's sagemaker model: ModelName at most 63 characters. No .sync job: nothing runs, so nothing is billed.
JOB = Job("model", "createModel", "ModelName", "-model-", 63, console="/models/")
INFERENCE_PROGRAM = "inference.py"
INFERENCE_BUNDLE = "inference"
ROLE_KEY = "model"


def container(refs: Refs) -> dict:
    """The serving image, the trained artifacts and the inference handlers: the model's container, which the
    Register step's model package repeats so that a model built from either serves the same way."""
    return {
        "Image": refs.serving_image,
        "ModelDataUrl.$": "$.training.modelArtifacts",
        "Environment": {
            "SAGEMAKER_PROGRAM": INFERENCE_PROGRAM,
            "SAGEMAKER_SUBMIT_DIRECTORY": refs.inference_code_uri,
            "SAGEMAKER_REGION": refs.region,
            "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
        },
    }


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    return {
        NAME: {
            "Type": "Task",
            "Comment": "Registers the model with the serving container and the inference handlers.",
            "Resource": refs.integration("sagemaker:createModel"),
            "Parameters": {
                "ModelName.$": job_name(JOB),
                "ExecutionRoleArn": refs.role_arn(ROLE_KEY),
                "PrimaryContainer": container(refs),
                "Tags": tags(refs),
            },
            "Retry": errors.sagemaker_api_retry(),
            "Catch": errors.catch_all(NAME),
            "ResultSelector": {
                "arn.$": "$.ModelArn",
                "name.$": "States.ArrayGetItem(States.StringSplit($.ModelArn, '/'), 1)",
            },
            "ResultPath": "$.model",
            **then(next_state),
        },
        **errors.fail_state(NAME),
    }


def statements(refs: Refs) -> list[dict]:
    return [
        allow("Models", ["sagemaker:AddTags", "sagemaker:CreateModel"], [refs.sagemaker_arn("model")]),
        list_tags(),
        pass_role("PassModelRole", refs.role_arn(ROLE_KEY)),
    ]


def role_trust(refs: Refs) -> dict:
    """SageMaker's confused-deputy guide asks for the account-wide SageMaker ARN on model roles."""
    return sagemaker_trust(refs, refs.arn("sagemaker", "*"))


def role_policy(refs: Refs, settings: PipelineSettings) -> dict:
    """CreateModel's role, which the batch transform job also runs under; it reads every inference
    bundle (an execution started before a deploy still names an earlier one)."""
    return document([
        allow("ReadModelArtifacts", ["s3:GetObject"], [refs.s3(refs.artifacts_bucket, "models/*")]),
        allow("ReadInferenceCode", ["s3:GetObject"],
              [refs.s3(refs.artifacts_bucket, f"{layout.code_key_prefix(INFERENCE_BUNDLE)}*")]),
        allow("ReadTransformInput", ["s3:GetObject"],
              [refs.s3(refs.data_bucket, f"{RUN_OBJECTS}{layout.TEST_FEATURES_DIR}*")]),
        list_run_data(refs),
        allow("WritePredictions", ["s3:AbortMultipartUpload", "s3:PutObject"],
              [refs.s3(refs.data_bucket, f"{RUN_OBJECTS}{layout.PREDICTIONS_DIR}*")]),
        *job_common(refs, settings.kms_key_arn, TRANSFORM_LOG_GROUP, refs.serving_image),
    ])


ROLE = JobRole(ROLE_KEY, "sagestep models and batch transform: read model and test features, write predictions",
               role_trust, role_policy)
STEP = Step(NAME, states, statements, role=ROLE, job=JOB, outputs={"modelName.$": "$.model.name"})
