"""Tuning (sagestep:tuning): off by default; when on, Tune runs in Train's place with the run's resolved tuning, its
names fit the API, its permissions are pinned, and every bad config is refused in one line."""
import json
import re

import pytest

from infra.settings import ConfigError, read_settings
from preprocess import errors
from preprocess.handler import handler
from preprocess.naming import TUNING_NAME_MAX, run_name, tuning_name
from sagestep.synth import synthesize
from statemachine import jobs, state_order
from statemachine.check import check_definition
from statemachine.naming import BASE_MAX, RETRY_DIGITS, job_name, longest_name, name_prefix
from statemachine.tune import JOB as TUNING_JOB
from tests.conftest import statements_by_sid
from tests.test_preprocess import BUCKET, event, put, s3  # noqa: F401 - s3 is a fixture

TUNING = {"strategy": "Random", "maxJobs": 4, "maxParallelJobs": 2,
          "ranges": {"eta": {"min": 0.05, "max": 0.5, "scaling": "Logarithmic"}, "max_depth": {"min": 2, "max": 6},
                     "subsample": [0.5, 0.8, 1]}}
ACCOUNT, REGION = "123456789012", "us-east-1"
SAGEMAKER_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
TUNING_JOB_NAME = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,31}$")       # botocore: HyperParameterTuningJobName


@pytest.fixture(scope="module")
def tuned():
    return synthesize("dev", {"tuning": json.dumps(TUNING)})


@pytest.fixture(scope="module")
def tuned_definition(tuned):
    return json.loads(tuned.definition)


def settings_from(values: dict):
    return read_settings(lambda key: values.get(key), "dev")


# Names


def test_every_job_kind_fits_its_api_s_name_limit():
    kinds = {job.kind: job for job in jobs()}
    assert set(kinds) == {"training", "tuning", "model", "transform"}
    for job in kinds.values():
        assert longest_name(job) == BASE_MAX[job.base] + len(job.infix) + RETRY_DIGITS <= job.limit
    assert kinds["tuning"].limit == 32 and TUNING_NAME_MAX + len("-9") == 32


@pytest.mark.parametrize("stack", ["dev", "a-very-long-stack-name-for-production-eu-west-1", "Ünï_cödé"])
@pytest.mark.parametrize("execution", ["a", "A" * 80, "My_Run_2026-11-26T10:00", "__--__", "x" * 79 + "_"])
def test_tuning_job_names_fit_32_characters_and_cover_their_trials(stack, execution):
    prefix = name_prefix(stack)
    arn = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:{prefix}-pipeline:{execution}"
    name = tuning_name(prefix, execution, arn)
    for retry in range(10):
        job = f"{name}-{retry}"
        assert len(job) <= 32 and TUNING_JOB_NAME.fullmatch(job), job
        # SageMaker names the trials "<tuning name>-<NNN>-<8 hex>": training job names, under this stack's prefix.
        trial = f"{job}-009-4c7a3059"
        assert len(trial) <= 63 and SAGEMAKER_NAME.fullmatch(trial) and trial.startswith(f"{prefix}--")
    assert re.search(r"[0-9a-f]{4}$", name)


def test_tuning_job_names_are_readable_and_differ_between_executions():
    prefix = name_prefix("a-very-long-stack-name-for-production-eu-west-1")
    arn = f"arn:aws:states:us-east-1:{ACCOUNT}:execution:sm:{{}}"
    executions = ("run_1", "run-1", "RUN-1", "A" * 80, "A" * 79 + "B")
    assert len({tuning_name(prefix, n, arn.format(n)) for n in executions}) == 5
    assert len({tuning_name("sagestep-dev", n, arn.format(n)) for n in executions}) == 5
    assert tuning_name("sagestep-dev", "nightly", arn.format("nightly")).startswith("sagestep-dev--nightly-")
    # The run name keeps its 8 hex: tuning names do not change it.
    assert re.fullmatch(r"sagestep-dev--nightly-[0-9a-f]{8}", run_name("sagestep-dev", "nightly", arn.format("n")))


def test_the_tune_state_names_the_job_from_tuning_name_and_attempt(tuned_definition):
    parameters = tuned_definition["States"]["Tune"]["Parameters"]
    assert parameters["HyperParameterTuningJobName.$"] == job_name(TUNING_JOB) == \
        "States.Format('{}-{}', $.run.tuningName, $$.State.RetryCount)"


# The definition


def test_off_by_default_the_definition_has_no_tuning(stack):
    definition = json.loads(stack.definition)
    assert "Tune" not in definition["States"] and "Train" in definition["States"]
    assert "tuning" not in stack.definition and "tuningName" not in stack.definition
    function = stack.one("aws:lambda/function:Function", "sagestep-dev-preprocess")["inputs"]
    assert "TUNING" not in function["environment"]["variables"]


def test_tune_takes_train_s_place_and_hands_the_gate_what_train_did(tuned_definition, stack):
    assert state_order(tuned_definition)[6:14] == [
        "FinishPreprocess", "Tune", "HasBestTrainingJob", "DescribeBestTrainingJob", "HasBestJobMetrics",
        "BestTrainingResult", "TuningResult", "QualityGate"]
    states = tuned_definition["States"]
    assert not {"Train", "HasTrainingMetrics", "TrainingResult"} & set(states)
    assert check_definition(tuned_definition) == []
    # The best trial's DescribeTrainingJob becomes the same $.training as Train's.
    untuned = json.loads(stack.definition)["States"]
    assert states["BestTrainingResult"]["Parameters"] == untuned["TrainingResult"]["Parameters"]
    assert states["BestTrainingResult"]["ResultPath"] == "$.training"
    assert states["DescribeBestTrainingJob"]["Resource"] == "arn:aws:states:::aws-sdk:sagemaker:describeTrainingJob"
    assert states["DescribeBestTrainingJob"]["Parameters"] == {
        "TrainingJobName.$": "$.tuning.BestTrainingJob.TrainingJobName"}
    assert states["HasBestTrainingJob"]["Choices"] == [
        {"Variable": "$.tuning.BestTrainingJob", "IsPresent": False, "Next": "NoBestTrainingJob"}]
    assert states["NoBestTrainingJob"]["Next"] == "TuneFailureCause"
    assert states["TuningResult"]["Parameters"] == {"job.$": "$.tuning.HyperParameterTuningJobName",
                                                    "objective.$": "$.run.tuning.objective",
                                                    "best.$": "$.tuning.BestTrainingJob"}
    assert states["TuneFailed"]["Type"] == "Fail"
    summary = states["Summarize"]["Parameters"]
    assert (summary["tuningJobName.$"], summary["tuning.$"], summary["modelArtifacts.$"]) == \
        ("$.tuning.job", "$.tuning", "$.training.modelArtifacts")
    finish = states["FinishPreprocess"]["ResultSelector"]
    assert (finish["tuningName.$"], finish["tuning.$"]) == ("$.Payload.tuningName", "$.Payload.tuning")


def test_each_trial_is_trained_as_train_trains_without_metric_definitions(tuned_definition, stack):
    tune = tuned_definition["States"]["Tune"]
    assert tune["Resource"] == "arn:aws:states:::sagemaker:createHyperParameterTuningJob.sync"
    assert tune["Parameters"]["HyperParameterTuningJobConfig"] == {
        "Strategy": "Random", "HyperParameterTuningJobObjective.$": "$.run.tuning.objective",
        "ResourceLimits.$": "$.run.tuning.resourceLimits", "ParameterRanges.$": "$.run.tuning.parameterRanges",
        "TrainingJobEarlyStoppingType": "Off"}
    trial = dict(tune["Parameters"]["TrainingJobDefinition"])
    assert trial.pop("StaticHyperParameters.$") == \
        "States.JsonMerge($.run.tuning.staticHyperParameters, $.run.trainingCode, false)"
    train = dict(json.loads(stack.definition)["States"]["Train"]["Parameters"])
    for key in ("TrainingJobName.$", "HyperParameters.$", "Tags"):
        train.pop(key)
    assert trial == train and "MetricDefinitions" not in json.dumps(trial)
    assert tune["Parameters"]["Tags"][1] == {"Key": "sagestep:execution", "Value.$": "$.run.executionTag"}


def test_the_static_check_reads_tune_s_and_the_describe_s_parameters_against_botocore(tuned_definition):
    """statemachine/check.py would refuse a field CreateHyperParameterTuningJob or DescribeTrainingJob lacks."""
    broken = json.loads(json.dumps(tuned_definition))
    broken["States"]["Tune"]["Parameters"]["TrainingJobDefinition"]["HyperParameters"] = {}
    broken["States"]["Tune"]["Parameters"]["HyperParameterTuningJobConfig"]["Strategy"] = "Evolutionary"
    broken["States"]["DescribeBestTrainingJob"]["Parameters"] = {"JobName.$": "$.tuning.BestTrainingJob.TrainingJobName"}
    problems = check_definition(broken)
    assert any(p.startswith("Tune.Parameters.TrainingJobDefinition: unknown parameter 'HyperParameters'")
               for p in problems), problems
    assert "Tune.Parameters.HyperParameterTuningJobConfig.Strategy: 'Evolutionary' is not one of Bayesian, Random, " \
           "Hyperband, Grid" in problems
    assert "DescribeBestTrainingJob.Parameters: missing required parameter 'TrainingJobName'" in problems


def test_spot_trials_share_no_checkpoint_prefix():
    definition = json.loads(synthesize("spot", {"tuning": json.dumps(TUNING), "useSpotTraining": "true"}).definition)
    trial = definition["States"]["Tune"]["Parameters"]["TrainingJobDefinition"]
    assert trial["EnableManagedSpotTraining"] is True and "CheckpointConfig" not in trial
    assert trial["StoppingCondition"]["MaxWaitTimeInSeconds"] >= trial["StoppingCondition"]["MaxRuntimeInSeconds"]


def test_the_synth_summary_says_the_stack_tunes(tuned, stack):
    from rich.console import Console

    from sagestep.cli import print_summary
    lines = {}
    for name, synthesis in (("tuned", tuned), ("untuned", stack)):
        console = Console(record=True, width=300)
        print_summary(synthesis, console)
        lines[name] = console.export_text()
    assert "tuning: Random search" in lines["tuned"] and "training (each tuning trial): 1 x ml.m5.xlarge" in lines["tuned"]
    assert "tuning:" not in lines["untuned"]


def test_the_function_gets_the_stack_s_tuning(tuned):
    function = tuned.one("aws:lambda/function:Function", "sagestep-dev-preprocess")["inputs"]
    assert json.loads(function["environment"]["variables"]["TUNING"]) == TUNING


# Permissions


def policy(stack, name):
    return json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", name)["inputs"]["policy"])


def test_the_state_machine_role_may_tune_only_when_the_stack_tunes(tuned, stack):
    sm = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    statements = statements_by_sid(policy(tuned, "sagestep-dev-states-policy"))
    training_role = "arn:aws:iam::%s:role/%s" % (
        ACCOUNT, tuned.one("aws:iam/rolePolicy:RolePolicy", "sagestep-dev-training-policy")["inputs"]["role"])
    expected = {
        "TuningJobs": (["sagemaker:AddTags", "sagemaker:CreateHyperParameterTuningJob",
                        "sagemaker:DescribeHyperParameterTuningJob",
                        "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                        "sagemaker:StopHyperParameterTuningJob"], [f"{sm}:hyper-parameter-tuning-job/sagestep-dev--*"]),
        "TuningTrials": (["sagemaker:DescribeTrainingJob"], [f"{sm}:training-job/sagestep-dev--*"]),
        "TuningJobEvents": (["events:DescribeRule", "events:PutRule", "events:PutTargets"],
                            [f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForSageMakerTuningJobsRule"]),
        "PassTrainingRole": (["iam:PassRole"], [training_role]),
    }
    for sid, (actions, resources) in expected.items():
        assert (statements[sid]["Action"], statements[sid]["Resource"]) == (actions, resources), sid
    assert statements["PassTrainingRole"]["Condition"] == {
        "StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    # Tuning creates no training job itself: Train's statements are gone with Train.
    assert "TrainingJobs" not in statements and "TrainingJobEvents" not in statements
    untuned = statements_by_sid(policy(stack, "sagestep-dev-states-policy"))
    assert not {"TuningJobs", "TuningTrials", "TuningJobEvents"} & set(untuned)
    assert "HyperParameterTuning" not in json.dumps(untuned)


# Config


def test_the_stack_s_tuning_is_parsed_with_its_strategy():
    assert settings_from({}).pipeline.tuning == {}
    assert settings_from({"tuning": json.dumps({"ranges": {"eta": {"min": 0.1, "max": 0.3}}})}).pipeline.tuning == {
        "strategy": "Bayesian", "ranges": {"eta": {"min": 0.1, "max": 0.3}}}
    grid = {"strategy": "Grid", "ranges": {"max_depth": [3, 5], "subsample": [0.5, 1]}}
    assert settings_from({"tuning": json.dumps({**grid, "maxJobs": 4})}).pipeline.tuning["maxJobs"] == 4


@pytest.mark.parametrize("tuning, reason", [
    ({"strategy": "Hyperband", "ranges": {"eta": {"min": 0.1, "max": 0.3}}}, "Hyperband needs a static hyperparameter "
     "named epochs (or num_epochs, n_epochs) for its MaxResource, which train.py does not take"),
    ({"strategy": "Evolutionary", "ranges": {"eta": {"min": 0.1, "max": 0.3}}}, "strategy 'Evolutionary' is not one of "
     "Bayesian, Random, Grid, Hyperband"),
    ({"maxJobs": 4}, "ranges must name at least one hyperparameter to tune"),
    ({"ranges": {"eta": {"min": 0.5, "max": 0.1}}}, "ranges.eta: min 0.5 must be below max 0.1"),
    ({"ranges": {"eta": {"min": 0.1, "max": 0.1}}}, "ranges.eta: min 0.1 must be below max 0.1"),
    ({"ranges": {"eta": {"min": 0, "max": 0.5, "scaling": "Logarithmic"}}}, "Logarithmic scaling needs min > 0"),
    ({"ranges": {"subsample": {"min": 0.5, "max": 1.0, "scaling": "ReverseLogarithmic"}}},
     "ReverseLogarithmic scaling is for continuous ranges within [0, 1)"),
    ({"ranges": {"max_depth": {"min": 2, "max": 8, "scaling": "ReverseLogarithmic"}}},
     "ReverseLogarithmic scaling is for continuous ranges within [0, 1)"),
    ({"ranges": {"eta": {"min": 0.1, "max": 0.3, "scaling": "Exponential"}}}, "scaling 'Exponential' is not one of"),
    ({"ranges": {"booster": ["gbtree", "dart"]}}, "ranges.booster: booster is not tunable with the SageMaker XGBoost "
     "image (tunable: alpha, colsample_bylevel, colsample_bynode, colsample_bytree, eta, gamma, lambda, max_delta_step, "
     "max_depth, min_child_weight, num_round, subsample)"),
    ({"ranges": {"subsample": {"min": 0.0, "max": 0.5}}}, "ranges.subsample: subsample must be a number in (0, 1]"),
    ({"ranges": {"max_depth": {"min": 2.5, "max": 6}}}, "ranges.max_depth: max_depth takes whole numbers"),
    ({"ranges": {"num_round": {"min": 0, "max": 100}}}, "ranges.num_round: num_round must be a whole number ≥ 1"),
    ({"ranges": {"max_depth": [3, -1]}}, "ranges.max_depth: max_depth must be a whole number ≥ 0, got '-1'"),
    ({"ranges": {"eta": []}}, "ranges.eta: a categorical range is a list of 1 to 30"),
    ({"ranges": {"eta": {"min": 0.1}}}, "ranges.eta: a range is {min, max, scaling?} or a list of values"),
    ({"objective": "validation:accuracy", "ranges": {"eta": {"min": 0.1, "max": 0.3}}},
     "objective \"validation:accuracy\" is not validation:<metric> of the metrics a run can report"),
    ({"objective": "auc", "ranges": {"eta": {"min": 0.1, "max": 0.3}}}, "is not validation:<metric>"),
    ({"maxJobs": 2, "maxParallelJobs": 3, "ranges": {"eta": {"min": 0.1, "max": 0.3}}},
     "maxParallelJobs 3 is more than maxJobs 2"),
    ({"maxJobs": 0, "ranges": {"eta": {"min": 0.1, "max": 0.3}}}, "maxJobs must be a whole number ≥ 1, got 0"),
    ({"maxParallelJobs": 1.5, "ranges": {"eta": {"min": 0.1, "max": 0.3}}}, "maxParallelJobs must be a whole number"),
    ({"strategy": "Grid", "ranges": {"eta": {"min": 0.1, "max": 0.3}}},
     "Grid searches categorical ranges only (lists of values)"),
    ({"strategy": "Grid", "maxJobs": 5, "ranges": {"max_depth": [3, 5], "eta": [0.1, 0.2]}},
     "Grid runs every combination: maxJobs must be 4 (or left out), got 5"),
    ({"ranges": {"eta": {"min": 0.1, "max": 0.3}}, "max_jobs": 3}, "max_jobs is not a tuning key"),
    ({"ranges": {f"r{i}": [1] for i in range(31)}}, "ranges names 31 hyperparameters; SageMaker tunes at most 30"),
])
def test_a_tuning_sagemaker_or_xgboost_would_refuse_is_refused_at_synth(tuning, reason):
    with pytest.raises(ConfigError) as caught:
        settings_from({"tuning": json.dumps(tuning)})
    message = str(caught.value)
    assert message.startswith("invalid config sagestep:tuning = {") and "\n" not in message
    assert "allowed: a tuning config SageMaker and XGBoost take (" in message and reason in message


def test_a_tuning_objective_the_stack_s_objective_never_reports_is_refused_at_synth():
    with pytest.raises(ConfigError, match=re.escape("objective validation:auc is not a metric objective "
                                                    "reg:squarederror reports")):
        settings_from({"hyperparameters": '{"objective": "reg:squarederror"}',
                       "tuning": json.dumps({"objective": "validation:auc", "ranges": {"eta": [0.1, 0.2]}})})


def test_a_bad_tuning_in_the_stack_file_stops_synth_in_one_line_with_exit_2(tmp_path):
    from tests.test_settings import cli
    from sagestep import ROOT
    path = ROOT / "Pulumi.tunecheck-bad.yaml"
    path.write_text("config:\n  sagestep:tuning:\n    strategy: Hyperband\n    ranges:\n      eta: {min: 0.1, max: 0.3}\n")
    try:
        result = cli("synth", "--stack", "tunecheck-bad", "--out", str(tmp_path / "out"))
    finally:
        path.unlink()
    assert result.returncode == 2 and "Traceback" not in result.stderr
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("sagestep synth: invalid config sagestep:tuning = {") and "Hyperband needs" in line
    assert not (tmp_path / "out").exists()


# The preprocess step: the execution's tuning over the stack's, resolved for the run


@pytest.fixture
def tuning_stack(monkeypatch):
    monkeypatch.setenv("TUNING", json.dumps({"strategy": "Random", **TUNING}))


def dataset(s3):  # noqa: F811 - the fixture's client
    return put(s3, "datasets/t.csv", "x,label\n" + "\n".join(f"{i},{i % 2}" for i in range(60)))


def test_the_plan_carries_the_run_s_tuning_as_the_api_takes_it(s3, tuning_stack):  # noqa: F811
    plan = handler(event(dataset(s3)), None)
    assert plan["tuningName"].startswith("sagestep-dev--run-1-") and len(plan["tuningName"]) <= TUNING_NAME_MAX
    tuning = plan["tuning"]
    assert tuning["objective"] == {"Type": "Minimize", "MetricName": "validation:logloss"}
    assert tuning["resourceLimits"] == {"MaxNumberOfTrainingJobs": 4, "MaxParallelTrainingJobs": 2}
    assert tuning["parameterRanges"] == {
        "IntegerParameterRanges": [{"Name": "max_depth", "MinValue": "2", "MaxValue": "6", "ScalingType": "Auto"}],
        "ContinuousParameterRanges": [{"Name": "eta", "MinValue": "0.05", "MaxValue": "0.5",
                                       "ScalingType": "Logarithmic"}],
        "CategoricalParameterRanges": [{"Name": "subsample", "Values": ["0.5", "0.8", "1"]}]}
    static = tuning["staticHyperParameters"]
    assert not {"eta", "max_depth", "subsample"} & set(static)
    assert static == {key: value for key, value in plan["hyperparameters"].items()
                      if key not in ("eta", "max_depth", "subsample")}
    assert static["objective"] == "binary:logistic" and static["num_round"] == "300"


def test_the_objective_is_the_gate_s_metric_and_joins_eval_metric(s3, tuning_stack):  # noqa: F811
    plan = handler(event(dataset(s3), qualityMetric="validation:auc", qualityThreshold=0.6), None)
    assert plan["tuning"]["objective"] == {"Type": "Maximize", "MetricName": "validation:auc"}
    assert plan["tuning"]["staticHyperParameters"]["eval_metric"] == "auc,logloss"


def test_the_stack_s_objective_comes_first_and_joins_eval_metric(s3, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TUNING", json.dumps({**TUNING, "strategy": "Bayesian", "objective": "validation:aucpr"}))
    plan = handler(event(dataset(s3), qualityMetric="validation:auc", qualityThreshold=0.6), None)
    assert plan["tuning"]["objective"] == {"Type": "Maximize", "MetricName": "validation:aucpr"}
    assert plan["hyperparameters"]["eval_metric"] == "auc,aucpr,logloss"
    assert plan["hyperparameterOrigins"]["eval_metric"] == "tuning"


def test_the_execution_s_tuning_goes_over_the_stack_s(s3, tuning_stack):  # noqa: F811
    plan = handler(event(dataset(s3), tuning={"maxJobs": 6, "maxParallelJobs": 3,
                                              "ranges": {"gamma": {"min": 0, "max": 5}}}), None)
    assert plan["tuning"]["resourceLimits"] == {"MaxNumberOfTrainingJobs": 6, "MaxParallelTrainingJobs": 3}
    assert plan["tuning"]["parameterRanges"]["IntegerParameterRanges"] == [
        {"Name": "gamma", "MinValue": "0", "MaxValue": "5", "ScalingType": "Auto"}]
    assert {"eta", "max_depth"} <= set(plan["tuning"]["staticHyperParameters"])


@pytest.mark.parametrize("tuning, message", [
    ({"maxJobs": 1}, "the execution input's tuning: maxParallelJobs 2 is more than maxJobs 1"),
    ({"strategy": "Grid"}, "tuning.strategy is the stack's (sagestep:tuning); an execution may set maxJobs, "
                           "maxParallelJobs, ranges"),
    ([1, 2], "tuning must be an object of maxJobs, maxParallelJobs, ranges"),
    ({"ranges": {"eta": {"min": 1, "max": 0.5}}}, "the execution input's tuning: ranges.eta: min 1 must be below max "
                                                  "0.5"),
    ({"ranges": {"learning_rate": [0.1, 0.2]}}, "ranges.learning_rate: learning_rate is not tunable"),
])
def test_a_bad_execution_tuning_is_refused_before_any_work(s3, tuning_stack, tuning, message):  # noqa: F811
    with pytest.raises(errors.InvalidTuning, match=re.escape(message)):
        handler(event(dataset(s3), tuning=tuning), None)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_an_execution_tuning_on_a_stack_that_does_not_tune_is_refused(s3):  # noqa: F811
    with pytest.raises(errors.InvalidTuning, match="^the execution input sets tuning, but this stack does not tune"):
        handler(event(dataset(s3), tuning={"maxJobs": 3}), None)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_an_objective_the_problem_cannot_report_is_refused_before_any_job(s3, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TUNING", json.dumps({**TUNING, "objective": "validation:rmse"}))
    with pytest.raises(errors.InvalidTuning, match=re.escape(
            "the tuning objective 'validation:rmse' is not a metric a binary run reports (objective binary:logistic); "
            "it can tune on validation:<logloss, auc, aucpr, error, map, ndcg>")):
        handler(event(dataset(s3)), None)


def test_without_tuning_the_plan_has_none(s3):  # noqa: F811
    plan = handler(event(dataset(s3)), None)
    assert "tuning" not in plan and "tuningName" not in plan
