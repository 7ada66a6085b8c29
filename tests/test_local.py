"""End to end: the CLI and the embedded engine run the synthesized stack."""
import copy
import csv
import io
import json
import os
import random
import signal
import subprocess
import sys
import tarfile
import time
from datetime import datetime, timezone

import pytest
from rich.console import Console
from sklearn.datasets import load_breast_cancer, load_diabetes

from sagestep import ROOT
from sagestep.cli import main
from sagestep.local import containers
from sagestep.local import engine as engine_module
from sagestep.local.engine import LocalEngine
from sagestep.local.run import attach_local_job_log
from sagestep.report import print_summary
from sagestep.runner import failed_job, follow, result_of
from sagestep.runs import list_executions, run_of
from sagestep.synth import synthesize
from statemachine import batch_predict
from tests.test_run_report import assert_renders, browser, open_report  # noqa: F401  (browser is a fixture)

IRIS = ROOT / "examples/iris.csv"
PREPROCESS = ["Start", "Preprocess", "ProfileShards", "MergeProfiles", "AnyItemToSplit", "SplitShards",
              "FinishPreprocess"]
ONE_READ = [state for state in PREPROCESS if state != "SplitShards"]    # numbers only: split as profiled


def write_dataset(path, loader, label="label"):
    x, y = loader(return_X_y=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([f"f{i}" for i in range(x.shape[1])] + [label])
        writer.writerows([*map(float, row), float(target) if loader is load_diabetes else int(target)]
                         for row, target in zip(x, y))
    return path


def run_cli(capsys, *args):
    code = main(["local", *map(str, args), "--json"])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


REPORT_CHARTS = {"multiclass": {"chart-confusion", "chart-roc"}, "binary": {"chart-confusion", "chart-roc"},
                 "regression": {"chart-versus", "chart-residuals"}}


def write_patients(path):
    """Breast cancer with columns that are not features: a record id, a patient code of distinct values
    (an identifier) and a noise column, the label as words."""
    x, y = load_breast_cancer(return_X_y=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["record", "patient", "noise", "f0", "f1", "f2", "diagnosis"])
        writer.writerows([f"R{i:04d}", f"P-{i * 7919 % 10007}", i % 13, *row[:3], ("benign", "malignant")[int(t)]]
                         for i, (row, t) in enumerate(zip(x, y)))
    return path, {f"R{i:04d}": ("benign", "malignant")[int(t)] for i, t in enumerate(y)}


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_pipeline_succeeds(tmp_path, capsys, browser, definition, kind):
    """Each problem type end to end through the CLI, with the options a run may carry: multiclass with a
    hyperparameter, seed and split; binary with an id that joins back and columns that are not features."""
    options = []
    if kind == "multiclass":
        dataset, label = IRIS, "species"
        options = ["--hyperparameter", "max_depth=4", "--seed", "11", "--split", "0.6,0.2,0.2"]
    elif kind == "binary":
        (dataset, truth), label = write_patients(tmp_path / "patients.csv"), "diagnosis"
        options = ["--id", "record", "--ignore", "noise"]
    else:
        dataset, label = write_dataset(tmp_path / f"{kind}.csv", load_diabetes), "label"
    code, result = run_cli(capsys, dataset, "--label", label, *options, "--out", tmp_path / "out", "--report")
    assert code == 0 and result["status"] == "SUCCEEDED", result
    assert [s["name"] for s in result["states"]] == (ONE_READ if kind == "regression" else PREPROCESS) + [
        "Train", "HasTrainingMetrics", "TrainingResult", "QualityGate", "NoQualityGate", "CreateModel", "BatchPredict",
        "Evaluate", "Summarize"]
    if kind == "multiclass":
        assert 75 <= result["rows"]["train"] <= 105 and result["rows"]["test"] >= 20, result["rows"]
    # --out receives the predictions joined with the held-out labels, the schema, the metrics and the model.
    out = tmp_path / "out"
    assert sorted(p.name for p in out.iterdir()) == ["evaluation.json", "model.tar.gz", "predictions.csv",
                                                     "report.html", "schema.json"]
    # The report of the real run, as a person sees it in chromium: every chart drawn, every state named.
    report = out / "report.html"
    assert result["report"] == str(report)
    seen = open_report(browser, report)
    assert_renders(seen, report, {"chart-states", "chart-curve-0", "chart-importance"} | REPORT_CHARTS[kind])
    assert all(name in seen["charts"]["chart-states"]["text"] for name in definition["States"])
    # The cost: each item the run billed, estimated at AWS prices from the local timings.
    cost = result["cost"]
    assert cost["estimate"] and [item["item"] for item in cost["items"]] == [
        "training", "batch transform", "preprocess Lambda", "state transitions"]
    # plan, merge, finish and evaluate (the Maps' children run in child executions, outside this history)
    assert "4 invocations at 1769 MB" in cost["items"][2]["detail"] and cost["usd"] > 0
    maps = 1 if kind == "regression" else 2           # the regression's numbers are split as they are profiled
    assert (f"not counted: the {maps} Distributed Map run(s)' child executions (one Lambda invocation and their "
            "state transitions per work item; see docs/scaling.md)") in cost["notes"]
    with tarfile.open(result["outputs"]["modelArtifact"]) as model:
        assert {"xgboost-model.json", "schema.json"} <= set(model.getnames())
    predictions = list(csv.reader(open(result["outputs"]["predictions"])))
    assert len(predictions) == result["rows"]["test"] + 1
    metric = {"multiclass": "validation:mlogloss", "binary": "validation:logloss", "regression": "validation:rmse"}[kind]
    assert metric in result["metrics"]
    # The curve the console would plot: scraped from the job's CloudWatch log by the image's definition.
    assert set(result["curves"]) == {metric} and len(result["curves"][metric]) > 10
    assert result["curves"][metric][-1] == result["metrics"][metric]
    evaluation = result["evaluation"]
    assert evaluation == json.load(open(result["outputs"]["metrics"])) and evaluation["beatsBaseline"]
    if kind == "regression":
        assert predictions[0] == ["label", "predicted"]
        assert result["metrics"]["test:rmse"] < 80 and evaluation["metrics"]["r2"] > 0.2
        assert evaluation["baseline"]["metrics"]["rmse"] > result["metrics"]["test:rmse"]
    elif kind == "binary":
        assert predictions[0] == ["record", "diagnosis", "predicted", "P(benign)", "P(malignant)"]
        assert all(truth[row[0]] == row[1] for row in predictions[1:])
        schema = json.load(open(out / "schema.json"))
        assert [feature["name"] for feature in schema["features"]] == ["f0", "f1", "f2"]
        printed = Console(file=io.StringIO(), width=300)       # what the CLI prints of the same result
        print_summary(result, printed)
        assert ("left out of the features: record (--id), noise (--ignore), patient (identifier: 569 distinct "
                "values in 569 rows)") in printed.file.getvalue()
        assert "test split, " in printed.file.getvalue() and "confusion matrix" in printed.file.getvalue()
    if kind != "regression":
        classes = json.load(open(result["outputs"]["schema"]))["label"]["classes"]
        assert predictions[0][-len(classes):] == [f"P({name})" for name in classes]
        assert {row[1] for row in predictions[1:]} <= set(classes)
        assert result["metrics"]["test:accuracy"] > 0.85 and result["metrics"]["test:auc"] > 0.9
        matrix = evaluation["confusionMatrix"]["actualByPredicted"]
        assert sum(map(sum, matrix)) == result["rows"]["test"]


@pytest.fixture
def engine():
    with LocalEngine(synthesize("dev", {})) as running:
        yield running


def execute(engine, execution_input, name="e2e"):
    sfn = engine.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name=name,
                              input=json.dumps(execution_input))["executionArn"]
    return follow(sfn, arn, timeout_seconds=120)


def test_bad_dataset_fails_at_preprocess_and_starts_no_job(engine, tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,label\n1,0\n2,1\n3\n")
    description, progress = execute(engine, {"datasetUri": engine.upload_dataset(bad)})
    assert description["status"] == "FAILED" and description["error"] == "PreprocessFailed"
    assert json.loads(description["cause"])["Error"] == "MalformedRow"
    assert "row 4: expected 2 fields, found 1" in description["cause"]
    assert engine.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def write_shards(folder, rows=120):
    """Four shards, plain and gzip, one empty; 'teal' and the class 'huge' appear only in the last one."""
    import gzip
    folder.mkdir()
    shade = random.Random(3)
    for k in range(4):
        lines = ["colour,size,label"]
        for i in range(0 if k == 2 else rows):
            colour = shade.choice(["red", "blue"] + (["teal"] if k == 3 else []))
            size = shade.random() * 10
            lines.append(f"{colour},{size:.3f},{'huge' if colour == 'teal' else ('big' if size > 5 else 'small')}")
        data = ("\n".join(lines) + "\n").encode()
        (folder / f"part-{k}.csv{'.gz' if k % 2 else ''}").write_bytes(gzip.compress(data) if k % 2 else data)
    return folder


def run_objects(engine, execution_arn):
    listing = engine.client("s3").list_objects_v2(Bucket=engine.data_bucket,
                                                  Prefix=f"runs/{execution_arn.rsplit(':', 1)[1]}/")
    return sorted(item["Key"].split("/", 2)[2] for item in listing.get("Contents", []))


def test_a_folder_of_shards_runs_through_the_distributed_maps(engine, tmp_path):
    folder = write_shards(tmp_path / "clicks")
    uri = engine.upload_dataset(folder, sorted(folder.iterdir()))
    description, progress = execute(engine, {"datasetUri": uri, "labelColumn": "label"}, name="shards")
    assert description["status"] == "SUCCEEDED", description.get("cause")
    output = json.loads(description["output"])
    assert sum(output["rows"].values()) == 360 and output["evaluation"]["rows"] == output["rows"]["test"]
    keys = run_objects(engine, description["executionArn"])
    schema = json.loads(engine.client("s3").get_object(Bucket=engine.data_bucket, Key=output["schemaUri"].split(
        "/", 3)[3])["Body"].read())
    assert schema["label"]["classes"] == ["big", "huge", "small"] and schema["shards"] == 4
    assert schema["features"][0]["categories"] == ["blue", "red", "teal"]
    # one object per item with rows in each folder (shard 2 has a header only), and the Maps' results as
    # AWS's ResultWriter writes them
    assert [key for key in keys if key.startswith("train/")] == [f"train/part-0000{i}-000.csv" for i in (0, 1, 3)]
    assert [key for key in keys if key.startswith("predictions/")] == [
        f"predictions/part-0000{i}-000.csv.out" for i in (0, 1, 3)]
    manifests = [key for key in keys if key.endswith("manifest.json")]
    assert [key.split("/")[2] for key in manifests] == ["profile", "split"]
    for manifest in manifests:
        body = json.loads(engine.client("s3").get_object(Bucket=engine.data_bucket,
                                                          Key=f"runs/shards/{manifest}")["Body"].read())
        (results,) = body["ResultFiles"]["SUCCEEDED"]
        records = json.loads(engine.client("s3").get_object(Bucket=engine.data_bucket, Key=results["Key"])["Body"].read())
        assert sorted(json.loads(record["Output"])["result"]["item"] for record in records) == [0, 1, 2, 3]


def test_a_bad_shard_fails_at_preprocess_naming_it_and_leaves_nothing_of_the_run(engine, tmp_path):
    folder = write_shards(tmp_path / "clicks")
    (folder / "part-5.csv").write_text("colour,size,label\nred,1.5,big\nred,2\n")
    uri = engine.upload_dataset(folder, sorted(folder.iterdir()))
    description, progress = execute(engine, {"datasetUri": uri}, name="badshard")
    assert description["status"] == "FAILED" and description["error"] == "PreprocessFailed"
    cause = json.loads(description["cause"])
    assert cause["Error"] == "MalformedRow"
    assert "datasets/clicks/part-5.csv, row 3: expected 3 fields, found 2" in cause["Cause"]
    history = engine.client("stepfunctions").get_execution_history(executionArn=description["executionArn"],
                                                                    maxResults=1000)["events"]
    failed = [event["mapRunFailedEventDetails"] for event in history if event["type"] == "MapRunFailed"]
    assert failed == [{"error": "States.ExceedToleratedFailureThreshold",
                       "cause": "The specified tolerated failure threshold was exceeded"}]
    assert run_objects(engine, description["executionArn"]) == [], "nothing of the run is left"
    assert engine.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []
    # Where it failed is the Map, not DiscardPreprocess, the clean-up that re-raised what the Map caught.
    states = {state.name: state.status for state in progress.states}
    assert states["ProfileShards"] == "FAILED" and result_of(description, progress)["failedState"] == "ProfileShards"
    sfn = engine.client("stepfunctions")
    [execution] = [e for e in list_executions(sfn, engine.state_machine_arn, 1000) if e["name"] == "badshard"]
    assert run_of(sfn, execution, datetime.now(timezone.utc))["failedState"] == "ProfileShards", "sagestep runs"


def test_a_bad_shard_is_reported_at_the_map_that_failed_in_json_the_failure_line_and_the_report(tmp_path, capsys):
    folder = write_shards(tmp_path / "clicks")
    (folder / "part-5.csv").write_text("colour,size,label\nred,1.5,big\nred,2\n")
    code, result = run_cli(capsys, folder, "--out", tmp_path / "out", "--report")
    assert code == 1 and (result["error"], result["failedState"]) == ("MalformedRow", "ProfileShards"), result
    printed = Console(file=io.StringIO(), width=300)
    print_summary(result, printed)
    assert printed.file.getvalue().startswith("FAILED at ProfileShards: MalformedRow: ")
    report = (tmp_path / "out/report.html").read_text()
    assert "Failed at ProfileShards</h2>" in report and "at DiscardPreprocess" not in report


def test_two_training_hosts_and_two_transform_instances_run_the_same_pipeline(tmp_path):
    """The train split dealt to one object per host and shared with ShardedByS3Key; the test features to
    one object per instance, whose predictions the Evaluate step pairs with their labels object by object."""
    dataset = write_dataset(tmp_path / "breast.csv", load_breast_cancer)
    with LocalEngine(synthesize("wide", {"trainingInstanceCount": 2, "transformInstanceCount": 2})) as wide:
        description, _ = execute(wide, {"datasetUri": wide.upload_dataset(dataset)}, name="wide")
        keys = run_objects(wide, description["executionArn"])
        training = wide.client("sagemaker").describe_training_job(
            TrainingJobName=json.loads(description["output"])["trainingJobName"])
    assert description["status"] == "SUCCEEDED", description.get("cause")
    output = json.loads(description["output"])
    assert training["ResourceConfig"]["InstanceCount"] == 2
    assert [key for key in keys if key.startswith("train/")] == ["train/part-00000-000.csv", "train/part-00000-001.csv"]
    assert [key for key in keys if key.startswith("predictions/")] == [
        "predictions/part-00000-000.csv.out", "predictions/part-00000-001.csv.out"]
    evaluation = output["evaluation"]
    assert evaluation["rows"] == output["rows"]["test"] and evaluation["metrics"]["accuracy"] > 0.9


def test_the_preprocess_lambdas_run_concurrently_up_to_the_stack_s_concurrency(tmp_path, monkeypatch):
    from preprocess import handler as handler_module
    running, most = [], []
    original = handler_module.Run.profile

    def profile(self, event):
        running.append(1)
        most.append(len(running))
        time.sleep(0.3)
        try:
            return original(self, event)
        finally:
            running.pop()
    monkeypatch.setattr(handler_module.Run, "profile", profile)
    folder = tmp_path / "many"
    folder.mkdir()
    for k in range(6):
        (folder / f"p{k}.csv").write_text("a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(20)))
    with LocalEngine(synthesize("conc", {"preprocessConcurrency": 3})) as running_engine:
        uri = running_engine.upload_dataset(folder, sorted(folder.iterdir()))
        description, _ = execute(running_engine, {"datasetUri": uri}, name="conc")
    assert description["status"] == "SUCCEEDED", description.get("cause")
    assert len(most) == 6 and max(most) == 3


def test_failing_training_fails_at_train_with_the_reason(engine, tmp_path):
    uri = engine.upload_dataset(IRIS)
    description, progress = execute(engine, {"datasetUri": uri, "labelColumn": "species",
                                             "hyperparameters": {"monotone_constraints": "(1,1,1,1,1,1,1,1,1)"}})
    assert description["error"] == "TrainFailed"
    caught = json.loads(description["cause"])
    assert caught["Error"] == "States.TaskFailed"
    job = json.loads(caught["Cause"])
    assert job["TrainingJobStatus"] == "Failed"
    # Nine constraints for four features: the check passes it (free text), XGBoost refuses it when it trains.
    # As on AWS: the launcher overwrites the failure file with the command; the script's reason is in the log.
    assert job["FailureReason"].startswith('AlgorithmError: ExecuteUserScriptError:\nCommand "')
    assert " -m train " in job["FailureReason"] and job["FailureReason"].endswith(", exit code: 1")
    log = engine.client("logs").filter_log_events(logGroupName="/aws/sagemaker/TrainingJobs")["events"]
    assert any(e["message"].startswith("TrainingError: XGBoost rejected the training") for e in log)
    jobs = engine.client("sagemaker").list_training_jobs()["TrainingJobSummaries"]
    assert [j["TrainingJobStatus"] for j in jobs] == ["Failed"]
    # A local run points at a file of the job's whole log, not at a CloudWatch console it does not have.
    result = result_of(description, progress)
    attach_local_job_log(result, engine.client("logs"), tmp_path)
    job = result["failedJob"]
    assert "console" not in job and job["log"] == str(tmp_path / f"{job['name']}.log")
    assert "\nTrainingError: XGBoost rejected the training" in (tmp_path / f"{job['name']}.log").read_text()
    printed = Console(file=io.StringIO(), width=300)
    print_summary(result, printed)
    assert f"log: {job['log']}" in printed.file.getvalue() and "console.aws" not in printed.file.getvalue()
    assert result["failedState"] == "Train" and printed.file.getvalue().startswith("FAILED at Train: "), "its own state"


def test_invalid_sagemaker_request_fails_like_sagemaker(engine, monkeypatch):
    from sagestep.local import sagemaker_task
    original = sagemaker_task.SageMakerLocal._eval_parameters

    def break_volume(self, env):
        parameters = original(self, env)
        if "ResourceConfig" in parameters:
            parameters["ResourceConfig"]["VolumeSizeInGB"] = "thirty"
        return parameters
    monkeypatch.setattr(sagemaker_task.SageMakerLocal, "_eval_parameters", break_volume)
    description, _ = execute(engine, {"datasetUri": engine.upload_dataset(IRIS), "labelColumn": "species"})
    caught = json.loads(description["cause"])
    assert description["error"] == "TrainFailed" and caught["Error"] == "SageMaker.AmazonSageMakerException"
    assert "Invalid type for parameter ResourceConfig.VolumeSizeInGB" in caught["Cause"]
    history = engine.client("stepfunctions").get_execution_history(executionArn=description["executionArn"], maxResults=1000)
    failed = [e for e in history["events"] if e["type"] == "TaskFailed"]
    assert len(failed) == 1, "a .sync job step retries nothing (R7): caught at once"
    assert failed_job(description["cause"]) is None, "a refused request created no job, so no log to show"
    assert engine.client("sagemaker").list_training_jobs()["TrainingJobSummaries"] == []


def test_transient_lambda_error_is_retried(monkeypatch):
    from sagestep.local import moto_adapter
    calls = []
    original = engine_module.invoke_handler

    def flaky(configuration, event):
        calls.append(1)
        if len(calls) == 1:
            raise moto_adapter.lambda_service_error("ServiceException", "Lambda was unable to run the function this time")
        return original(configuration, event)
    monkeypatch.setattr(engine_module, "invoke_handler", flaky)
    # The Retry waits up to 2 s (IntervalSeconds, full jitter); the engine shortens it a hundredfold.
    with LocalEngine(synthesize("dev", {}), retry_wait_factor=0.01) as engine:
        description, progress = execute(engine, {"datasetUri": engine.upload_dataset(IRIS), "labelColumn": "species"})
        history = engine.client("stepfunctions").get_execution_history(executionArn=description["executionArn"], maxResults=1000)
    # the plan twice, the profile, merge, split and finish, then Evaluate
    assert description["status"] == "SUCCEEDED" and len(calls) == 7
    failures = [e["taskFailedEventDetails"]["error"] for e in history["events"] if e["type"] == "TaskFailed"]
    assert failures == ["Lambda.ServiceException"]
    assert [state.status for state in progress.states if state.name == "Preprocess"] == ["SUCCEEDED"], "retried"


# ---------------------------------------------------------------- mistakes a user can make

def sagestep(*args, env=None):
    return subprocess.run([sys.executable, "-m", "sagestep", *args], capture_output=True, text=True, cwd=ROOT,
                          env={**os.environ, **(env or {})})


def test_failed_run_exits_1_with_the_error(tmp_path, capsys):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    code, result = run_cli(capsys, bad)
    assert code == 1 and result["status"] == "FAILED"
    assert result["error"] == "MissingLabelColumn" and "set --label to one of: a, b" in result["cause"]
    assert result["failedState"] == "Preprocess"


def test_a_column_flag_naming_no_column_is_reported_as_the_flag(tmp_path, capsys):
    code, result = run_cli(capsys, IRIS, "--label", "species", "--ignore", "petal_lenght")
    assert code == 1 and result["error"] == "UnknownColumn" and result["failedState"] == "Preprocess"
    assert result["cause"].startswith("--ignore 'petal_lenght' is not a column; columns: sepal_length")


def test_an_out_folder_that_cannot_be_written_is_said_before_the_run(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    result = sagestep("local", str(IRIS), "--label", "species", "--out", str(blocker / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == f"sagestep local: --out {blocker / 'out'}: cannot write there (Not a directory)"
    assert "execution" not in result.stdout, "no run started"


def test_a_local_run_s_error_names_the_local_file(tmp_path, capsys):
    only = tmp_path / "only-label.csv"
    only.write_text("label\n" + "\n".join(str(i % 2) for i in range(20)) + "\n")
    code, result = run_cli(capsys, only)
    assert code == 1 and result["error"] == "MissingLabelColumn"
    assert result["cause"].startswith(f"{only} has only the label column") and "s3://" not in result["cause"]




def test_a_job_that_cannot_start_fails_with_the_reason(engine):
    code = next(o["inputs"]["key"] for o in engine.synthesis.of_type("aws:s3/bucketObjectv2:BucketObjectv2")
                if "training" in o["name"])
    engine.client("s3").delete_object(Bucket=engine.synthesis.outputs["artifactsBucket"], Key=code)
    description, _ = execute(engine, {"datasetUri": engine.upload_dataset(IRIS), "labelColumn": "species"})
    job = json.loads(json.loads(description["cause"])["Cause"])
    assert description["error"] == "TrainFailed" and job["TrainingJobStatus"] == "Failed"
    assert job["FailureReason"].startswith("ClientError: NoSuchKey")


def test_a_job_past_its_max_runtime_is_stopped():
    with LocalEngine(synthesize("short", {"trainingMaxRuntimeSeconds": 2})) as engine:
        description, _ = execute(engine, {"datasetUri": engine.upload_dataset(IRIS), "labelColumn": "species",
                                          "hyperparameters": {"num_round": 10_000_000, "early_stopping_rounds": 10_000_000,
                                                              "eta": 0.0001}})
    job = json.loads(json.loads(description["cause"])["Cause"])
    assert description["error"] == "TrainFailed"
    assert job["TrainingJobStatus"] == "Stopped" and job["FailureReason"].startswith("MaxRuntimeExceeded")


def test_a_transform_past_the_budget_s_time_is_stopped_and_the_run_fails_saying_so(tmp_path, monkeypatch):
    """On AWS a Task timeout leaves a .sync job running: BatchPredictStop stops it (aws-sdk:sagemaker:
    stopTransformJob). Locally the timed-out job runs on too, until that request stops it."""
    pid = tmp_path / "serve.pid"
    stalled = tmp_path / "stalled_serve.py"
    stalled.write_text(f"import os, time\nopen({str(pid)!r}, 'w').write(str(os.getpid()))\ntime.sleep(600)\n")
    monkeypatch.setattr(containers, "BATCH_SERVE", stalled)
    stack = copy.deepcopy(synthesize("budget", {"sagestep:maxRunCostUsd": "1"}))
    machine = stack.one("aws:sfn/stateMachine:StateMachine")["inputs"]
    definition = json.loads(machine["definition"])
    definition["States"]["BatchPredict"]["TimeoutSeconds"] = 2       # the budget's hours, in a test
    machine["definition"] = json.dumps(definition)
    with LocalEngine(stack) as engine:
        description, progress = execute(engine, {"datasetUri": engine.upload_dataset(IRIS), "labelColumn": "species"})
        sfn, sagemaker = engine.client("stepfunctions"), engine.client("sagemaker")
        history = sfn.get_execution_history(executionArn=description["executionArn"], maxResults=1000)["events"]
        cause = json.loads(description["cause"])
        job = sagemaker.describe_transform_job(TransformJobName=cause["failedJob"]["name"])
    assert description["status"] == "FAILED" and description["error"] == "BatchPredictFailed"
    assert cause["Error"] == "States.Timeout" and cause["Cause"] == batch_predict.TIMED_OUT_CAUSE
    assert "stopFailed" not in cause
    timed_out = [e["taskTimedOutEventDetails"] for e in history if e["type"] == "TaskTimedOut"]
    assert [(e["resource"], e["error"]) for e in timed_out] == [("createTransformJob.sync", "States.Timeout")]
    assert [s.name for s in progress.states][-4:] == ["BatchPredict", "BatchPredictStop", "BatchPredictFailureCause",
                                                      "BatchPredictFailed"]
    assert job["TransformJobStatus"] == "Stopped"
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid.read_text()), 0)


def test_ctrl_c_ends_a_local_run_cleanly_and_leaves_no_job_folder(tmp_path):
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    # As a shell starts it: SIGINT neither blocked nor ignored (a test worker's own mask or disposition, left by a
    # library that spawned helpers with it blocked, would be inherited and the interrupt never arrive).
    def as_a_shell_starts_it():
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    process = subprocess.Popen([sys.executable, "-m", "sagestep", "local", str(IRIS), "--label", "species",
                                "--out", str(tmp_path / "out")], cwd=ROOT, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env={**os.environ, "TMPDIR": str(scratch)},
                               preexec_fn=as_a_shell_starts_it)
    first = process.stdout.readline()
    assert first.startswith("execution local-") and first.endswith(" (embedded engine)\n"), "piped: not cut at 80"
    # The training job's container config, written as its processes start, says the job runs: interrupt it then, not
    # when its progress lines arrive, which a loaded machine delivers late.
    deadline = time.monotonic() + 120
    while not list(scratch.glob("*-train-0-*/algo-1/ml/input/config/resourceconfig.json")):
        assert process.poll() is None and time.monotonic() < deadline, "the run ended before its training started"
        time.sleep(0.02)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == ("sagestep local: interrupted; the local engine stopped its jobs and "
                                               "removed their folders")
    assert "Traceback" not in stderr
    assert list(scratch.iterdir()) == []


@pytest.mark.parametrize("args, fragment", [
    (("local", "x.csv", "--port", "abc"), "argument --port: 'abc' is not a port"),
    (("local", "serve", "--port", "70000"), "argument --port: '70000' is not a port"),
    (("local", "x.csv", "--hyperparameter", "max_depth"), "'max_depth' is not KEY=VALUE"),
    (("local", "x.csv", "--seed", "seven"), "argument --seed: 'seven' is not an integer"),
    (("local", "x.csv", "--split", "0.7,0.3"), "is not TRAIN,VALIDATION,TEST fractions"),
    (("local", "x.csv", "--quality-threshold", "high"), "argument --quality-threshold: 'high' is not a number"),
    (("start", "s3://b/k", "--split", "1,1,1"), "is not TRAIN,VALIDATION,TEST fractions"),
    (("start",), "the following arguments are required: DATASET_URI"),
    (("deploy",), "invalid choice: 'deploy'"),
    (("synth", "--summary", "extra"), "unrecognized arguments: extra"),
])
def test_every_command_line_mistake_is_one_line_and_exit_2(args, fragment):
    result = sagestep(*args)
    assert result.returncode == 2 and result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert fragment in line and line.startswith("sagestep")


def test_run_options_make_the_execution_input():
    from sagestep.cli import build_parser
    from sagestep.runner import execution_input
    args = build_parser().parse_args(["start", "s3://b/k.csv", "--label", "species", "--hyperparameter", "max_depth=2",
                                      "--hyperparameter", "eta=0.3", "--seed", "7", "--split", "0.5,0.25,0.25",
                                      "--id", "key", "--ignore", "a", "--ignore", "b",
                                      "--quality-metric", "validation:auc", "--quality-threshold", "0.8"])
    assert execution_input(args.dataset_uri, args) == {
        "datasetUri": "s3://b/k.csv", "labelColumn": "species", "hyperparameters": {"max_depth": "2", "eta": "0.3"},
        "splitRatios": {"train": 0.5, "validation": 0.25, "test": 0.25}, "seed": 7, "idColumn": "key",
        "ignoreColumns": ["a", "b"], "qualityMetric": "validation:auc", "qualityThreshold": 0.8}
    assert execution_input("s3://b/k.csv", build_parser().parse_args(["start", "s3://b/k.csv", "--quality-metric", ""])) \
        == {"datasetUri": "s3://b/k.csv", "qualityMetric": ""}
    assert execution_input("s3://b/k.csv", build_parser().parse_args(["start", "s3://b/k.csv"])) == {
        "datasetUri": "s3://b/k.csv"}


def summary_of(result: dict) -> str:
    """What the CLI prints of a run's result (the lines after its progress)."""
    printed = Console(file=io.StringIO(), width=400)
    print_summary(result, printed)
    return printed.file.getvalue()


def test_hyperparameters_say_where_each_came_from_and_a_round_cap_still_improving_is_noted(
        tmp_path, capsys, monkeypatch, browser):
    """A stack's hyperparameter and a run's, in --json, the summary and the report; five rounds of iris end with
    mlogloss still falling, so training stopped at the cap, not by early stopping."""
    from sagestep.local import run as local_run
    stack = synthesize("hp", {"sagestep:hyperparameters": {"eta": 0.3}})
    monkeypatch.setattr(local_run, "synthesize_stack", lambda *args, **kwargs: stack)
    code, result = run_cli(capsys, IRIS, "--label", "species", "--hyperparameter", "max_depth=3",
                           "--hyperparameter", "num_round=5", "--out", tmp_path / "out", "--report")
    assert code == 0, result
    table = result["hyperparameters"]
    assert list(table)[:3] == ["max_depth", "num_round", "eta"]         # the run's, then the stack's, by name
    assert table["max_depth"] == {"value": "3", "from": "run"} and table["num_round"] == {"value": "5", "from": "run"}
    assert table["eta"] == {"value": "0.3", "from": "stack"}
    assert table["objective"] == {"value": "multi:softprob", "from": "problem"}
    assert table["num_class"] == {"value": "3", "from": "problem"}
    assert {name: entry["value"] for name, entry in table.items() if entry["from"] == "default"} == {
        "early_stopping_rounds": "20", "checkpoint_interval": "10", "subsample": "1.0", "min_child_weight": "1",
        "tree_method": "hist"}
    assert len(result["curves"]["validation:mlogloss"]) == 5
    printed = summary_of(result)
    assert ("hyperparameters: max_depth=3 (run), num_round=5 (run), eta=0.3 (stack), eval_metric=mlogloss (problem), "
            "num_class=3 (problem), objective=multi:softprob (problem)\n") in printed
    assert ("  defaults: early_stopping_rounds=20, checkpoint_interval=10, subsample=1.0, min_child_weight=1, "
            "tree_method=hist\n") in printed
    note = ("training stopped at the round cap (num_round=5) while validation:mlogloss was still improving: "
            "raise num_round")
    assert f"note: {note}" in printed
    seen = open_report(browser, tmp_path / "out/report.html")
    assert note in seen["text"]
    assert "max_depth\t3\trun" in seen["text"] and "eta\t0.3\tstack" in seen["text"]
    assert "tree_method\thist\tdefault" in seen["text"]
    # No gate on this run: no verdict in the header, and the facts say so.
    assert "no quality gate on this run" in seen["text"] and "quality gate not reached" not in seen["text"]


def test_a_run_stopped_at_the_gate_shows_what_it_trained_on_and_how_training_went(tmp_path, capsys, browser):
    code, result = run_cli(capsys, IRIS, "--label", "species", "--quality-metric", "validation:auc",
                           "--quality-threshold", "1.5", "--out", tmp_path / "out", "--report")
    assert code == 1 and result["failedState"] == "QualityGateFailed", result
    assert sum(result["rows"].values()) == 150 and result["ignoredColumns"] == []
    auc = result["metrics"]["validation:auc"]
    assert set(result["metrics"]) == {"validation:auc", "validation:mlogloss"}
    assert result["gate"] == {"metric": "validation:auc", "threshold": 1.5, "comparison": ">=", "value": auc,
                              "passed": False}
    # The gate's metric is added to eval_metric before the last one, which early stopping watches.
    assert result["hyperparameters"]["eval_metric"] == {"value": "auc,mlogloss", "from": "gate"}
    assert len(result["curves"]["validation:mlogloss"]) > 10
    printed = summary_of(result)
    assert printed.startswith("FAILED at QualityGateFailed: QualityGateFailed: validation:auc = ")
    assert f"before it stopped: rows {result['rows']}" in printed and "validation:mlogloss" in printed
    assert "eval_metric=auc,mlogloss (gate)" in printed
    seen = open_report(browser, tmp_path / "out/report.html")
    rows = result["rows"]
    assert f"rows\ttrain {rows['train']} · validation {rows['validation']} · test {rows['test']}" in seen["text"]
    assert "problem\tmulticlass" in seen["text"] and "label\tspecies (3 classes" in seen["text"]
    assert f"validation:auc {auc:.4f}" in seen["text"] and "eval_metric\tauc,mlogloss\tgate" in seen["text"]
    assert f"quality gate failed: validation:auc {auc:.4f}, needs ≥ 1.5" in seen["text"]
    assert "batch transform\tnone: the run ended at QualityGateFailed" in seen["text"]
    data = seen["text"].split("\nData\n", 1)[1].split("\nJobs\n", 1)[0]
    assert "not in this record" not in data
