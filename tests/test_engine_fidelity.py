"""The local engine behaves as AWS does where the first real run depends on it: job logs in CloudWatch
under AWS's names, metrics scraped by the image's definitions (or left out), uncatchable runtime
errors, tag values from hostile execution names, and the failed job's log in the CLI's report."""
import json
import re

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from sagestep import ROOT
from sagestep.local import sagemaker_task
from sagestep.local.engine import LocalEngine
from sagestep.runner import attach_job_log, follow, result_of
from sagestep.synth import synthesize
from statemachine.framework import scrape

IRIS = ROOT / "examples/iris.csv"


@pytest.fixture(scope="module")
def engine():
    with LocalEngine(synthesize("dev", {})) as running:
        running.iris = running.upload_dataset(IRIS)
        yield running


def execute(engine, execution_input, name, state_machine_arn=None):
    sfn = engine.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=state_machine_arn or engine.state_machine_arn, name=name,
                              input=json.dumps(execution_input))["executionArn"]
    return follow(sfn, arn, timeout_seconds=180)


def stream_events(engine, group, prefix):
    logs = engine.client("logs")
    [stream] = logs.describe_log_streams(logGroupName=group, logStreamNamePrefix=prefix)["logStreams"]
    events = logs.get_log_events(logGroupName=group, logStreamName=stream["logStreamName"], startFromHead=True)
    return stream["logStreamName"], [e["message"] for e in events["events"]]


@pytest.fixture(scope="module")
def iris_run(engine):
    """One successful run, which the tests that only read share. R6: tag values allow [\\p{L}\\p{Z}\\p{N}_.:/=+-@]
    only, and "retrain(v2)!" is a valid execution name: the run is named so."""
    description, _ = execute(engine, {"datasetUri": engine.iris, "labelColumn": "species"}, "retrain(v2)!")
    assert description["status"] == "SUCCEEDED", description.get("cause")
    return description


def test_job_logs_are_in_cloudwatch_and_final_metrics_are_scraped_from_them(engine, iris_run):
    description = iris_run
    output = json.loads(description["output"])
    job = output["trainingJobName"]
    stream, messages = stream_events(engine, "/aws/sagemaker/TrainingJobs", f"{job}/")
    assert re.fullmatch(rf"{job}/algo-1-\d{{10}}", stream)
    rounds = [m for m in messages if re.match(r"^\[\d+\]#011train-mlogloss:[\d.]+#011validation-mlogloss:[\d.]+$", m)]
    assert len(rounds) > 10 and not any("\t" in m for m in messages), "stored as CloudWatch stores it"
    described = engine.client("sagemaker").describe_training_job(TrainingJobName=job)
    [final] = described["FinalMetricDataList"]
    assert final["MetricName"] == "validation:mlogloss"
    assert final["Value"] == scrape(messages)["validation:mlogloss"] == float(rounds[-1].rsplit(":", 1)[1])
    assert output["metrics"][0]["MetricName"] == "validation:mlogloss"
    predict_stream, _ = stream_events(engine, "/aws/sagemaker/TransformJobs", f"{output['transformJobName']}/")
    assert re.fullmatch(rf"{output['transformJobName']}/i-[0-9a-f]{{17}}-\d{{10}}", predict_stream)


def test_no_scraped_metric_leaves_the_field_out_and_the_run_still_succeeds(engine, monkeypatch):
    """R3: DescribeTrainingJob has no FinalMetricDataList when nothing matched; the guard copes."""
    monkeypatch.setattr(sagemaker_task, "final_metrics", lambda request, lines: None)
    description, progress = execute(engine, {"datasetUri": engine.iris, "labelColumn": "species"}, "no-metrics")
    assert description["status"] == "SUCCEEDED"
    output = json.loads(description["output"])
    assert output["metrics"] == []
    assert "FinalMetricDataList" not in engine.client("sagemaker").describe_training_job(
        TrainingJobName=output["trainingJobName"])
    assert [s.name for s in progress.states if s.name.endswith("Metrics")] == ["HasTrainingMetrics", "NoTrainingMetrics"]


def test_a_path_to_a_missing_field_fails_the_execution_past_any_catch(engine, monkeypatch):
    """What the definition used to do (a ResultSelector on $.FinalMetricDataList): on AWS a
    States.Runtime error that States.ALL does not catch, so the run ends without reaching TrainFailed."""
    monkeypatch.setattr(sagemaker_task, "final_metrics", lambda request, lines: None)
    definition = json.loads(engine.synthesis.definition)
    definition["States"]["Train"].update(Next="CreateModel", ResultSelector={
        "jobName.$": "$.TrainingJobName", "modelArtifacts.$": "$.ModelArtifacts.S3ModelArtifacts",
        "finalMetrics.$": "$.FinalMetricDataList"})
    machine = engine.synthesis.one("aws:sfn/stateMachine:StateMachine")["inputs"]
    arn = engine.client("stepfunctions").create_state_machine(
        name="unguarded", definition=json.dumps(definition), roleArn=machine["roleArn"])["stateMachineArn"]
    description, progress = execute(engine, {"datasetUri": engine.iris, "labelColumn": "species"}, "unguarded", arn)
    assert description["status"] == "FAILED" and description["error"] == "States.Runtime"
    assert "TrainFailed" not in [s.name for s in progress.states]


def test_an_execution_name_sagemaker_refuses_in_tags_still_trains(engine, iris_run):
    sagemaker = engine.client("sagemaker")
    job = json.loads(iris_run["output"])["trainingJobName"]
    arn = sagemaker.describe_training_job(TrainingJobName=job)["TrainingJobArn"]
    tags = {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=arn)["Tags"]}
    assert tags["sagestep:execution"] == "retrain_v2__" and tags["sagestep:stack"] == "dev"


def test_a_failed_job_reports_its_last_log_lines_and_where_to_read_them(engine):
    """R9: under the real image FailureReason is the launcher's text; the script's reason is in the log."""
    description, progress = execute(engine, {"datasetUri": engine.iris, "labelColumn": "species",
                                             "hyperparameters": {"monotone_constraints": "(1,1,1,1,1,1,1,1,1)"}}, "bad-depth")
    result = result_of(description, progress)
    attach_job_log(result, engine.client("logs"), engine.region)
    assert result["failedState"] == "Train" and result["error"] == "States.TaskFailed"
    job = result["failedJob"]
    assert job["name"].endswith("-train-0") and job["logGroup"] == "/aws/sagemaker/TrainingJobs"
    assert any(line.startswith("TrainingError: XGBoost rejected the training") for line in job["logTail"])
    assert "ExecuteUserScriptError" in result["cause"], "the launcher's text, as FailureReason on AWS"
    assert job["console"].startswith(f"https://{engine.region}.console.aws.amazon.com/cloudwatch/home")
    assert "$252Faws$252Fsagemaker$252FTrainingJobs" in job["console"] and job["name"] in job["console"]


def test_a_training_request_without_sagemaker_region_fails_as_the_launcher_may(engine):
    """R8: the definition always passes sagemaker_region; without it, the job cannot fetch its code."""
    definition = json.loads(engine.synthesis.definition)
    del definition["States"]["FinishPreprocess"]["ResultSelector"]["trainingCode"]["sagemaker_region"]
    machine = engine.synthesis.one("aws:sfn/stateMachine:StateMachine")["inputs"]
    arn = engine.client("stepfunctions").create_state_machine(
        name="no-region", definition=json.dumps(definition), roleArn=machine["roleArn"])["stateMachineArn"]
    description, progress = execute(engine, {"datasetUri": engine.iris, "labelColumn": "species"}, "no-region", arn)
    result = result_of(description, progress)
    assert result["failedState"] == "Train" and "MissingRegion" in result["cause"]
    assert "sagemaker_region" in result["cause"]


def test_a_stack_outside_us_east_1_runs():
    """Buckets outside us-east-1 need their LocationConstraint, as on AWS."""
    with LocalEngine(synthesize("eu", {"aws:region": "eu-west-1"})) as running:
        description, _ = execute(running, {"datasetUri": running.upload_dataset(IRIS), "labelColumn": "species"},
                                 "in-ireland")
        assert description["status"] == "SUCCEEDED", description.get("cause")
        assert running.client("s3").get_bucket_location(Bucket=running.data_bucket)["LocationConstraint"] == "eu-west-1"
        assert description["executionArn"].startswith("arn:aws:states:eu-west-1:")


def test_stop_transform_job_is_checked_as_every_sagemaker_request_then_answered_as_sagemaker_does():
    """moto has no StopTransformJob: the engine answers it (BatchPredictStop sends it), after botocore's
    client-side check and the service model's server-side one (aws_rules), like every SageMaker request.
    An engine of its own: the module's shares the emulator, but not the jobs of an engine closed since."""
    with LocalEngine(synthesize("stopjob", {})) as engine:
        sagemaker = engine.client("sagemaker")
        with pytest.raises(ParamValidationError, match="Missing required parameter in input: \"TransformJobName\""):
            sagemaker.stop_transform_job()
        with pytest.raises(ClientError) as refused:
            sagemaker.stop_transform_job(TransformJobName="not a job name!")
        with pytest.raises(ClientError) as unknown:
            sagemaker.stop_transform_job(TransformJobName="no-such-job")
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    assert "Member must satisfy regular expression pattern" in refused.value.response["Error"]["Message"]
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"
