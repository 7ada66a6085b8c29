"""The whole pipeline: Start → Preprocess → Train (and its metrics guard) → CreateModel → BatchPredict → Summarize.

The state machine role's policy is the union of what each step says it needs, plus log delivery
and X-Ray, so the definition and the permissions cannot drift apart.
"""
from __future__ import annotations

from . import batch_predict, create_model, errors, preprocess, train
from .iam import allow, merge_statements
from .refs import Refs
from .settings import PipelineSettings

START = "Start"
SUMMARIZE = "Summarize"
TASK_STEPS = (preprocess.NAME, train.NAME, create_model.NAME, batch_predict.NAME)


def build_definition(refs: Refs, settings: PipelineSettings) -> dict:
    states = {
        START: {
            "Type": "Pass",
            "Comment": "Adds the execution's name and ARN, which the preprocess event carries.",
            "Parameters": {"executionName.$": "$$.Execution.Name", "executionArn.$": "$$.Execution.Id"},
            "ResultPath": "$.execution",
            "Next": preprocess.NAME,
        },
        **preprocess.states(refs, train.NAME),
        **train.states(refs, settings, create_model.NAME),
        **create_model.states(refs, batch_predict.NAME),
        **batch_predict.states(refs, settings, SUMMARIZE),
        SUMMARIZE: {
            "Type": "Pass",
            "Comment": "The run's result, small enough to read in the console.",
            "Parameters": {
                "runName.$": "$.run.runName",
                "trainingJobName.$": "$.training.jobName",
                "modelName.$": "$.model.name",
                "transformJobName.$": "$.prediction.jobName",
                "objective.$": "$.run.objective",
                "metrics.$": "$.training.finalMetrics",
                "rows.$": "$.run.rows",
                "predictionsUri.$": "$.run.predictionsUri",
                "testLabelsUri.$": "$.run.testLabelsUri",
                "schemaUri.$": "$.run.schemaUri",
                "modelArtifacts.$": "$.training.modelArtifacts",
            },
            "End": True,
        },
    }
    for step in TASK_STEPS:
        states[errors.fail_state_name(step)] = errors.fail_state(step)
    return {
        "Comment": f"sagestep pipeline for stack {refs.stack}: preprocess, train, create model, batch predict.",
        "StartAt": START,
        "States": states,
    }


def state_order(definition: dict) -> list[str]:
    """The states of a successful run, in order: each Next, or a Choice's Default."""
    order, name = [], definition["StartAt"]
    while name:
        order.append(name)
        state = definition["States"][name]
        name = state.get("Next") or state.get("Default")
    return order


def observability_statements() -> list[dict]:
    """Log delivery and X-Ray APIs have no resource types; they can only be granted on "*"."""
    return [
        allow("LogDelivery", [
            "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
            "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
            "logs:PutLogEvents", "logs:PutResourcePolicy", "logs:UpdateLogDelivery"], ["*"]),
        allow("XRay", ["xray:GetSamplingRules", "xray:GetSamplingTargets",
                       "xray:PutTelemetryRecords", "xray:PutTraceSegments"], ["*"]),
    ]


def role_statements(refs: Refs) -> list[dict]:
    return merge_statements([
        preprocess.statements(refs),
        train.statements(refs),
        create_model.statements(refs),
        batch_predict.statements(refs),
        observability_statements(),
    ])


def role_policy(refs: Refs) -> dict:
    return {"Version": "2012-10-17", "Statement": role_statements(refs)}
