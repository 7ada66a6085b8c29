"""The ASL definition: structure, transitions, JSONPath, SageMaker request shapes, names, failures."""
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from preprocess.naming import run_name
from sagestep.synth import synthesize
from statemachine import train
from statemachine.check import check_definition
from statemachine.naming import SAGEMAKER_NAME_MAX, longest_suffix

SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
TASKS = ("Preprocess", "Train", "CreateModel", "BatchPredict")


def test_static_check_finds_nothing(definition):
    assert check_definition(definition) == []


def test_statelint_accepts_the_definition(tmp_path, stack):
    path = tmp_path / "statemachine.asl.json"
    path.write_text(stack.definition)
    statelint = shutil.which("statelint", path=str(Path(sys.executable).parent))
    result = subprocess.run([statelint, str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("mutate, problem", [
    (lambda d: d["States"]["Train"].update(Next="CreateModell"), "unknown state 'CreateModell'"),
    (lambda d: d["States"]["Train"]["Parameters"]["InputDataConfig"][0]["DataSource"]["S3DataSource"]
     .update({"S3Uri.$": "$.run.channels[train"}), "invalid JSONPath"),
    (lambda d: d["States"]["BatchPredict"]["Parameters"].pop("TransformResources"),
     "missing required parameter 'TransformResources'"),
    (lambda d: d["States"]["CreateModel"]["Parameters"].update(PrimaryContainr={}), "unknown parameter 'PrimaryContainr'"),
    (lambda d: d["States"]["Train"]["Parameters"]["ResourceConfig"].update(InstanceCount="1"), "is not a integer"),
    (lambda d: d["States"]["Summarize"]["Parameters"].update({"x.$": "not a path"}), "neither a JSONPath"),
])
def test_static_check_catches_broken_definitions(definition, mutate, problem):
    broken = json.loads(json.dumps(definition))
    mutate(broken)
    assert any(problem in p for p in check_definition(broken)), check_definition(broken)


def test_states_run_in_order_and_every_task_fails_to_its_own_state(definition):
    order, name = [], definition["StartAt"]
    while name:
        order.append(name)
        name = definition["States"][name].get("Next")
    assert order == ["Start", *TASKS, "Summarize"]
    for task in TASKS:
        state = definition["States"][task]
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": f"{task}Failed"}]
        fail = definition["States"][f"{task}Failed"]
        assert fail["Type"] == "Fail" and fail["Error"] == f"{task}Failed"
        assert fail["CausePath"] == "States.JsonToString($.error)" and "ErrorPath" not in fail


def test_preprocess_invokes_the_function_with_the_execution(definition, stack):
    state = definition["States"]["Preprocess"]
    assert state["Resource"] == "arn:aws:states:::lambda:invoke"
    assert state["Parameters"]["FunctionName"].endswith(":function:sagestep-dev-preprocess")
    assert state["Parameters"]["Payload.$"] == "States.JsonMerge($, $.execution, false)"
    assert definition["States"]["Start"]["Parameters"] == {
        "executionName.$": "$$.Execution.Name", "executionArn.$": "$$.Execution.Id"}
    [retry] = state["Retry"]
    assert "Lambda.ServiceException" in retry["ErrorEquals"] and retry["BackoffRate"] == 2
    assert set(state["ResultSelector"]) >= {"runName.$", "channels.$", "hyperparameters.$", "rows.$", "trainingCode"}


def test_train_is_a_sync_script_mode_job_with_metrics_and_tags(definition, stack):
    p = definition["States"]["Train"]["Parameters"]
    assert definition["States"]["Train"]["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    assert p["AlgorithmSpecification"]["TrainingImage"] == stack.outputs["trainingImage"]
    assert p["AlgorithmSpecification"]["MetricDefinitions"] == train.metric_definitions()
    assert [c["ChannelName"] for c in p["InputDataConfig"]] == ["train", "validation"]
    assert all(c["ContentType"] == "text/csv" for c in p["InputDataConfig"])
    code = definition["States"]["Preprocess"]["ResultSelector"]["trainingCode"]
    assert code["sagemaker_program"] == "train.py"
    assert code["sagemaker_submit_directory"].startswith(f"s3://{stack.outputs['artifactsBucket']}/code/training-")
    assert p["OutputDataConfig"] == {"S3OutputPath": f"s3://{stack.outputs['artifactsBucket']}/models/"}
    assert {"Key": "sagestep:stack", "Value": "dev"} in p["Tags"]
    assert {"Key": "sagestep:execution", "Value.$": "$$.Execution.Name"} in p["Tags"]
    assert "EnableManagedSpotTraining" not in p and "CheckpointConfig" not in p


def test_model_and_transform_are_wired_to_the_training_output(definition, stack):
    model = definition["States"]["CreateModel"]["Parameters"]
    assert model["PrimaryContainer"]["ModelDataUrl.$"] == "$.training.modelArtifacts"
    assert definition["States"]["Train"]["ResultSelector"]["modelArtifacts.$"] == "$.ModelArtifacts.S3ModelArtifacts"
    assert model["PrimaryContainer"]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert model["ExecutionRoleArn"].split("/")[-1].startswith("sagestep-dev-model-")
    batch = definition["States"]["BatchPredict"]
    assert batch["Resource"] == "arn:aws:states:::sagemaker:createTransformJob.sync"
    p = batch["Parameters"]
    assert (p["BatchStrategy"], p["TransformInput"]["SplitType"], p["TransformOutput"]["AssembleWith"]) == \
        ("MultiRecord", "Line", "Line")
    assert p["ModelName.$"] == "$.model.name"


def test_success_output_is_small_and_complete(definition):
    summary = definition["States"]["Summarize"]["Parameters"]
    assert set(summary) == {"runName.$", "trainingJobName.$", "modelName.$", "transformJobName.$", "objective.$",
                            "metrics.$", "rows.$", "predictionsUri.$", "testLabelsUri.$", "schemaUri.$",
                            "modelArtifacts.$"}


HOSTILE = ["a", "A" * 80, "My_Run_2026-11-26T10:00", "__--__", "x" * 79 + "_",
           "Ünïcode-näme", "123", "UPPER_and_lower_and_under_scores_everywhere_in_this_long_name_80"]


@pytest.mark.parametrize("execution", HOSTILE)
def test_job_names_fit_sagemaker_for_any_execution_name(execution):
    arn = f"arn:aws:states:us-east-1:123456789012:execution:sagestep-dev-pipeline:{execution}"
    base = run_name("sagestep-averyverylongstackn", execution, arn)
    for kind in ("train", "model", "predict"):
        for retry in range(10):
            name = f"{base}-{kind}-{retry}"
            assert len(name) <= SAGEMAKER_NAME_MAX and SAGEMAKER_NAME.match(name), name
            assert name == name.lower() and name.startswith("sagestep-averyverylongstackn--")
    assert len(base) + longest_suffix() <= SAGEMAKER_NAME_MAX


def test_job_names_differ_between_executions_and_attempts(definition):
    arn = "arn:aws:states:us-east-1:123456789012:execution:sm:{}"
    names = {run_name("sagestep-dev", n, arn.format(n)) for n in ("run_1", "run-1", "RUN-1", "A" * 80, "A" * 79 + "B")}
    assert len(names) == 5
    for task, field in (("Train", "TrainingJobName.$"), ("CreateModel", "ModelName.$"),
                        ("BatchPredict", "TransformJobName.$")):
        expression = definition["States"][task]["Parameters"][field]
        assert "$.run.runName" in expression and "$$.State.RetryCount" in expression


def test_every_retried_task_keeps_single_digit_retry_counts(definition):
    for task in TASKS:
        for retry in definition["States"][task].get("Retry", []):
            assert retry["MaxAttempts"] <= 9


def test_sagemaker_api_errors_are_retried_but_failed_jobs_are_not(definition):
    for task in ("Train", "CreateModel", "BatchPredict"):
        [retry] = definition["States"][task]["Retry"]
        assert retry["ErrorEquals"] == ["SageMaker.AmazonSageMakerException"]
        assert "States.TaskFailed" not in retry["ErrorEquals"] and "States.ALL" not in retry["ErrorEquals"]


def test_metric_regexes_match_the_training_log_format():
    line = "[12] train-logloss:0.123456 validation-logloss:0.2345 train-auc:0.99 validation-mlogloss:1.5e-03"
    found = {d["Name"]: m.group(1) for d in train.metric_definitions() if (m := re.search(d["Regex"], line))}
    assert found == {"train:logloss": "0.123456", "validation:logloss": "0.2345", "train:auc": "0.99",
                     "validation:mlogloss": "1.5e-03"}


def test_config_switches_instance_types_and_spot():
    tuned = synthesize("gpu", {"trainingInstanceType": "ml.g5.xlarge", "transformInstanceType": "ml.c5.2xlarge",
                               "transformInstanceCount": 3, "useSpotTraining": True, "trainingVolumeSizeGb": 100,
                               "trainingMaxRuntimeSeconds": 3600, "spotMaxWaitSeconds": 7200})
    d = json.loads(tuned.definition)
    p = d["States"]["Train"]["Parameters"]
    assert p["ResourceConfig"] == {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 100}
    assert p["StoppingCondition"] == {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200}
    assert p["EnableManagedSpotTraining"] is True
    assert p["CheckpointConfig"] == {"S3Uri.$": "$.run.checkpointsUri", "LocalPath": "/opt/ml/checkpoints"}
    assert d["States"]["BatchPredict"]["Parameters"]["TransformResources"] == {
        "InstanceType": "ml.c5.2xlarge", "InstanceCount": 3}
    assert check_definition(d) == []
