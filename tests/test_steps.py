"""The step is the unit of change: a step added to the registry, in this test alone, reaches the
definition, its transitions, the state machine role, its own job role, the run's output and the state
order, with no other edit."""
import json

import pytest

from sagestep.synth import synthesize
from statemachine import definition as pipeline
from statemachine import state_order
from statemachine.check import check_definition
from statemachine.iam import allow, document, sagemaker_trust
from statemachine.step import JobRole, Step, then

GATE = "ModelAudit"


def gate_states(refs, settings, next_state):
    return {
        GATE: {"Type": "Choice",
               "Choices": [{"Variable": "$.training.finalMetrics[0].Value", "NumericGreaterThan": 0.5,
                            "Next": "ModelAuditFailed"}],
               "Default": "AuditRecorded"},
        "AuditRecorded": {"Type": "Pass", "Result": "passed", "ResultPath": "$.audit", **then(next_state)},
        "ModelAuditFailed": {"Type": "Fail", "Error": "ModelAuditFailed", "Cause": "the metric is too high"},
    }


GATE_ROLE = JobRole("audit", "a role of the test's step",
                    lambda refs: sagemaker_trust(refs, refs.sagemaker_arn("processing-job")),
                    lambda refs, settings: document([allow("AuditReads", ["s3:GetObject"],
                                                           [refs.s3(refs.artifacts_bucket, "models/*")])]))
GATE_STEP = Step(GATE, gate_states,
                 statements=lambda refs: [allow("AuditJobs", ["sagemaker:DescribeTrainingJob"],
                                                [refs.sagemaker_arn("training-job")])],
                 role=GATE_ROLE, outputs={"audit.$": "$.audit"},
                 summary=lambda states: [f"audit: {states[GATE]['Choices'][0]['NumericGreaterThan']}"])


@pytest.fixture(scope="module")
def gated():
    with pytest.MonkeyPatch.context() as patch:
        steps = list(pipeline.STEPS)
        steps.insert([s.name for s in steps].index("CreateModel"), GATE_STEP)
        patch.setattr(pipeline, "STEPS", tuple(steps))
        yield synthesize("gated", {})


def policy(stack, logical):
    return json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", f"{logical}-policy")["inputs"]["policy"])


def test_an_added_step_is_wired_between_its_neighbours(gated):
    definition = json.loads(gated.definition)
    assert state_order(definition) == ["Start", "Preprocess", "ProfileShards", "MergeProfiles", "AnyItemToSplit",
                                       "SplitShards", "FinishPreprocess", "Train", "HasTrainingMetrics", "TrainingResult",
                                       "QualityGate", "FindGateMetric", "GateVerdict", "GatePassed",
                                       GATE, "AuditRecorded", "CreateModel", "BatchPredict", "Evaluate", "Summarize"]
    assert definition["States"]["GatePassed"]["Next"] == GATE
    assert definition["States"]["Summarize"]["Parameters"]["audit.$"] == "$.audit"
    assert check_definition(definition) == []


def test_an_added_step_brings_its_permissions_and_its_job_role(gated):
    sids = [s["Sid"] for s in policy(gated, "sagestep-gated-states")["Statement"]]
    assert "AuditJobs" in sids and sids.index("AuditJobs") > sids.index("TrainingJobs")
    assert [s["Sid"] for s in policy(gated, "sagestep-gated-audit")["Statement"]] == ["AuditReads"]
    role = gated.one("aws:iam/role:Role", "sagestep-gated-audit")["inputs"]
    assert "processing-job/sagestep-gated--*" in role["assumeRolePolicy"]


def test_an_added_step_appears_in_the_summary(gated):
    from rich.console import Console

    from sagestep.cli import print_summary
    console = Console(record=True, width=200)
    print_summary(gated, console)
    assert "audit: 0.5" in console.export_text()


def refs_and_settings():
    from statemachine import PipelineSettings, Refs
    image = "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
    refs = Refs(partition="aws", region="us-east-1", account_id="123456789012", name_prefix="sagestep-t", stack="t",
                data_bucket="d", artifacts_bucket="a", training_image=image, serving_image=image,
                training_code_uri="s3://a/code/training-0.tar.gz", inference_code_uri="s3://a/code/inference-0.tar.gz")
    return refs.with_arns("arn:aws:lambda:us-east-1:123456789012:function:f",
                          {"training": "arn:aws:iam::123456789012:role/t", "model": "arn:aws:iam::123456789012:role/m"}), \
        PipelineSettings()


def test_two_steps_may_not_render_the_same_state():
    refs, settings = refs_and_settings()
    with pytest.raises(ValueError, match=r"step Train renders states that already exist: \['HasTrainingMetrics'"):
        pipeline.build_definition(refs, settings, steps=pipeline.STEPS + (pipeline.STEPS[1],))


def test_a_step_whose_job_role_is_missing_says_so():
    refs, settings = refs_and_settings()
    with pytest.raises(KeyError, match="no job role 'model' among \\['training'\\]"):
        pipeline.build_definition(refs.with_arns(refs.function_arn, {"training": "arn"}), settings)
