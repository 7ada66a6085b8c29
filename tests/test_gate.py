"""The quality gate on the embedded engine: the exact states, on real training metrics. A model that
misses the threshold in its metric's direction ends the run before any model or prediction exists."""
import json
import re

import pytest

from sagestep import ROOT
from sagestep.local import sagemaker_task
from sagestep.local.engine import LocalEngine
from sagestep.runner import follow, result_of
from sagestep.synth import synthesize

IRIS = ROOT / "examples/iris.csv"
# Iris reports validation:mlogloss (a loss, about 0.013) and, asked for, validation:auc (a score, about 1).
WITH_AUC = {"eval_metric": "mlogloss,auc"}


@pytest.fixture(scope="module")
def engine():
    with LocalEngine(synthesize("dev", {})) as running:
        running.iris = running.upload_dataset(IRIS)
        yield running


def run(engine, name, **gate):
    sfn = engine.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name=name, input=json.dumps(
        {"datasetUri": engine.iris, "labelColumn": "species", **gate}))["executionArn"]
    description, progress = follow(sfn, arn, timeout_seconds=180)
    return description, progress, result_of(description, progress)


def made_by(engine, name):
    """The models and transform jobs an execution created (their names start with its run name)."""
    sagemaker = engine.client("sagemaker")
    models = [m["ModelName"] for m in sagemaker.list_models()["Models"] if f"--{name}-" in m["ModelName"]]
    jobs = [j["TransformJobName"] for j in sagemaker.list_transform_jobs()["TransformJobSummaries"]
            if f"--{name}-" in j["TransformJobName"]]
    return models + jobs


@pytest.mark.parametrize("name, gate, comparison", [
    ("loss-under", {"qualityMetric": "validation:mlogloss", "qualityThreshold": 0.5}, "<="),
    # No eval_metric: the preprocess step adds auc to it, before mlogloss (which early stopping keeps watching).
    ("score-over", {"qualityMetric": "validation:auc", "qualityThreshold": 0.9}, ">="),
])
def test_a_model_that_reaches_the_threshold_in_its_direction_passes(engine, name, gate, comparison):
    description, progress, result = run(engine, name, **gate)
    assert description["status"] == "SUCCEEDED", result
    output = json.loads(description["output"])
    # The execution's own output carries the evaluation, with a small confusion matrix.
    assert output["evaluation"]["confusionMatrix"]["classes"] == ["setosa", "versicolor", "virginica"]
    passed = output["gate"]
    assert passed == {"metric": gate["qualityMetric"], "threshold": gate["qualityThreshold"], "comparison": comparison,
                      "value": result["metrics"][gate["qualityMetric"]], "passed": True}
    assert "GatePassed" in [s.name for s in progress.states] and len(made_by(engine, name)) == 2
    assert output["hyperparameters"]["eval_metric"] == ("mlogloss" if name == "loss-under" else "auc,mlogloss")
    # The Map's iterations are not the run's states: progress shows the Map itself, ended.
    names = [s.name for s in progress.states]
    assert "IsGateMetric" not in names and progress.states[names.index("FindGateMetric")].status == "SUCCEEDED"


@pytest.mark.parametrize("name, gate, cause", [
    # a loss must be below: 0.013 is not at most 0.001
    ("loss-over", {"qualityMetric": "validation:mlogloss", "qualityThreshold": 0.001},
     r"validation:mlogloss = 0\.01\d+, needs <= 0\.001"),
    # a score must be above: no AUC is at least 1.5
    ("score-under", {"qualityMetric": "validation:auc", "qualityThreshold": 1.5, "hyperparameters": WITH_AUC},
     r"validation:auc = (1\.0|0\.9\d*), needs >= 1\.5"),
])
def test_a_model_that_misses_the_threshold_ends_the_run_before_any_model(engine, name, gate, cause):
    description, progress, result = run(engine, name, **gate)
    assert description["status"] == "FAILED"
    assert (result["error"], result["failedState"]) == ("QualityGateFailed", "QualityGateFailed")
    assert re.fullmatch(cause, result["cause"]), result["cause"]
    assert made_by(engine, name) == [], "no model is created and no prediction runs"
    assert "CreateModel" not in [s.name for s in progress.states]


def test_a_metric_that_was_not_scraped_fails_the_gate_saying_so(engine, monkeypatch):
    monkeypatch.setattr(sagemaker_task, "final_metrics", lambda request, lines: None)
    description, _, result = run(engine, "unscraped", qualityMetric="validation:mlogloss", qualityThreshold=0.5)
    assert description["status"] == "FAILED" and result["failedState"] == "QualityGateFailed"
    assert result["error"] == "QualityGateFailed"
    assert result["cause"] == ("validation:mlogloss was not scraped from the training log, so it cannot be shown "
                               "to be <= 0.5")
    assert made_by(engine, "unscraped") == []


def test_a_metric_the_objective_never_reports_is_refused_before_training(engine):
    description, progress, result = run(engine, "mismatch", qualityMetric="validation:rmse", qualityThreshold=1)
    # refused where the plan is made, before any item is split
    assert (result["error"], result["failedState"]) == ("InvalidQualityGate", "MergeProfiles")
    assert result["cause"] == ("qualityMetric 'validation:rmse' is not a metric a multiclass run reports (objective "
                               "multi:softprob); it can gate on validation:<mlogloss, merror, auc, aucpr>")
    assert "Train" not in [s.name for s in progress.states]
    listed = engine.client("s3").list_objects_v2(Bucket=engine.data_bucket, Prefix="runs/mismatch/")
    assert "Contents" not in listed, "the split is not committed"


def test_the_stack_s_gate_applies_and_an_execution_may_turn_it_off():
    # The README's example, as written: validation:auc at 0.8, with no eval_metric.
    stack = synthesize("gated", {"sagestep:qualityMetric": "validation:auc", "sagestep:qualityThreshold": "0.8"})
    with LocalEngine(stack) as gated:
        gated.iris = gated.upload_dataset(IRIS)
        description, _, result = run(gated, "stack-gate")
        assert description["status"] == "SUCCEEDED" and json.loads(description["output"])["gate"] == {
            "metric": "validation:auc", "threshold": 0.8, "comparison": ">=", "passed": True,
            "value": json.loads(description["output"])["gate"]["value"]}
        description, progress, _ = run(gated, "no-gate", qualityMetric="")
        assert description["status"] == "SUCCEEDED"
        assert json.loads(description["output"])["gate"] == {"metric": None, "passed": None}
        assert "NoQualityGate" in [s.name for s in progress.states]
