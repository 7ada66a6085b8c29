"""The whole pipeline: Start → the steps, in order → Summarize.

One ordered list of steps builds the definition and its transitions, the state machine role's policy
(the union of what each step says it needs, plus log delivery and X-Ray), the job roles and the run's
output, so the definition and the permissions cannot drift apart.
"""
from __future__ import annotations

from . import batch_predict, create_model, evaluate, gate, preprocess, register, train, tune
from .iam import allow, document, key_use, merge_statements
from .refs import Refs
from .settings import PipelineSettings
from .step import Job, JobRole, Step

START = "Start"
SUMMARIZE = "Summarize"
STEPS: tuple[Step, ...] = (preprocess.STEP, train.STEP, tune.STEP, gate.STEP, create_model.STEP, batch_predict.STEP,
                           evaluate.STEP, register.STEP)


def _or_pipeline(steps: tuple[Step, ...] | None) -> tuple[Step, ...]:
    """The given steps, or the pipeline's (read at call time, so a test may add a step to STEPS)."""
    return STEPS if steps is None else steps


def _enabled(steps: tuple[Step, ...] | None, settings: PipelineSettings | None = None) -> tuple[Step, ...]:
    """The steps this stack has: an optional step that is off renders no state, output or statement."""
    settings = settings or PipelineSettings()
    return tuple(step for step in _or_pipeline(steps) if step.when(settings))


def build_definition(refs: Refs, settings: PipelineSettings, steps: tuple[Step, ...] | None = None) -> dict:
    steps = _enabled(steps, settings)
    states = {
        START: {
            "Type": "Pass",
            "Comment": "Adds the execution's name and ARN and the Lambda's action, which the preprocess event carries.",
            "Parameters": {"executionName.$": "$$.Execution.Name", "executionArn.$": "$$.Execution.Id",
                           "action": "plan"},
            "ResultPath": "$.execution",
            "Next": steps[0].name,
        },
    }
    followers = [step.name for step in steps[1:]] + [SUMMARIZE]
    for step, next_state in zip(steps, followers):
        rendered = step.states(refs, settings, next_state)
        clash = set(rendered) & set(states)
        if clash:
            raise ValueError(f"step {step.name} renders states that already exist: {sorted(clash)}")
        states.update(rendered)
    outputs: dict[str, str] = {}
    for step in steps:
        clash = set(step.outputs) & set(outputs)
        if clash:
            raise ValueError(f"step {step.name} writes output fields another step writes: {sorted(clash)}")
        outputs.update(step.outputs)
    states[SUMMARIZE] = {
        "Type": "Pass",
        "Comment": "The run's result, small enough to read in the console.",
        "Parameters": outputs,
        "End": True,
    }
    return {
        "Comment": f"sagestep pipeline for stack {refs.stack}: {', '.join(step.name for step in steps)}.",
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


def job_roles(steps: tuple[Step, ...] | None = None) -> list[JobRole]:
    return [step.role for step in _or_pipeline(steps) if step.role]


def jobs(steps: tuple[Step, ...] | None = None) -> tuple[Job, ...]:
    """The SageMaker resources the pipeline's steps create, each declared by its step: the record describes and
    prices them, the local engine runs them."""
    return tuple(step.job for step in _or_pipeline(steps) if step.job)


def summary(definition: dict, steps: tuple[Step, ...] | None = None) -> list[str]:
    """What `sagestep synth --summary` says of the steps of a built definition (instances, why a volume
    key is left out)."""
    return [line for step in _or_pipeline(steps) if step.name in definition["States"]
            for line in step.summary(definition["States"])]


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


def role_statements(refs: Refs, steps: tuple[Step, ...] | None = None,
                    settings: PipelineSettings | None = None) -> list[dict]:
    return merge_statements([step.statements(refs) for step in _enabled(steps, settings)]
                            + [observability_statements()])


def role_policy(refs: Refs, steps: tuple[Step, ...] | None = None, kms_key_arn: str | None = None,
                settings: PipelineSettings | None = None) -> dict:
    """With the stack's key, the preprocess Maps' ItemReader and ResultWriter read and write SSE-KMS objects
    (multipart): kms:Decrypt, kms:Encrypt and kms:GenerateDataKey ("IAM policies for using Distributed Map
    states", KMS key encrypted bucket)."""
    return document(role_statements(refs, steps, settings) + key_use(kms_key_arn, ("kms:Encrypt",)))
