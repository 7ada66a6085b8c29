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
from statemachine import jobs, state_order
from statemachine.check import check_definition, sagemaker_model

# SageMaker's own pattern for job names, from botocore's model (AWS anchors it).
SAGEMAKER_NAME = re.compile(sagemaker_model().shape_for("TrainingJobName").metadata["pattern"])
SAGEMAKER_NAME_MAX = sagemaker_model().shape_for("TrainingJobName").metadata["max"]
TASKS = ("Preprocess", "Train", "CreateModel", "BatchPredict", "Evaluate")
JOB_TASKS = ("Train", "BatchPredict")


def test_static_check_finds_nothing(definition):
    assert check_definition(definition) == []


# statelint 3.1.0 (the latest) knows only MaxItems in an ItemReader's ReaderConfig; AWS's ItemReader reference
# documents InputType (JSON for a JSON array in an object), which the Distributed Maps need.
STATELINT_OUTDATED = re.compile(r'^ *Field "InputType" not allowed in State Machine\.States\.\w+\.ItemReader\.ReaderConfig$')


def test_statelint_accepts_the_definition(tmp_path, stack):
    path = tmp_path / "statemachine.asl.json"
    path.write_text(stack.definition)
    statelint = shutil.which("statelint", path=str(Path(sys.executable).parent))
    result = subprocess.run([statelint, str(path)], capture_output=True, text=True)
    problems = [line for line in result.stdout.splitlines()[1:] if line.strip()]
    outdated = [line for line in problems if STATELINT_OUTDATED.match(line)]
    assert len(outdated) == 2, "only the two Distributed Maps' ReaderConfig is beyond statelint"
    assert result.returncode == 1 and problems == outdated, result.stdout + result.stderr


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
    assert state_order(definition) == ["Start", "Preprocess", "ProfileShards", "MergeProfiles", "AnyItemToSplit",
                                       "SplitShards", "FinishPreprocess", "Train", "HasTrainingMetrics", "TrainingResult",
                                       "QualityGate", "FindGateMetric", "GateVerdict", "GatePassed",
                                       "CreateModel", "BatchPredict", "Evaluate", "Summarize"]
    for task in TASKS:
        state = definition["States"][task]
        via = f"{task}FailureCause" if task in JOB_TASKS else f"{task}Failed"
        assert state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": via}]
        fail = definition["States"][f"{task}Failed"]
        assert fail["Type"] == "Fail" and fail["Error"] == f"{task}Failed"
        assert fail["CausePath"] == "States.JsonToString($.error)" and "ErrorPath" not in fail


def test_after_the_plan_every_preprocess_failure_discards_the_run_then_fails_at_preprocess_failed(definition):
    states = definition["States"]
    for name in ("ProfileShards", "MergeProfiles", "SplitShards", "FinishPreprocess"):
        assert states[name]["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error",
                                          "Next": "DiscardPreprocess"}], name
    discard = states["DiscardPreprocess"]
    assert discard["Parameters"]["Payload"] == {"action": "discard", "executionName.$": "$$.Execution.Name",
                                                "error.$": "$.error"}
    assert discard["Catch"][0]["Next"] == discard["Next"] == "PreprocessFailed"


def test_the_preprocess_maps_are_distributed_over_the_work_items_with_results_in_s3():
    synthesis = synthesize("concurrent", {"preprocessConcurrency": 8, "trainingInstanceCount": 3})
    definition = json.loads(synthesis.definition)
    assert check_definition(definition) == []
    data = synthesis.outputs["dataBucket"]
    for name, action, items in (("ProfileShards", "profile", "$.shards.itemsKey"),
                                ("SplitShards", "split", "$.merged.splitItemsKey")):
        state = definition["States"][name]
        assert state["MaxConcurrency"] == 8
        assert state["ItemProcessor"]["ProcessorConfig"] == {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"}
        assert state["ItemReader"] == {
            "Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": data, "Key.$": items}}
        assert state["ItemSelector"] == {"action": action, "executionName.$": "$$.Execution.Name",
                                         "item.$": "$$.Map.Item.Value"}
        assert state["ResultWriter"]["Parameters"]["Prefix.$"] == (
            f"States.Format('runs/{{}}/preprocess/map-results/{action}', $$.Execution.Name)")
        assert state["ResultPath"] is None, "the Map's output (a pointer to its results) is not kept"
        (child,) = state["ItemProcessor"]["States"].values()
        assert "Catch" not in child and child["End"], "a failed item fails its child execution, and so the Map"
    lambda_env = synthesis.one("aws:lambda/function:Function")["inputs"]["environment"]["variables"]
    assert lambda_env["TRAINING_HOSTS"] == "3" and lambda_env["TRANSFORM_INSTANCES"] == "1"


@pytest.mark.parametrize("task, field, group", [("Train", "TrainingJobName.$", "/aws/sagemaker/TrainingJobs"),
                                                ("BatchPredict", "TransformJobName.$", "/aws/sagemaker/TransformJobs")])
def test_a_failed_job_step_names_the_job_and_its_log_group(definition, task, field, group):
    """R9: the script cannot set FailureReason under the real image; the cause says where the log is."""
    cause = definition["States"][f"{task}FailureCause"]
    assert cause["Type"] == "Pass" and cause["Next"] == f"{task}Failed"
    assert cause["ResultPath"] == "$.error.failedJob", "added beside Error and Cause, reading neither"
    job = definition["States"][task]["Parameters"][field]
    # The job step never retries (R7), so its job is always attempt 0.
    assert cause["Parameters"] == {"logGroup": group, "name.$": job.replace("$$.State.RetryCount", "0")}


def test_a_budget_s_timeout_on_batch_predict_stops_its_job_then_fails_the_step(definition):
    """A Task timeout does not stop a .sync job (Step Functions guide, "Run a Job (.sync)"): States.Timeout goes
    to BatchPredictStop, which stops this execution's transform job, then to the step's own Fail state."""
    budget = json.loads(synthesize("budget", {"sagestep:maxRunCostUsd": "1"}).definition)["States"]
    predict = budget["BatchPredict"]
    assert predict["TimeoutSeconds"] > 0
    assert predict["Catch"] == [
        {"ErrorEquals": ["States.Timeout"], "ResultPath": "$.error", "Next": "BatchPredictStop"},
        {"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "BatchPredictFailureCause"}]
    job = predict["Parameters"]["TransformJobName.$"].replace("$$.State.RetryCount", "0")
    assert budget["BatchPredictStop"] == {
        "Type": "Task",
        "Comment": "The budget's time ran out: stops the transform job, which a Task timeout leaves running.",
        "Resource": "arn:aws:states:::aws-sdk:sagemaker:stopTransformJob",
        "Parameters": {"TransformJobName.$": job},
        "ResultSelector": {"Error": "States.Timeout", "Cause": (
            "batch prediction ran past the time maxRunCostUsd leaves it (the BatchPredict task's TimeoutSeconds); "
            "its transform job was stopped")},
        "ResultPath": "$.error",
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error.stopFailed",
                   "Next": "BatchPredictFailureCause"}],
        "Next": "BatchPredictFailureCause"}
    assert check_definition({"StartAt": "BatchPredict", "States": budget}) == []
    broken = {**budget, "BatchPredictStop": {**budget["BatchPredictStop"], "Parameters": {"TransformJobNme": "x"}}}
    assert "BatchPredictStop.Parameters: unknown parameter 'TransformJobNme'; valid: TransformJobName" in (
        check_definition({"StartAt": "BatchPredict", "States": broken}))
    # Without a budget there is no timeout, so nothing to stop.
    assert "TimeoutSeconds" not in definition["States"]["BatchPredict"] and "BatchPredictStop" not in definition["States"]
    assert [c["ErrorEquals"] for c in definition["States"]["BatchPredict"]["Catch"]] == [["States.ALL"]]


def test_no_path_points_at_a_field_aws_can_leave_out(definition):
    """R3: FinalMetricDataList is absent when nothing was scraped; only the IsPresent guard and the
    states after it (where it always exists) may read it."""
    readers = {name for name, state in definition["States"].items() if "FinalMetricDataList" in json.dumps(state)}
    assert readers == {"HasTrainingMetrics", "NoTrainingMetrics", "TrainingResult"}
    guard = definition["States"]["HasTrainingMetrics"]
    assert guard["Choices"] == [{"Variable": "$.training.FinalMetricDataList", "IsPresent": False,
                                 "Next": "NoTrainingMetrics"}]
    assert guard["Default"] == "TrainingResult" and definition["States"]["NoTrainingMetrics"]["Next"] == "TrainingResult"
    assert definition["States"]["NoTrainingMetrics"]["Result"] == []
    assert "ResultSelector" not in definition["States"]["Train"]


def test_preprocess_invokes_the_function_with_the_execution(definition, stack):
    state = definition["States"]["Preprocess"]
    assert state["Next"] == "ProfileShards" and state["ResultPath"] == "$.shards"
    assert state["Resource"] == "arn:aws:states:::lambda:invoke"
    assert state["Parameters"]["FunctionName"].endswith(":function:sagestep-dev-preprocess")
    assert state["Parameters"]["Payload.$"] == "States.JsonMerge($, $.execution, false)"
    # The action is merged last, so an execution input holding "action" cannot turn the plan into another action.
    assert definition["States"]["Start"]["Parameters"] == {
        "executionName.$": "$$.Execution.Name", "executionArn.$": "$$.Execution.Id", "action": "plan"}
    [retry] = state["Retry"]
    assert retry["ErrorEquals"] == ["Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException",
                                    "Lambda.AWSLambdaException", "Lambda.SdkClientException",
                                    "Lambda.TooManyRequestsException"] and retry["BackoffRate"] == 2
    finish = definition["States"]["FinishPreprocess"]
    assert finish["ResultPath"] == "$.run" and finish["Parameters"]["Payload"]["action"] == "finish"
    assert set(finish["ResultSelector"]) >= {"runName.$", "executionTag.$", "channels.$", "hyperparameters.$",
                                             "rows.$", "shards.$", "trainingCode"}


def test_train_is_a_sync_script_mode_job_with_tags_and_no_metric_definitions(definition, stack):
    p = definition["States"]["Train"]["Parameters"]
    assert definition["States"]["Train"]["Resource"] == "arn:aws:states:::sagemaker:createTrainingJob.sync"
    # R1: the image is a first-party algorithm; CreateTrainingJob refuses custom MetricDefinitions.
    assert p["AlgorithmSpecification"] == {"TrainingImage": stack.outputs["trainingImage"], "TrainingInputMode": "File"}
    assert [c["ChannelName"] for c in p["InputDataConfig"]] == ["train", "validation"]
    assert all(c["ContentType"] == "text/csv" for c in p["InputDataConfig"])
    code = definition["States"]["FinishPreprocess"]["ResultSelector"]["trainingCode"]
    assert code["sagemaker_program"] == "train.py" and code["sagemaker_region"] == "us-east-1"  # R8
    assert code["sagemaker_submit_directory"].startswith(f"s3://{stack.outputs['artifactsBucket']}/code/training-")
    assert p["OutputDataConfig"] == {"S3OutputPath": f"s3://{stack.outputs['artifactsBucket']}/models/"}
    assert {"Key": "sagestep:stack", "Value": "dev"} in p["Tags"]
    # R6: the execution name may hold characters SageMaker refuses in tag values; the Lambda cleans it.
    assert {"Key": "sagestep:execution", "Value.$": "$.run.executionTag"} in p["Tags"]
    assert "EnableManagedSpotTraining" not in p and "CheckpointConfig" not in p


def test_model_and_transform_are_wired_to_the_training_output(definition, stack):
    model = definition["States"]["CreateModel"]["Parameters"]
    assert model["PrimaryContainer"]["ModelDataUrl.$"] == "$.training.modelArtifacts"
    assert definition["States"]["TrainingResult"]["Parameters"]["modelArtifacts.$"] == \
        "$.training.ModelArtifacts.S3ModelArtifacts"
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
                            "metrics.$", "rows.$", "shards.$", "predictionsUri.$", "testLabelsUri.$", "schemaUri.$",
                            "modelArtifacts.$", "evaluation.$", "ignoredColumns.$", "gate.$", "hyperparameters.$",
                            "hyperparameterOrigins.$"}


def test_evaluate_invokes_the_same_function_with_its_action(definition):
    state, preprocess = definition["States"]["Evaluate"], definition["States"]["Preprocess"]
    assert (state["Resource"], state["Parameters"]["FunctionName"], state["Retry"]) == \
        (preprocess["Resource"], preprocess["Parameters"]["FunctionName"], preprocess["Retry"])
    assert state["Parameters"]["Payload"] == {"action": "evaluate", "executionName.$": "$$.Execution.Name"}
    assert state["ResultPath"] == "$.evaluation" and "confusionMatrix.$" in state["ResultSelector"]
    assert definition["States"]["BatchPredict"]["Next"] == "Evaluate"


HOSTILE = ["a", "A" * 80, "My_Run_2026-11-26T10:00", "__--__", "x" * 79 + "_",
           "Ünïcode-näme", "123", "UPPER_and_lower_and_under_scores_everywhere_in_this_long_name_80"]


@pytest.mark.parametrize("execution", HOSTILE)
def test_job_names_fit_sagemaker_for_any_execution_name(execution):
    arn = f"arn:aws:states:us-east-1:123456789012:execution:sagestep-dev-pipeline:{execution}"
    base = run_name("sagestep-averyverylongstackn", execution, arn)
    for infix in (job.infix for job in jobs() if job.base == "runName"):
        for retry in range(10):
            name = f"{base}{infix}{retry}"
            assert len(name) <= SAGEMAKER_NAME_MAX and SAGEMAKER_NAME.fullmatch(name), name
            assert name == name.lower() and name.startswith("sagestep-averyverylongstackn--")
    assert len(base) + max(len(f"{job.infix}9") for job in jobs() if job.base == "runName") <= SAGEMAKER_NAME_MAX


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


def test_only_create_model_retries_and_job_steps_never_do(definition):
    """R7: SageMaker.AmazonSageMakerException also comes from the .sync polls after a job was created;
    a retry would start a second job beside the first. CreateModel starts nothing that bills."""
    for task in ("Train", "BatchPredict"):
        assert "Retry" not in definition["States"][task]
    [retry] = definition["States"]["CreateModel"]["Retry"]
    assert retry["ErrorEquals"] == ["SageMaker.AmazonSageMakerException"]


def test_task_resources_use_the_stack_partition():
    china = json.loads(synthesize("cn", {"aws:region": "cn-north-1"}).definition)
    resources = {name: state["Resource"] for name, state in china["States"].items() if "Resource" in state}
    assert resources == {"Preprocess": "arn:aws-cn:states:::lambda:invoke",
                         "MergeProfiles": "arn:aws-cn:states:::lambda:invoke",
                         "FinishPreprocess": "arn:aws-cn:states:::lambda:invoke",
                         "DiscardPreprocess": "arn:aws-cn:states:::lambda:invoke",
                         "Train": "arn:aws-cn:states:::sagemaker:createTrainingJob.sync",
                         "CreateModel": "arn:aws-cn:states:::sagemaker:createModel",
                         "BatchPredict": "arn:aws-cn:states:::sagemaker:createTransformJob.sync",
                         "Evaluate": "arn:aws-cn:states:::lambda:invoke"}
    assert '"arn:aws:' not in json.dumps(china), "the Maps' readers, writers and children too"
    assert check_definition(china) == []


@pytest.mark.parametrize("training, transform, train_volume_key, transform_volume_key", [
    ("ml.m5.xlarge", "ml.m5.large", True, True),
    ("ml.g5.xlarge", "ml.m5.large", False, True),
    ("ml.p3.2xlarge", "ml.g4dn.xlarge", True, False),
    ("ml.r5d.2xlarge", "ml.g6.xlarge", False, False),
])
def test_volume_key_is_never_sent_with_local_instance_storage(training, transform, train_volume_key,
                                                              transform_volume_key):
    """R5: SageMaker refuses VolumeKmsKeyId for instance types with local storage; outputs stay encrypted."""
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    d = json.loads(synthesize("kms", {"kmsKeyArn": key, "trainingInstanceType": training,
                                      "transformInstanceType": transform}).definition)
    train, predict = d["States"]["Train"]["Parameters"], d["States"]["BatchPredict"]["Parameters"]
    assert ("VolumeKmsKeyId" in train["ResourceConfig"]) is train_volume_key
    assert ("VolumeKmsKeyId" in predict["TransformResources"]) is transform_volume_key
    assert train["OutputDataConfig"]["KmsKeyId"] == key and predict["TransformOutput"]["KmsKeyId"] == key


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


def test_synth_summary_says_why_the_volume_key_is_left_out():
    from rich.console import Console

    from sagestep.cli import print_summary
    key = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    console = Console(record=True, width=200)
    print_summary(synthesize("kms", {"kmsKeyArn": key, "trainingInstanceType": "ml.g5.xlarge"}), console)
    text = console.export_text()
    assert ("training: 1 x ml.g5.xlarge\n  VolumeKmsKeyId omitted: ml.g5.xlarge has local instance storage" in text)
    assert "batch prediction: 1 x ml.m5.large\n" in text and text.count("VolumeKmsKeyId omitted") == 1
    assert ("preprocess: work items of up to 128 MB (a shard, or a byte range of a large object) through two "
            "Distributed Maps (the second only for items with text, or when the plan needs codes), up to 10 Lambdas "
            "at once") in " ".join(text.split())
    assert ("states: Start → Preprocess → ProfileShards → MergeProfiles → AnyItemToSplit → SplitShards → "
            "FinishPreprocess → Train → "
            "HasTrainingMetrics → TrainingResult → QualityGate → "
            "FindGateMetric → GateVerdict → GatePassed → CreateModel") in " ".join(text.split())


def test_every_instance_family_sagemaker_offers_is_classified_for_local_storage():
    """R5 depends on it: a family botocore adds must be classified here before it is used with a KMS key."""
    from infra.catalogue import instance_types as sagemaker_instance_types
    from statemachine import instances
    offered = {instances.family(t) for shape in ("TrainingInstanceType", "TransformInstanceType")
               for t in sagemaker_instance_types(shape)}
    assert offered <= instances.LOCAL_STORAGE | instances.EBS_ONLY, sorted(
        offered - instances.LOCAL_STORAGE - instances.EBS_ONLY)
    assert not instances.LOCAL_STORAGE & instances.EBS_ONLY
    assert instances.has_local_storage("ml.p6-b200.48xlarge") and not instances.has_local_storage("ml.c7i-flex.large")
    assert instances.has_local_storage("ml.m6id.large"), "an unlisted family named with d"


def test_several_training_instances_share_the_train_objects_and_all_read_validation():
    """On N instances training/train.py trains one model across them: FullyReplicated train data would count
    every row N times, so the train channel is ShardedByS3Key; validation, and its schema.json, reach every host."""
    d = json.loads(synthesize("distributed", {"trainingInstanceCount": 3, "useSpotTraining": True}).definition)
    p = d["States"]["Train"]["Parameters"]
    assert p["ResourceConfig"] == {"InstanceType": "ml.m5.xlarge", "InstanceCount": 3, "VolumeSizeInGB": 30}
    assert {c["ChannelName"]: c["DataSource"]["S3DataSource"]["S3DataDistributionType"]
            for c in p["InputDataConfig"]} == {"train": "ShardedByS3Key", "validation": "FullyReplicated"}
    assert p["EnableManagedSpotTraining"] is True, "managed spot works with several instances"
    assert check_definition(d) == []
