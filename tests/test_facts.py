"""What a run says of itself (sagestep/facts.py): a failed run's facts from its history, the hyperparameters in
the order a person reads them, and the round-cap note."""
import json

from sagestep.facts import hyperparameter_table, output_so_far, round_cap_note

RUN = {"rows": {"train": 7, "validation": 2, "test": 1}, "shards": 1, "ignoredColumns": [], "objective": "binary:logistic",
       "schemaUri": "s3://b/runs/x/validation/schema.json", "channels": {"train": "s3://b/runs/x/train/"},
       "hyperparameters": {"objective": "binary:logistic", "eval_metric": "auc,logloss", "num_round": "300"},
       "hyperparameterOrigins": {"objective": "problem", "eval_metric": "gate", "num_round": "default"},
       "gate": {"metric": "validation:auc", "threshold": 0.9, "maximize": True, "comparison": ">="}}
TRAINING = {"jobName": "job-train-0", "modelArtifacts": "s3://a/model.tar.gz",
            "finalMetrics": [{"MetricName": "validation:logloss", "Value": 0.4}, {"MetricName": "validation:auc", "Value": 0.8}]}


def exited(name: str, output: dict) -> list[dict]:
    return [{"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name, "input": "{}"}},
            {"type": "TaskStateExited", "stateExitedEventDetails": {"name": name, "output": json.dumps(output)}}]


def test_a_run_stopped_at_the_gate_is_told_in_its_output_s_shape():
    events = (exited("FinishPreprocess", {"run": RUN}) + exited("TrainingResult", {"run": RUN, "training": TRAINING})
              + exited("GateMissed", {"run": RUN, "training": TRAINING, "gate": {"cause": "validation:auc = 0.8"}})
              + [{"type": "FailStateEntered", "stateEnteredEventDetails": {"name": "QualityGateFailed", "input": "{}"}}])
    output = output_so_far(events)
    assert output["rows"] == RUN["rows"] and output["metrics"] == TRAINING["finalMetrics"]
    assert output["trainingJobName"] == "job-train-0" and "channels" not in output
    assert output["gate"] == {"metric": "validation:auc", "threshold": 0.9, "comparison": ">=", "value": 0.8,
                              "passed": False}


def test_a_run_that_failed_before_the_gate_did_not_reach_it_and_one_after_keeps_its_verdict():
    before = output_so_far(exited("FinishPreprocess", {"run": RUN}))
    assert "metrics" not in before and before["gate"]["passed"] is None and before["gate"]["value"] is None
    passed = {"metric": "validation:auc", "threshold": 0.9, "comparison": ">=", "value": 0.95, "passed": True}
    after = output_so_far(exited("GatePassed", {"run": RUN, "training": TRAINING, "gate": passed}))
    assert after["gate"] == passed
    no_gate = output_so_far(exited("FinishPreprocess", {"run": {**RUN, "gate": {**RUN["gate"], "metric": ""}}}))
    assert no_gate["gate"] == {"metric": None, "passed": None}
    assert output_so_far(exited("Preprocess", {"shards": {}})) == {}


def test_overrides_come_first_then_train_py_s_defaults_in_its_order():
    values = {"eta": "0.1", "num_round": "300", "objective": "binary:logistic", "max_depth": "8", "subsample": "0.5"}
    origins = {"eta": "default", "num_round": "default", "objective": "problem", "max_depth": "run",
               "subsample": "stack"}
    assert list(hyperparameter_table(values, origins).items()) == [
        ("max_depth", {"value": "8", "from": "run"}), ("subsample", {"value": "0.5", "from": "stack"}),
        ("objective", {"value": "binary:logistic", "from": "problem"}), ("num_round", {"value": "300", "from": "default"}),
        ("eta", {"value": "0.1", "from": "default"})]


def table(num_round: int, eval_metric: str) -> dict:
    return {"num_round": {"value": str(num_round), "from": "run"}, "eval_metric": {"value": eval_metric, "from": "problem"}}


def test_the_round_cap_note_needs_every_round_run_and_the_watched_metric_still_improving():
    falling, rising = [0.6, 0.5, 0.4, 0.3], [0.7, 0.8, 0.85, 0.9]
    assert round_cap_note(table(4, "logloss"), {"validation:logloss": falling}) == (
        "training stopped at the round cap (num_round=4) while validation:logloss was still improving: raise num_round")
    # auc is maximized; early stopping watches the last metric of eval_metric
    assert "validation:auc was still improving" in round_cap_note(table(4, "logloss,auc"), {"validation:auc": rising})
    assert round_cap_note(table(4, "auc,logloss"), {"validation:auc": rising, "validation:logloss": rising}) is None
    assert round_cap_note(table(4, "logloss"), {"validation:logloss": [0.6, 0.3, 0.4, 0.3]}) is None   # no better
    assert round_cap_note(table(5, "logloss"), {"validation:logloss": falling}) is None     # early stopping ended it
    assert round_cap_note(None, {"validation:logloss": falling}) is None
