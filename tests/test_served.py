"""The stack served on an AWS-compatible endpoint: real clients (boto3, the aws CLI, `sagestep start`,
`report`, `runs`) against `sagestep local serve`, and the one-line mistakes of the commands that use it."""
import json
import os
import signal
import subprocess
import sys

import boto3
import pytest
from sklearn.datasets import load_breast_cancer

from sagestep import ROOT
from sagestep.checks import free_port
from sagestep.runner import follow
from tests.test_local import IRIS, sagestep, write_dataset
from tests.test_run_report import assert_renders, browser, open_report  # noqa: F401  (browser is a fixture)


@pytest.fixture(scope="module")
def served():
    port = str(free_port("127.0.0.1", 0))
    process = subprocess.Popen([sys.executable, "-m", "sagestep", "local", "serve", "--port", port],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    ready = json.loads(process.stdout.readline())
    env = {**os.environ, "AWS_ENDPOINT_URL": ready["endpoint"], "AWS_ACCESS_KEY_ID": "local",
           "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": ready["region"]}
    yield ready, env
    process.send_signal(signal.SIGTERM)
    process.wait(timeout=20)


def client(served, service):
    ready, _ = served
    return boto3.client(service, endpoint_url=ready["endpoint"], region_name=ready["region"],
                        aws_access_key_id="local", aws_secret_access_key="local")


def test_serve_prints_nothing_per_request_unless_verbose():
    """By default the ready lines only (what the function prints goes to its log group, as on Lambda);
    --verbose adds one line per request on stderr. Both started at once: their start-up overlaps."""
    processes = [subprocess.Popen([sys.executable, "-m", "sagestep", "local", "serve", "--port",
                                   str(free_port("127.0.0.1", 0)), *flags],
                                  cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
                 for flags in ([], ["--verbose"])]
    printed = []
    for process in processes:
        ready = json.loads(process.stdout.readline())
        s3, functions, logs = (client((ready, None), service) for service in ("s3", "lambda", "logs"))
        s3.put_object(Bucket=ready["dataBucket"], Key="datasets/iris.csv", Body=IRIS.read_bytes())
        (function,) = functions.list_functions()["Functions"]
        answer = functions.invoke(FunctionName=function["FunctionName"], Payload=json.dumps({
            "action": "plan", "datasetUri": f"s3://{ready['dataBucket']}/datasets/iris.csv", "labelColumn": "species",
            "executionName": "quiet", "executionArn": "arn:aws:states:us-east-1:123456789012:execution:sm:quiet"}))
        assert "FunctionError" not in answer, answer["Payload"].read()
        logged = logs.filter_log_events(logGroupName=f"/aws/lambda/{function['FunctionName']}")["events"]
        assert [json.loads(event["message"])["action"] for event in logged] == ["plan"]
        process.kill()                          # what it printed is flushed (print(flush=True), stderr): no need to wait
        printed.append((process.stdout.read(), process.stderr.read()))
    (quiet, quiet_errors), (verbose, requests) = printed
    assert quiet_errors == "" and [line.split("=")[0] for line in quiet.splitlines()] == [
        "export AWS_ENDPOINT_URL", "export SAGESTEP_STATE_MACHINE_ARN"]
    assert len(verbose.splitlines()) == 2
    assert [line.split('"')[1].split()[0] for line in requests.splitlines()] == ["PUT", "GET", "POST", "POST"]


def test_real_clients_and_two_executions_at_once_against_the_served_stack(served, tmp_path, browser):
    """The aws CLI starts a run on breast cancer while `sagestep start --wait` runs iris: two executions at
    once, each with its own jobs and files; then `sagestep report` reads the second back."""
    ready, env = served
    bucket = ready["dataBucket"]
    aws = [str(ROOT / ".venv/bin/aws") if (ROOT / ".venv/bin/aws").exists() else "aws",
           "--endpoint-url", ready["endpoint"]]
    run = lambda *args: subprocess.run([*aws, *args], env=env, capture_output=True, text=True, check=True)  # noqa: E731
    run("s3", "cp", str(write_dataset(tmp_path / "breast.csv", load_breast_cancer)), f"s3://{bucket}/datasets/cli.csv")
    client(served, "s3").upload_file(str(IRIS), bucket, "datasets/iris.csv")
    started = json.loads(run("stepfunctions", "start-execution", "--state-machine-arn", ready["stateMachineArn"],
                             "--input", json.dumps({"datasetUri": f"s3://{bucket}/datasets/cli.csv"})).stdout)
    waiting = subprocess.Popen([sys.executable, "-m", "sagestep", "start", f"s3://{bucket}/datasets/iris.csv",
                                "--label", "species", "--wait", "--json", "--state-machine-arn",
                                ready["stateMachineArn"]], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, cwd=ROOT)
    follow(client(served, "stepfunctions"), started["executionArn"], timeout_seconds=180)    # waiting: boto3's
    description = json.loads(run("stepfunctions", "describe-execution", "--execution-arn", started["executionArn"]).stdout)
    assert description["status"] == "SUCCEEDED"
    history = json.loads(run("stepfunctions", "get-execution-history", "--execution-arn", started["executionArn"]).stdout)
    assert {"TaskSubmitted", "ExecutionSucceeded"} <= {e["type"] for e in history["events"]}
    output = json.loads(description["output"])
    job = output["trainingJobName"]
    jobs = json.loads(run("sagemaker", "list-training-jobs").stdout)["TrainingJobSummaries"]
    assert job in [j["TrainingJobName"] for j in jobs]
    detail = json.loads(run("sagemaker", "describe-training-job", "--training-job-name", job).stdout)
    assert detail["TrainingJobStatus"] == "Completed" and output["objective"] == "binary:logistic"
    # Scraped with the image's own definitions: validation:<metric> only.
    assert {m["MetricName"] for m in detail["FinalMetricDataList"]} == {"validation:logloss"}
    # The job's log, where SageMaker writes it (what `aws logs tail` reads, through FilterLogEvents).
    log = json.loads(run("logs", "filter-log-events", "--log-group-name", "/aws/sagemaker/TrainingJobs",
                         "--log-stream-name-prefix", f"{job}/").stdout)
    assert {e["logStreamName"].rsplit("-", 1)[0] for e in log["events"]} == {f"{job}/algo-1"}
    assert any(e["message"].startswith("[10]#011train-logloss:") for e in log["events"])
    # Its files are its own: its predictions, one line per held-out row.
    name = started["executionArn"].rsplit(":", 1)[1]
    body = client(served, "s3").get_object(Bucket=bucket, Key=f"runs/{name}/predictions/part-00000-000.csv.out")
    assert len(body["Body"].read().decode().splitlines()) == output["rows"]["test"]

    stdout, stderr = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, stderr
    summary = json.loads(stdout)
    assert summary["status"] == "SUCCEEDED" and summary["outputs"]["trainingJob"] not in ("", job)
    # The Evaluate step's verdict, with the confusion matrix read back from its file in S3.
    assert summary["evaluation"]["beatsBaseline"] and summary["metrics"]["test:accuracy"] > 0.85
    assert summary["evaluation"]["confusionMatrix"]["classes"] == ["setosa", "versicolor", "virginica"]
    assert summary["outputs"]["predictions"].endswith("/predictions.csv")
    # Against an endpoint there is no AWS console to link to.
    assert "console" not in summary and "trainingJobConsole" not in summary["outputs"]
    assert len(summary["curves"]["validation:mlogloss"]) > 10, "read from the served CloudWatch Logs"
    assert summary["cost"]["estimate"] and summary["cost"]["items"][0]["item"] == "training"

    # `sagestep report` reads the finished execution back from the endpoint: history, definition, jobs, files.
    report = subprocess.run([sys.executable, "-m", "sagestep", "report", summary["executionArn"], "--json",
                             "--out", str(tmp_path / "report")], env=env, capture_output=True, text=True, cwd=ROOT)
    assert report.returncode == 0, report.stderr
    written = json.loads(report.stdout)
    assert written == {"report": str(tmp_path / "report/report.html"), "status": "SUCCEEDED"}
    assert {"predictions.csv", "evaluation.json", "model.tar.gz", "report.html"} <= {
        p.name for p in (tmp_path / "report").iterdir()}
    seen = open_report(browser, tmp_path / "report/report.html")
    assert_renders(seen, tmp_path / "report/report.html", {"chart-states", "chart-confusion", "chart-roc"})
    assert summary["executionArn"].rsplit(":", 1)[1] in seen["text"] and "setosa" in seen["text"]


@pytest.mark.parametrize("args, fragment", [
    (("local", "missing.csv"), "missing.csv: no such file"),
    (("local", "README.md"), "not a CSV file"),
    (("local", "docs"), "docs: a folder with no CSV shard"),
    (("start", "s3://bucket/data.csv", "--state-machine-arn",
      "arn:aws:states:us-east-1:123456789012:stateMachine:nope"), "StateMachineDoesNotExist"),
    (("start", "data.csv"), "must be an s3://bucket/key URI"),
    (("start", "s3://bucket/data.csv", "--state-machine-arn", "garbage"), "'garbage' is not a state machine ARN"),
    (("report", "garbage"), "'garbage' is not an execution ARN"),
    (("report", "arn:aws:states:us-east-1:123456789012:execution:sagestep-dev-pipeline:nope"),
     "cannot read arn:aws:states:us-east-1:123456789012:execution:sagestep-dev-pipeline:nope: ExecutionDoesNotExist"),
])
def test_user_errors_are_one_line_without_traceback(args, fragment, served):
    result = sagestep(*args, env=served[1] if args[0] in ("start", "report") else None)
    assert result.returncode == 2, result.stdout + result.stderr
    assert fragment in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr


def test_no_deployed_stack(monkeypatch):
    result = sagestep("start", "s3://bucket/data.csv", env={"PATH": os.path.dirname(sys.executable),
                                                            "SAGESTEP_STATE_MACHINE_ARN": ""})
    assert result.returncode == 2 and "no deployed stack found" in result.stderr


def test_port_in_use(served):
    port = int(served[0]["endpoint"].rsplit(":", 1)[1])
    result = sagestep("local", "serve", "--port", str(port))
    assert result.returncode == 2 and f"cannot listen on 127.0.0.1:{port}" in result.stderr


