"""Evaluate: the preprocess Lambda's second action scores the batch predictions against the held-out labels.

The same function, so no second function, role or deploy: it already writes this run's data, and only
needs to read the predictions, the held-out labels and the schema too (infra/policies.py). The metrics,
the baseline's and the verdict go into the run's output; the confusion matrix and the rows joined with
their predictions stay in S3 (evaluation.json, predictions.csv), too large for a state's payload.
"""
from __future__ import annotations

from . import errors
from .preprocess import LAMBDA_RETRY
from .preprocess import statements as invoke_statements
from .refs import Refs
from .settings import PipelineSettings
from .step import Step, then

NAME = "Evaluate"
ACTION = "evaluate"
# What the state machine keeps of the Lambda's answer ($.evaluation).
RESULT_FIELDS = ("problem", "rows", "metrics", "baseline", "beatsBaseline", "behindBaseline", "predictionsFile",
                 "evaluationFile")


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    return {
        NAME: {
            "Type": "Task",
            "Comment": "Scores the test predictions against the held-out labels, beside a baseline that learnt nothing.",
            "Resource": refs.integration("lambda:invoke"),
            "Parameters": {
                "FunctionName": refs.function_arn,
                "Payload": {"action": ACTION, "executionName.$": "$$.Execution.Name"},
            },
            "Retry": [LAMBDA_RETRY],
            "Catch": errors.catch_all(NAME),
            "ResultSelector": {f"{field}.$": f"$.Payload.{field}" for field in RESULT_FIELDS},
            "ResultPath": "$.evaluation",
            **then(next_state),
        },
        **errors.fail_state(NAME),
    }


STEP = Step(NAME, states, invoke_statements, outputs={"evaluation.$": "$.evaluation"})
