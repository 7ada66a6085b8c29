"""Evaluate: the preprocess Lambda's last action scores the batch predictions against the held-out labels.

The same function, so no second function, role or deploy: it already writes this run's data, and only
needs to read the predictions, the held-out labels and the schema too (infra/policies.py). The metrics,
the baseline's, the verdict and the confusion matrix (null beyond 50 classes or for a regression) go into
the run's output; the rows joined with their predictions stay in S3 (predictions.csv), with everything in
evaluation.json.
"""
from __future__ import annotations

from .preprocess import invoke_function
from .preprocess import invoke_statements
from .refs import Refs
from .settings import PipelineSettings
from .step import Step

NAME = "Evaluate"
ACTION = "evaluate"
# What the state machine keeps of the Lambda's answer ($.evaluation).
RESULT_FIELDS = ("problem", "rows", "metrics", "baseline", "beatsBaseline", "behindBaseline", "confusionMatrix",
                 "predictionsFile", "evaluationFile")


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    return invoke_function(
        refs, NAME, "Scores the test predictions against the held-out labels, beside a baseline that learnt nothing.",
        {"Payload": {"action": ACTION, "executionName.$": "$$.Execution.Name"}},
        {f"{field}.$": f"$.Payload.{field}" for field in RESULT_FIELDS}, "$.evaluation", next_state)


STEP = Step(NAME, states, invoke_statements, outputs={"evaluation.$": "$.evaluation"})
