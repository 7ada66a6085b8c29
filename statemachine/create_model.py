"""CreateModel: register the trained artifacts with the inference code (request-response only)."""
from __future__ import annotations

from . import errors
from .iam import allow, list_tags, pass_role
from .naming import job_name, tags
from .refs import Refs

NAME = "CreateModel"
INFERENCE_PROGRAM = "inference.py"


def states(refs: Refs, next_state: str) -> dict[str, dict]:
    return {NAME: {
        "Type": "Task",
        "Comment": "Registers the model with the serving container and the inference handlers.",
        "Resource": refs.integration("sagemaker:createModel"),
        "Parameters": {
            "ModelName.$": job_name("model"),
            "ExecutionRoleArn": refs.model_role_arn,
            "PrimaryContainer": {
                "Image": refs.training_image,
                "ModelDataUrl.$": "$.training.modelArtifacts",
                "Environment": {
                    "SAGEMAKER_PROGRAM": INFERENCE_PROGRAM,
                    "SAGEMAKER_SUBMIT_DIRECTORY": refs.inference_code_uri,
                    "SAGEMAKER_REGION": refs.region,
                    "SAGEMAKER_CONTAINER_LOG_LEVEL": "20",
                },
            },
            "Tags": tags(refs),
        },
        "Retry": errors.sagemaker_api_retry(),
        "Catch": errors.catch_all(NAME),
        "ResultSelector": {
            "arn.$": "$.ModelArn",
            "name.$": "States.ArrayGetItem(States.StringSplit($.ModelArn, '/'), 1)",
        },
        "ResultPath": "$.model",
        "Next": next_state,
    }}


def statements(refs: Refs) -> list[dict]:
    return [
        allow("Models", ["sagemaker:AddTags", "sagemaker:CreateModel"], [refs.sagemaker_arn("model")]),
        list_tags(),
        pass_role("PassModelRole", refs.model_role_arn),
    ]
