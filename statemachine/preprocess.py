"""Preprocess: invoke the preprocess Lambda, which plans the run and splits the dataset."""
from __future__ import annotations

from . import errors
from .iam import allow
from .refs import Refs

NAME = "Preprocess"
TRAINING_PROGRAM = "train.py"

# What the state machine keeps of the Lambda's answer ($.run); the rest stays in the Lambda's logs.
PLAN_FIELDS = ("runName", "executionTag", "channels", "transformInput", "predictionsUri", "checkpointsUri",
               "testLabelsUri", "schemaUri", "hyperparameters", "objective", "rows")


def states(refs: Refs, next_state: str) -> dict[str, dict]:
    selector = {f"{field}.$": f"$.Payload.{field}" for field in PLAN_FIELDS}
    # Script mode, merged into the hyperparameters by the Train state: the code bundle, and the region
    # the image's launcher downloads it from (without AWS_REGION it builds "https://s3..amazonaws.com").
    selector["trainingCode"] = {
        "sagemaker_program": TRAINING_PROGRAM,
        "sagemaker_submit_directory": refs.training_code_uri,
        "sagemaker_region": refs.region,
    }
    return {NAME: {
        "Type": "Task",
        "Comment": "Validates the dataset, splits it under runs/<execution>/ and plans the jobs.",
        "Resource": refs.integration("lambda:invoke"),
        "Parameters": {
            "FunctionName": refs.function_arn,
            # The Lambda event: the execution input plus executionName / executionArn (from Start).
            "Payload.$": "States.JsonMerge($, $.execution, false)",
        },
        "Retry": [{
            # AWS's recommended list for Lambda tasks, plus throttling.
            "ErrorEquals": ["Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException",
                            "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                            "Lambda.TooManyRequestsException"],
            "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2.0, "JitterStrategy": "FULL",
        }],
        "Catch": errors.catch_all(NAME),
        "ResultSelector": selector,
        "ResultPath": "$.run",
        "Next": next_state,
    }}


def statements(refs: Refs) -> list[dict]:
    """Invoke exactly this function, unqualified or any version/alias of it."""
    return [allow("InvokePreprocess", ["lambda:InvokeFunction"],
                  [refs.function_arn, f"{refs.function_arn}:*"])]
