"""Preprocess: invoke the preprocess Lambda, which plans the run and splits the dataset.

The Lambda's own role belongs to the function (infra/function.py); this step needs only to invoke it.
"""
from __future__ import annotations

from . import errors
from .iam import allow
from .refs import Refs
from .settings import PipelineSettings
from .step import Step, then

NAME = "Preprocess"
TRAINING_PROGRAM = "train.py"

# What the state machine keeps of the Lambda's answer ($.run); the rest stays in the Lambda's logs.
PLAN_FIELDS = ("runName", "executionTag", "channels", "transformInput", "predictionsUri", "checkpointsUri",
               "testLabelsUri", "schemaUri", "hyperparameters", "objective", "rows", "ignoredColumns", "gate")
# AWS's recommended Retry for Lambda tasks, plus throttling.
LAMBDA_RETRY = {
    "ErrorEquals": ["Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException",
                    "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
    "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2.0, "JitterStrategy": "FULL",
}


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    selector = {f"{field}.$": f"$.Payload.{field}" for field in PLAN_FIELDS}
    # Script mode, merged into the hyperparameters by the Train state: the code bundle, and the region
    # the image's launcher downloads it from (without AWS_REGION it builds "https://s3..amazonaws.com").
    selector["trainingCode"] = {
        "sagemaker_program": TRAINING_PROGRAM,
        "sagemaker_submit_directory": refs.training_code_uri,
        "sagemaker_region": refs.region,
    }
    # The Lambda event: the execution input plus executionName, executionArn and action (from Start).
    return invoke_function(refs, NAME, "Validates the dataset, splits it under runs/<execution>/ and plans the jobs.",
                           {"Payload.$": "States.JsonMerge($, $.execution, false)"}, selector, "$.run", next_state)


def invoke_function(refs: Refs, name: str, comment: str, payload: dict, selector: dict, result_path: str,
                    next_state: str | None) -> dict[str, dict]:
    """A Task state that invokes the pipeline's function (each action of it: Preprocess, Evaluate), with
    AWS's recommended Lambda Retry, and its <name>Failed state."""
    return {
        name: {
            "Type": "Task",
            "Comment": comment,
            "Resource": refs.integration("lambda:invoke"),
            "Parameters": {"FunctionName": refs.function_arn, **payload},
            "Retry": [LAMBDA_RETRY],
            "Catch": errors.catch_all(name),
            "ResultSelector": selector,
            "ResultPath": result_path,
            **then(next_state),
        },
        **errors.fail_state(name),
    }


def statements(refs: Refs) -> list[dict]:
    """Invoke exactly this function, unqualified or any version/alias of it."""
    return [allow("InvokePreprocess", ["lambda:InvokeFunction"], [refs.function_arn, f"{refs.function_arn}:*"])]


STEP = Step(NAME, states, statements, outputs={
    "runName.$": "$.run.runName", "objective.$": "$.run.objective", "rows.$": "$.run.rows",
    "testLabelsUri.$": "$.run.testLabelsUri", "schemaUri.$": "$.run.schemaUri",
    "ignoredColumns.$": "$.run.ignoredColumns"})
