"""`sagestep runs` against `sagestep local serve`: the real path a user takes (a subprocess with
AWS_ENDPOINT_URL), on three executions of the served stack, one of them failed."""
import json
import subprocess
import sys
import time
from datetime import datetime, timezone

import pytest

from sagestep import ROOT
from sagestep.cli import main
from sagestep.runner import failed_state, follow, progress_of
from sagestep.runs import duration, final_metric, metric_so_far
from tests.test_local import IRIS
from sagestep.checks import free_port
from tests.test_served import client, served  # noqa: F401  (served is a fixture)


def sagestep_runs(env, *args):
    return subprocess.run([sys.executable, "-m", "sagestep", "runs", *args], capture_output=True, text=True,
                          cwd=ROOT, env=env, timeout=60)


def one_line_error(capsys, args, fragment):
    assert main(["runs", *args]) == 2
    out, err = capsys.readouterr()
    assert fragment in err and len(err.strip().splitlines()) == 1 and not out, err
    assert "Traceback" not in err


def test_runs_lists_the_served_stack_s_executions(served, monkeypatch, capsys):
    ready, env = served
    arn = ready["stateMachineArn"]
    env = {**env, "SAGESTEP_STATE_MACHINE_ARN": arn}      # as `sagestep local serve`'s export lines set it
    # A stack with no executions yet: one line, exit 0.
    empty = sagestep_runs(env)
    assert empty.returncode == 0 and empty.stdout.strip() == f"no executions of {arn} yet", empty.stdout + empty.stderr

    s3, sfn = client(served, "s3"), client(served, "stepfunctions")
    s3.upload_file(str(IRIS), ready["dataBucket"], "datasets/iris.csv")
    dataset = f"s3://{ready['dataBucket']}/datasets/iris.csv"
    inputs = {"first": {"datasetUri": dataset, "labelColumn": "species"},
              "broken": {"datasetUri": dataset, "labelColumn": "no-such-column"},      # fails at Preprocess
              "third": {"datasetUri": dataset, "labelColumn": "species"}}
    started = {}
    for name, payload in inputs.items():
        started[name] = sfn.start_execution(stateMachineArn=arn, name=name, input=json.dumps(payload))["executionArn"]
        time.sleep(0.05)                       # distinct start times: the order is the test's

    # While two of them train: RUNNING, the time so far, nothing more read (in process, as `main` runs it).
    for key in ("AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                "SAGESTEP_STATE_MACHINE_ARN"):
        monkeypatch.setenv(key, env[key])
    assert main(["runs", "--json"]) == 0
    running = {run["name"]: run for run in json.loads(capsys.readouterr().out)["runs"]}
    for name in ("first", "third"):
        assert running[name]["status"] == "RUNNING" and running[name]["seconds"] >= 0, running
        assert running[name]["metric"] is None and running[name]["failedState"] is None

    descriptions = {name: follow(sfn, execution, timeout_seconds=120)[0] for name, execution in started.items()}
    assert [d["status"] for d in descriptions.values()] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]

    listed = sagestep_runs(env, "--json")
    assert listed.returncode == 0, listed.stderr
    report = json.loads(listed.stdout)
    assert report["stateMachineArn"] == arn
    runs = report["runs"]
    assert [run["name"] for run in runs] == ["third", "broken", "first"], "newest first"
    assert [run["status"] for run in runs] == ["SUCCEEDED", "FAILED", "SUCCEEDED"]
    assert [run["executionArn"] for run in runs] == [started[name] for name in ("third", "broken", "first")]
    for run in runs:
        assert set(run) == {"name", "executionArn", "status", "start", "seconds", "metric", "failedState"}
        description = descriptions[run["name"]]
        assert run["start"] == description["startDate"].astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
        assert abs(run["seconds"] - (description["stopDate"] - description["startDate"]).total_seconds()) < 0.01
    for run in (runs[0], runs[2]):
        expected = {m["MetricName"]: m["Value"] for m in json.loads(descriptions[run["name"]]["output"])["metrics"]}
        assert run["metric"]["name"] == "validation:mlogloss" and isinstance(run["metric"]["value"], float)
        assert run["metric"]["value"] == expected["validation:mlogloss"] and run["failedState"] is None
    assert runs[1]["failedState"] == "Preprocess" and runs[1]["metric"] is None, "failed before training"

    assert main(["runs", "--json", "--last", "2"]) == 0          # in process from here: the env is set
    assert [run["name"] for run in json.loads(capsys.readouterr().out)["runs"]] == ["third", "broken"]

    table = sagestep_runs(env)                 # piped: the table at its full width, no row cut
    assert table.returncode == 0 and not table.stderr, table.stderr
    assert "Traceback" not in table.stdout
    rows = {line.split()[0]: line for line in table.stdout.splitlines() if line.split()[:1] in (
        ["first"], ["broken"], ["third"])}
    assert list(rows) == ["third", "broken", "first"], table.stdout
    assert "SUCCEEDED" in rows["third"] and "validation:mlogloss" in rows["third"]
    assert f"{runs[0]['metric']['value']:.4f}" in rows["third"]
    assert "FAILED" in rows["broken"] and "Preprocess" in rows["broken"]
    assert runs[1]["start"][:10] in table.stdout and "newest first" in table.stdout

    # Mistakes: one line on stderr, exit 2, like `start`.
    one_line_error(capsys, ["--state-machine-arn", "garbage"], "'garbage' is not a state machine ARN")
    one_line_error(capsys, ["--state-machine-arn", arn.rsplit(":", 1)[0] + ":nope"], "StateMachineDoesNotExist")
    monkeypatch.setenv("AWS_ENDPOINT_URL", f"http://127.0.0.1:{free_port('127.0.0.1', 0)}")
    one_line_error(capsys, [], "cannot reach Step Functions")
    with pytest.raises(SystemExit) as exit_code:
        main(["runs", "--last", "1001"])
    assert exit_code.value.code == 2
    assert "argument --last: '1001' is not a count from 1 to 1000" in capsys.readouterr().err


def test_the_metric_shown_and_the_duration():
    metrics = [{"MetricName": "validation:mlogloss", "Value": 0.2}, {"MetricName": "train:mlogloss", "Value": 0.1},
               {"MetricName": "validation:merror", "Value": 0.05}]
    assert final_metric(metrics) == {"name": "validation:merror", "value": 0.05}, "the first validation metric by name"
    assert final_metric(metrics, "validation:mlogloss") == {"name": "validation:mlogloss", "value": 0.2}, "the gate's"
    assert final_metric([{"MetricName": "train:rmse", "Value": 3}]) == {"name": "train:rmse", "value": 3.0}
    assert final_metric([]) is None and final_metric(None) is None
    assert [duration(s) for s in (6.04, 192, 3725)] == ["6.0 s", "3 min 12 s", "1 h 02 min"]


def history(*steps):
    """A history of states entered and exited (name, output or None for a state never exited), then the end."""
    events = []
    for name, output in steps:
        events.append({"type": "PassStateEntered", "timestamp": T0, "stateEnteredEventDetails": {"name": name}})
        if output is not None:
            events.append({"type": "PassStateExited", "timestamp": T0,
                           "stateExitedEventDetails": {"name": name, "output": json.dumps(output)}})
    return events


T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
TRAINED = {"run": {"gate": {"metric": "validation:auc"}},
           "training": {"finalMetrics": [{"MetricName": "validation:logloss", "Value": 0.3},
                                         {"MetricName": "validation:auc", "Value": 0.71}]}}


def test_a_run_that_failed_after_training_shows_its_metric_and_where_it_ended():
    """A quality gate that says no: the metric the gate judged, from the history, and the Fail state, as
    `local` and `start` name it."""
    events = history(("Train", {}), ("TrainingResult", TRAINED), ("GateVerdict", TRAINED), ("QualityGateFailed", None))
    events.append({"type": "ExecutionFailed", "timestamp": T0,
                   "executionFailedEventDetails": {"error": "QualityGateFailed", "cause": "validation:auc = 0.71"}})
    assert failed_state(progress_of(events).states) == "QualityGateFailed"
    assert metric_so_far(events) == {"name": "validation:auc", "value": 0.71}
    # Timed out (or stopped) in the middle of training: the state it was in; no metric yet.
    stuck = history(("Preprocess", {"run": {}}), ("Train", None))
    stuck.append({"type": "ExecutionTimedOut", "timestamp": T0})
    assert failed_state(progress_of(stuck).states) == "Train"
    assert metric_so_far(stuck) is None


def test_a_failure_caught_into_a_clean_up_that_re_raises_is_where_the_run_failed():
    """A bad shard: the Distributed Map fails (MapRunFailed, MapStateFailed), its Catch runs DiscardPreprocess,
    which fails with the shard's error into PreprocessFailed. The run failed at the Map."""
    events = history(("Preprocess", {}))
    events += [{"type": "MapStateEntered", "timestamp": T0, "stateEnteredEventDetails": {"name": "ProfileShards"}},
               {"type": "MapRunFailed", "timestamp": T0, "mapRunFailedEventDetails": {
                   "error": "States.ExceedToleratedFailureThreshold", "cause": "threshold exceeded"}},
               {"type": "MapStateFailed", "timestamp": T0},
               {"type": "MapStateExited", "timestamp": T0, "stateExitedEventDetails": {"name": "ProfileShards"}},
               {"type": "TaskStateEntered", "timestamp": T0, "stateEnteredEventDetails": {"name": "DiscardPreprocess"}},
               {"type": "TaskFailed", "timestamp": T0,
                "taskFailedEventDetails": {"error": "MalformedRow", "cause": "row 3"}},
               {"type": "TaskStateExited", "timestamp": T0, "stateExitedEventDetails": {"name": "DiscardPreprocess"}},
               {"type": "FailStateEntered", "timestamp": T0, "stateEnteredEventDetails": {"name": "PreprocessFailed"}},
               {"type": "ExecutionFailed", "timestamp": T0,
                "executionFailedEventDetails": {"error": "PreprocessFailed"}}]
    progress = progress_of(events)
    assert [(state.name, state.status) for state in progress.states] == [
        ("Preprocess", "SUCCEEDED"), ("ProfileShards", "FAILED"), ("DiscardPreprocess", "FAILED"),
        ("PreprocessFailed", "FAILED")]
    assert failed_state(progress.states) == "ProfileShards"


def test_a_failure_a_retry_overcame_is_not_where_the_run_failed():
    events = [{"type": "TaskStateEntered", "timestamp": T0, "stateEnteredEventDetails": {"name": "Preprocess"}},
              {"type": "TaskScheduled", "timestamp": T0},
              {"type": "TaskFailed", "timestamp": T0, "taskFailedEventDetails": {"error": "Lambda.ServiceException"}},
              {"type": "TaskScheduled", "timestamp": T0},
              {"type": "TaskSucceeded", "timestamp": T0},
              {"type": "TaskStateExited", "timestamp": T0, "stateExitedEventDetails": {"name": "Preprocess"}},
              *history(("Train", {}), ("QualityGateFailed", None)),
              {"type": "ExecutionFailed", "timestamp": T0,
               "executionFailedEventDetails": {"error": "QualityGateFailed"}}]
    assert failed_state(progress_of(events).states) == "QualityGateFailed"


def test_every_catch_leads_only_through_a_clean_up_to_a_fail_state(definition):
    """failed_state takes a run's first failure for where it failed: that holds while no Catch leads back onto
    a path that goes on (a caught failure the run recovered from would not be where it failed)."""
    states = definition["States"]
    caught = [(name, catch["Next"]) for name, state in states.items() for catch in state.get("Catch", [])]
    assert caught
    for name, target in caught:
        path = []
        while states[target]["Type"] != "Fail":
            assert states[target]["Type"] in ("Task", "Pass") and "End" not in states[target], (name, target)
            path.append(target)
            target = states[target]["Next"]
        assert len(path) <= 1, (name, path)
