"""Retry, Catch and Fail plumbing shared by the Task states."""
from __future__ import annotations

# Step Functions reports every SageMaker API error (throttling, account limits) under this name.
SAGEMAKER_API_ERROR = "SageMaker.AmazonSageMakerException"


def sagemaker_api_retry() -> list[dict]:
    """For request-response SageMaker calls only (CreateModel): names carry $$.State.RetryCount, so a
    retry never reuses a name. A .sync job step must not use it: the same error also comes from the
    Describe* polls after the job was created (README, "Retries")."""
    return [{"ErrorEquals": [SAGEMAKER_API_ERROR], "IntervalSeconds": 5, "MaxAttempts": 2, "BackoffRate": 2.0}]


def fail_state_name(step: str) -> str:
    return f"{step}Failed"


def failure_cause_state_name(step: str) -> str:
    return f"{step}FailureCause"


def catch_all(step: str, via_job_cause: bool = False) -> list[dict]:
    """Send any catchable error of the step to its own Fail state (through the state that names the
    job, for job steps), keeping the original error under $.error."""
    target = failure_cause_state_name(step) if via_job_cause else fail_state_name(step)
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": target}]


def fail_state(step: str) -> dict[str, dict]:
    """A Fail state naming the stage; the cause carries the caught {Error, Cause} as JSON.

    A static Error plus CausePath: re-raising a caught States.* name through ErrorPath is not
    allowed (custom error names must not start with "States.").
    """
    return {fail_state_name(step): {
        "Type": "Fail",
        "Comment": f"The {step} step failed; Cause holds the original error and message.",
        "Error": fail_state_name(step),
        "CausePath": "States.JsonToString($.error)",
    }}


def job_fail_states(step: str, job_name: str, log_group: str) -> dict[str, dict]:
    """The Fail state of a job step, after a Pass state that adds the job's name and log group to the
    caught error ($.error.failedJob; it reads nothing of the error, which may lack a Cause): under the
    real image the script cannot set FailureReason, so its reason is in the job's log."""
    return {
        failure_cause_state_name(step): {
            "Type": "Pass",
            "Comment": f"Names the job and its CloudWatch log group in the cause of {fail_state_name(step)}.",
            "Parameters": {"name.$": job_name, "logGroup": log_group},
            "ResultPath": "$.error.failedJob",
            "Next": fail_state_name(step),
        },
        **fail_state(step),
    }
