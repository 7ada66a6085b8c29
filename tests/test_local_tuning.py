"""The local engine runs a tuning job as SageMaker does: every trial a real training job through the image's
launcher, named, tagged and recorded as SageMaker's; the strategies' trials; the best by the objective's
direction; Stop and ListTrainingJobsFor… answered; Hyperband refused."""
import json
import math
import random
import re
import threading
import time
from datetime import datetime

import boto3
import pytest
from botocore.exceptions import ClientError

from sagestep import ROOT
from sagestep.checks import free_port
from sagestep.local import aws_rules, moto_adapter, tuning
from sagestep.local.engine import LocalEngine
from sagestep.runner import follow
from sagestep.synth import synthesize

IRIS = ROOT / "examples/iris.csv"
OBJECTIVE = {"Type": "Minimize", "MetricName": "validation:mlogloss"}
TAGS = [{"Key": "sagestep:stack", "Value": "tune"}]


@pytest.fixture(scope="module")
def engine():
    with LocalEngine(synthesize("tune", {})) as running:
        yield running


@pytest.fixture(scope="module")
def definition(engine) -> dict:
    """TrainingJobDefinition as the synthesized Train state sends it, filled from a real preprocess run (the
    pipeline ends where Train would begin): the training code bundle, image, channels, role, output path."""
    sfn = engine.client("stepfunctions")
    states = json.loads(engine.synthesis.definition)
    train = states["States"]["Train"]["Parameters"]
    states["States"]["Train"] = {"Type": "Succeed"}
    machine = engine.synthesis.one("aws:sfn/stateMachine:StateMachine")["inputs"]
    prepare = sfn.create_state_machine(name="prepare", definition=json.dumps(states),
                                       roleArn=machine["roleArn"])["stateMachineArn"]
    arn = sfn.start_execution(stateMachineArn=prepare, name="prepared", input=json.dumps(
        {"datasetUri": engine.upload_dataset(IRIS), "labelColumn": "species"}))["executionArn"]
    description, _ = follow(sfn, arn, timeout_seconds=120)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    run = json.loads(description["output"])["run"]
    channels = [{**{k: v for k, v in channel.items() if k != "DataSource"}, "DataSource": {"S3DataSource": {
        **{k: v for k, v in channel["DataSource"]["S3DataSource"].items() if k != "S3Uri.$"},
        "S3Uri": run["channels"][channel["ChannelName"]]}}} for channel in train["InputDataConfig"]]
    static = {**{k: str(v) for k, v in run["hyperparameters"].items()}, **run["trainingCode"], "num_round": "5"}
    return {"AlgorithmSpecification": train["AlgorithmSpecification"], "RoleArn": train["RoleArn"],
            "InputDataConfig": channels, "OutputDataConfig": train["OutputDataConfig"],
            "ResourceConfig": train["ResourceConfig"], "StoppingCondition": train["StoppingCondition"],
            "StaticHyperParameters": static}


@pytest.fixture(scope="module")
def machine(engine, definition) -> str:
    """A tiny state machine: the tuning job (.sync), then DescribeTrainingJob of its best trial."""
    states = {"StartAt": "Tune", "States": {
        "Tune": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync",
                 "Parameters": {"HyperParameterTuningJobName.$": "$.name",
                                "HyperParameterTuningJobConfig.$": "$.config",
                                "TrainingJobDefinition": definition, "Tags": TAGS},
                 "ResultPath": "$.tuning", "Next": "Best"},
        "Best": {"Type": "Task", "Resource": "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob",
                 "Parameters": {"TrainingJobName.$": "$.tuning.BestTrainingJob.TrainingJobName"},
                 "ResultPath": "$.best", "End": True}}}
    role = engine.synthesis.one("aws:sfn/stateMachine:StateMachine")["inputs"]["roleArn"]
    return engine.client("stepfunctions").create_state_machine(
        name="tune", definition=json.dumps(states), roleArn=role)["stateMachineArn"]


def config(strategy, ranges, jobs, parallel, objective=OBJECTIVE):
    return {"Strategy": strategy, "HyperParameterTuningJobObjective": objective, "ParameterRanges": ranges,
            "ResourceLimits": {"MaxNumberOfTrainingJobs": jobs, "MaxParallelTrainingJobs": parallel},
            "TrainingJobEarlyStoppingType": "Off"}


def start(engine, machine, name, tuning_config):
    sfn = engine.client("stepfunctions")
    return sfn.start_execution(stateMachineArn=machine, name=name,
                               input=json.dumps({"name": name, "config": tuning_config}))["executionArn"]


def trials(engine, name, **options):
    return engine.client("sagemaker").list_training_jobs_for_hyper_parameter_tuning_job(
        HyperParameterTuningJobName=name, **options)["TrainingJobSummaries"]


RANDOM = {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5",
                                         "ScalingType": "Logarithmic"}],
          "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "6"}]}


@pytest.fixture(scope="module")
def random_run(engine, machine):
    """Random, 4 trials, 2 at a time; the number of trials in progress is sampled while it runs."""
    arn = start(engine, machine, "rand", config("Random", RANDOM, 4, 2))
    seen, done = [], threading.Event()

    def sample():
        while not done.is_set():
            try:
                seen.append(sum(s["TrainingJobStatus"] == "InProgress" for s in trials(engine, "rand", MaxResults=100)))
            except ClientError:
                pass          # before the tuning job exists
            time.sleep(0.05)
    sampler = threading.Thread(target=sample)
    sampler.start()
    description, _ = follow(engine.client("stepfunctions"), arn, timeout_seconds=180)
    done.set()
    sampler.join()
    return description, seen


def test_random_runs_its_trials_as_real_training_jobs_two_at_a_time(engine, random_run):
    description, seen = random_run
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert max(seen) == 2, "never more than MaxParallelTrainingJobs at once, and that many"
    summaries = trials(engine, "rand")
    names = [s["TrainingJobName"] for s in summaries]
    assert [re.fullmatch(r"rand-(\d{3})-[0-9a-f]{8}", n).group(1) for n in names] == ["001", "002", "003", "004"]
    sagemaker = engine.client("sagemaker")
    for summary in summaries:
        tuned = summary["TunedHyperParameters"]
        assert 0.05 <= float(tuned["eta"]) <= 0.5 and tuned["max_depth"] in {"2", "3", "4", "5", "6"}
        job = sagemaker.describe_training_job(TrainingJobName=summary["TrainingJobName"])
        assert job["TrainingJobStatus"] == "Completed"
        assert job["TuningJobArn"].endswith(":hyper-parameter-tuning-job/rand")
        assert job["HyperParameters"]["eta"] == tuned["eta"] and job["HyperParameters"]["num_round"] == "5"
        [metric] = [m for m in job["FinalMetricDataList"] if m["MetricName"] == "validation:mlogloss"]
        assert summary["FinalHyperParameterTuningJobObjectiveMetric"]["Value"] == metric["Value"]
        assert summary["ObjectiveStatus"] == "Succeeded"
        assert {t["Key"]: t["Value"] for t in sagemaker.list_tags(ResourceArn=job["TrainingJobArn"])["Tags"]} == {
            "sagestep:stack": "tune"}
        streams = engine.client("logs").describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs",
                                                             logStreamNamePrefix=f"{summary['TrainingJobName']}/")
        assert len(streams["logStreams"]) == 1, "each trial has its own log stream"


def test_the_best_trial_is_the_minimum_and_describe_training_job_finds_its_model(engine, random_run):
    description, _ = random_run
    output = json.loads(description["output"])
    summaries = trials(engine, "rand")
    best = min(summaries, key=lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"])
    described = engine.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="rand")
    assert described["HyperParameterTuningJobStatus"] == "Completed" and "HyperParameterTuningEndTime" in described
    assert described["TrainingJobStatusCounters"] == {"Completed": 4, "InProgress": 0, "RetryableError": 0,
                                                      "NonRetryableError": 0, "Stopped": 0}
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 4, "Pending": 0, "Failed": 0}
    assert described["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    assert described["BestTrainingJob"]["FinalHyperParameterTuningJobObjectiveMetric"] == {
        "Type": "Minimize", "MetricName": "validation:mlogloss",
        "Value": best["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]}
    assert output["tuning"]["BestTrainingJob"]["TrainingJobName"] == best["TrainingJobName"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", output["best"]["CreationTime"]), \
        "an aws-sdk task's timestamps are ISO 8601 text"
    model = output["best"]["ModelArtifacts"]["S3ModelArtifacts"]
    assert model.endswith(f"/{best['TrainingJobName']}/output/model.tar.gz")
    bucket, key = model[len("s3://"):].split("/", 1)
    assert engine.client("s3").head_object(Bucket=bucket, Key=key)["ContentLength"] > 0


def test_list_training_jobs_for_a_tuning_job_sorts_filters_and_pages(engine, random_run):
    values = [s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]
              for s in trials(engine, "rand", SortBy="FinalObjectiveMetricValue", SortOrder="Descending")]
    assert values == sorted(values, reverse=True) and len(values) == 4
    names = [s["TrainingJobName"] for s in trials(engine, "rand", SortBy="Name", SortOrder="Descending")]
    assert names == sorted(names, reverse=True)
    assert trials(engine, "rand", StatusEquals="Failed") == []
    sagemaker = engine.client("sagemaker")
    first = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="rand",
                                                                        MaxResults=3)
    rest = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="rand",
                                                                       NextToken=first["NextToken"])
    assert [s["TrainingJobName"] for s in first["TrainingJobSummaries"] + rest["TrainingJobSummaries"]] == sorted(names)
    assert "NextToken" not in rest
    with pytest.raises(ClientError) as unknown:
        sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(HyperParameterTuningJobName="nosuchjob")
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"


def test_the_served_endpoint_answers_the_tuning_operations_moto_lacks(engine, random_run):
    """`sagestep local serve`'s server: the real client, over HTTP, gets the same answers."""
    server = moto_adapter.server("127.0.0.1", free_port("127.0.0.1", 0))
    server.start()
    try:
        host, port = server.get_host_and_port()
        served = boto3.client("sagemaker", endpoint_url=f"http://{host}:{port}", region_name=engine.region,
                              aws_access_key_id="local", aws_secret_access_key="local")
        listed = served.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="rand", SortBy="FinalObjectiveMetricValue")["TrainingJobSummaries"]
        described = served.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="rand")
        with pytest.raises(ClientError) as unknown:
            served.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="nosuchjob")
    finally:
        server.stop()
    assert [s["TrainingJobName"] for s in listed] == [s["TrainingJobName"] for s in trials(
        engine, "rand", SortBy="FinalObjectiveMetricValue")]
    assert listed[0]["TrainingJobName"] == described["BestTrainingJob"]["TrainingJobName"], "ascending: the least first"
    assert isinstance(listed[0]["CreationTime"], datetime) and described["HyperParameterTuningJobStatus"] == "Completed"
    assert unknown.value.response["Error"]["Code"] == "ResourceNotFound"


def test_grid_runs_exactly_every_combination_in_order(engine, machine):
    ranges = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "4"]},
                                             {"Name": "eta", "Values": ["0.1", "0.3"]}]}
    arn = start(engine, machine, "grid", config("Grid", ranges, 4, 4))
    description, _ = follow(engine.client("stepfunctions"), arn, timeout_seconds=180)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert [s["TunedHyperParameters"] for s in trials(engine, "grid")] == [
        {"max_depth": "2", "eta": "0.1"}, {"max_depth": "2", "eta": "0.3"},
        {"max_depth": "4", "eta": "0.1"}, {"max_depth": "4", "eta": "0.3"}]


def test_a_failed_trial_has_no_objective_and_fails_the_tuning_job_only_when_all_fail(engine, machine):
    sfn, sagemaker = engine.client("stepfunctions"), engine.client("sagemaker")
    some = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["3", "deep"]}]}
    description, _ = follow(sfn, start(engine, machine, "somefail", config("Grid", some, 2, 2)), timeout_seconds=180)
    assert description["status"] == "SUCCEEDED", description.get("cause")
    described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="somefail")
    assert described["TrainingJobStatusCounters"]["NonRetryableError"] == 1
    assert described["ObjectiveStatusCounters"] == {"Succeeded": 1, "Pending": 0, "Failed": 1}
    assert described["BestTrainingJob"]["TunedHyperParameters"] == {"max_depth": "3"}
    [failed] = trials(engine, "somefail", StatusEquals="Failed")
    assert failed["ObjectiveStatus"] == "Failed" and "FinalHyperParameterTuningJobObjectiveMetric" not in failed
    assert failed["FailureReason"]
    every = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["deep", "deeper"]}]}
    description, _ = follow(sfn, start(engine, machine, "allfail", config("Grid", every, 2, 2)), timeout_seconds=180)
    assert description["status"] == "FAILED" and description["error"] == "States.TaskFailed"
    cause = json.loads(description["cause"])
    assert cause["HyperParameterTuningJobStatus"] == "Failed" and "BestTrainingJob" not in cause
    assert cause["FailureReason"].startswith("No training job succeeded after 2 attempts")


def test_stop_hyper_parameter_tuning_job_stops_its_running_trials(engine, machine):
    arn = start(engine, machine, "stopme", config("Random", RANDOM, 4, 2))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if sum(s["TrainingJobStatus"] == "InProgress" for s in trials(engine, "stopme")) == 2:
                break
        except ClientError:
            pass
        time.sleep(0.05)
    sagemaker = engine.client("sagemaker")
    sagemaker.stop_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")
    description, _ = follow(engine.client("stepfunctions"), arn, timeout_seconds=60)
    assert description["status"] == "FAILED" and description["error"] == "States.TaskFailed"
    assert json.loads(description["cause"])["HyperParameterTuningJobStatus"] == "Stopped"
    summaries = trials(engine, "stopme")
    assert [s["TrainingJobStatus"] for s in summaries] == ["Stopped", "Stopped"]
    assert all(s["ObjectiveStatus"] == "Failed" for s in summaries)
    described = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="stopme")
    assert described["TrainingJobStatusCounters"]["Stopped"] == 2 and "BestTrainingJob" not in described


def test_a_stopped_execution_stops_its_tuning_job(engine, machine):
    sfn = engine.client("stepfunctions")
    arn = start(engine, machine, "abort", config("Random", RANDOM, 4, 2))
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if trials(engine, "abort"):
                break
        except ClientError:
            pass
        time.sleep(0.05)
    sfn.stop_execution(executionArn=arn)
    sagemaker = engine.client("sagemaker")
    deadline = time.monotonic() + 30
    while sagemaker.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="abort")["HyperParameterTuningJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert sagemaker.describe_hyper_parameter_tuning_job(
        HyperParameterTuningJobName="abort")["HyperParameterTuningJobStatus"] == "Stopped"
    assert {s["TrainingJobStatus"] for s in trials(engine, "abort")} == {"Stopped"}


def test_hyperband_is_refused_in_one_line(engine, machine):
    tuning_config = {**config("Hyperband", RANDOM, 4, 2),
                     "StrategyConfig": {"HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 5}}}
    arn = start(engine, machine, "hyper", tuning_config)
    description, _ = follow(engine.client("stepfunctions"), arn, timeout_seconds=30)
    assert description["status"] == "FAILED" and description["error"] == "States.TaskFailed"
    assert "Hyperband" in description["cause"] and "\n" not in description["cause"]
    with pytest.raises(ClientError):
        engine.client("sagemaker").describe_hyper_parameter_tuning_job(HyperParameterTuningJobName="hyper")


def test_a_tuning_job_created_through_the_api_runs_too(engine, definition):
    """Not only the state machine's: CreateHyperParameterTuningJob from any client runs its trials (moto alone would
    complete it at once with a made-up best job); Hyperband is refused there with a 400 that says why."""
    sagemaker = engine.client("sagemaker")
    ranges = {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "3"]}]}
    sagemaker.create_hyper_parameter_tuning_job(HyperParameterTuningJobName="direct", TrainingJobDefinition=definition,
                                                HyperParameterTuningJobConfig=config("Grid", ranges, 2, 2))
    deadline = time.monotonic() + 120
    while (described := sagemaker.describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="direct"))["HyperParameterTuningJobStatus"] == "InProgress":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert described["HyperParameterTuningJobStatus"] == "Completed"
    assert described["BestTrainingJob"]["TrainingJobName"].startswith("direct-00")
    assert sorted(s["TunedHyperParameters"]["max_depth"] for s in trials(engine, "direct")) == ["2", "3"]
    with pytest.raises(ClientError) as refused:
        sagemaker.create_hyper_parameter_tuning_job(
            HyperParameterTuningJobName="band", TrainingJobDefinition=definition,
            HyperParameterTuningJobConfig={**config("Hyperband", RANDOM, 4, 2), "StrategyConfig": {
                "HyperbandStrategyConfig": {"MinResource": 1, "MaxResource": 5}}})
    assert "does not run the Hyperband strategy" in refused.value.response["Error"]["Message"]


# ---------------------------------------------------------------- the pure parts

def test_random_sampling_is_on_the_range_scale_and_integers_include_both_ends():
    rng = random.Random(7)
    log = tuning.Range("eta", "Continuous", 0.001, 1.0, "Logarithmic")
    draws = sorted(float(tuning.sample(log, rng)) for _ in range(2000))
    assert 0.001 <= draws[0] and draws[-1] <= 1.0
    assert abs(math.log10(draws[1000]) - (-1.5)) < 0.15, "the median is the geometric mean on a log scale"
    integers = {tuning.sample(tuning.Range("max_depth", "Integer", 2, 4, "Linear"), rng) for _ in range(200)}
    assert integers == {"2", "3", "4"}
    reverse = tuning.Range("subsample", "Continuous", 0.0, 0.99, "ReverseLogarithmic")
    assert all(0.0 <= float(tuning.sample(reverse, rng)) <= 0.99 for _ in range(200))


def test_aws_sdk_timestamps_become_iso_text_naive_ones_read_as_utc():
    from datetime import timedelta, timezone
    moment = datetime(2026, 1, 2, 3, 4, 5, 678000)
    result = {"CreationTime": moment, "Items": [{"At": moment.replace(tzinfo=timezone(timedelta(hours=2)))}], "N": 1}
    assert moto_adapter.iso_timestamps(result) == {
        "CreationTime": "2026-01-02T03:04:05.678Z", "Items": [{"At": "2026-01-02T01:04:05.678Z"}], "N": 1}


def test_a_trial_request_passes_categorical_values_as_listed_and_the_objective_name():
    definition = {"AlgorithmSpecification": {"TrainingImage": "image", "TrainingInputMode": "File"}, "RoleArn": "r",
                  "OutputDataConfig": {"S3OutputPath": "s3://b/"}, "StoppingCondition": {"MaxRuntimeInSeconds": 60},
                  "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 1},
                  "StaticHyperParameters": {"num_round": "5"}}
    request = tuning.trial_request("t-001-0a1b2c3d", definition, {"booster": '"dart"'}, "validation:auc", TAGS)
    assert request["HyperParameters"] == {"num_round": "5", "booster": '"dart"',
                                          "_tuning_objective_metric": "validation:auc"}
    assert request["Tags"] == TAGS and request["TrainingJobName"] == "t-001-0a1b2c3d"


@pytest.mark.parametrize("strategy, ranges, jobs, rule", [
    ("Random", {"ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0", "MaxValue": "1",
                                                "ScalingType": "Logarithmic"}]}, 4, "Logarithmic scaling"),
    ("Random", {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "0", "MaxValue": "1",
                                             "ScalingType": "ReverseLogarithmic"}]}, 4, "Reverse logarithmic"),
    ("Random", {"ContinuousParameterRanges": [{"Name": "subsample", "MinValue": "0.5", "MaxValue": "1",
                                                "ScalingType": "ReverseLogarithmic"}]}, 4, "Reverse logarithmic"),
    ("Grid", {"IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "4"}]}, 3,
     "only categorical"),
    ("Grid", {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "4"]}]}, 3, "combinations"),
])
def test_tuning_requests_aws_refuses_are_refused(definition, strategy, ranges, jobs, rule):
    request = {"HyperParameterTuningJobName": "t", "HyperParameterTuningJobConfig": config(strategy, ranges, jobs, 1),
               "TrainingJobDefinition": definition}
    code, message = aws_rules.refusal("sagemaker", "CreateHyperParameterTuningJob", request)
    assert code == "ValidationException" and rule in message
    fine = {**request, "HyperParameterTuningJobConfig": config(
        "Grid", {"CategoricalParameterRanges": [{"Name": "max_depth", "Values": ["2", "4"]}]}, 2, 1)}
    assert aws_rules.refusal("sagemaker", "CreateHyperParameterTuningJob", fine) is None
