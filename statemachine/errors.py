"""Catch and Fail plumbing shared by every Task state."""
from __future__ import annotations


def sagemaker_api_retry() -> list[dict]:
    """Step Functions reports every SageMaker API error (throttling, account limits, validation)
    as SageMaker.AmazonSageMakerException; a short retry rides out the transient ones, and job
    names carry $$.State.RetryCount, so a retry never reuses a name. A job that ran and failed
    ends in States.TaskFailed and is not retried."""
    return [{"ErrorEquals": ["SageMaker.AmazonSageMakerException"],
             "IntervalSeconds": 5, "MaxAttempts": 2, "BackoffRate": 2.0}]


def fail_state_name(step: str) -> str:
    return f"{step}Failed"


def catch_all(step: str) -> list[dict]:
    """Send any error of the step to its own Fail state, keeping the original error under $.error."""
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": fail_state_name(step)}]


def fail_state(step: str) -> dict:
    """A Fail state naming the stage; the cause carries the caught {Error, Cause} as JSON.

    A static Error plus CausePath: re-raising a caught States.* name through ErrorPath is not
    allowed (custom error names must not start with "States.").
    """
    return {
        "Type": "Fail",
        "Comment": f"The {step} step failed; Cause holds the original error and message.",
        "Error": fail_state_name(step),
        "CausePath": "States.JsonToString($.error)",
    }
