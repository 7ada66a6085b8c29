"""One focused test per hook of sagestep/local/moto_adapter.py: after a moto upgrade, the failing test
names the hook that broke."""
import json
import time
from contextlib import ExitStack

import boto3
import pytest
from botocore.exceptions import ClientError

from sagestep.local import moto_adapter
from sagestep.runner import follow

REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/test"


@pytest.fixture
def stack(monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    with ExitStack() as hooks:
        moto_adapter.emulator(hooks)
        yield hooks


def client(service):
    return boto3.client(service, region_name=REGION)


def run(definition: dict, name: str = "run") -> dict:
    sfn = client("stepfunctions")
    arn = sfn.create_state_machine(name=f"m-{name}", definition=json.dumps(definition), roleArn=ROLE)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn, name=name, input="{}")["executionArn"]
    description, _ = follow(sfn, execution, poll_seconds=0.02, timeout_seconds=30)
    return description


def lambda_function(handler_name="h"):
    client("iam").create_role(RoleName="test", AssumeRolePolicyDocument=json.dumps(
        {"Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    client("lambda").create_function(FunctionName="f", Runtime="python3.13", Role=ROLE, Handler=handler_name,
                                     Code={"ZipFile": b"PK\x05\x06" + b"\x00" * 18})
    return f"arn:aws:lambda:{REGION}:123456789012:function:f"


def invoke_task(function_arn, **extra):
    return {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke",
            "Parameters": {"FunctionName": function_arn, "Payload.$": "$"}, **extra}


def test_emulator_runs_state_machines(stack):
    description = run({"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": {"ok": 1}, "End": True}}})
    assert description["status"] == "SUCCEEDED" and json.loads(description["output"]) == {"ok": 1}


def test_run_lambdas_calls_the_handler_and_reports_its_errors_as_lambda_does(stack):
    def invoke(configuration, event):
        if event.get("fail"):
            raise LookupError("no such thing")
        if event.get("service"):
            raise moto_adapter.lambda_service_error("ServiceException", "not now")
        return {"handler": configuration["Handler"], "got": event}
    moto_adapter.run_lambdas(stack, invoke)
    arn = lambda_function("pkg.handler")
    answer = client("lambda").invoke(FunctionName=arn, Payload=json.dumps({"x": 1}))
    assert json.loads(answer["Payload"].read()) == {"handler": "pkg.handler", "got": {"x": 1}}
    failed = client("lambda").invoke(FunctionName=arn, Payload=json.dumps({"fail": True}))
    assert failed["FunctionError"] == "Unhandled"
    assert json.loads(failed["Payload"].read())["errorType"] == "LookupError"
    with pytest.raises(ClientError) as service:
        client("lambda").invoke(FunctionName=arn, Payload=json.dumps({"service": True}))
    assert service.value.response["Error"]["Code"] == "ServiceException"


def test_name_executions_gives_an_unnamed_execution_a_uuid(stack):
    moto_adapter.name_executions(stack)
    sfn = client("stepfunctions")
    arn = sfn.create_state_machine(name="m", definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}), roleArn=ROLE)["stateMachineArn"]
    name = sfn.start_execution(stateMachineArn=arn)["executionArn"].rsplit(":", 1)[1]
    assert len(name) == 36 and name.count("-") == 4


class Echo(moto_adapter.ServiceTask):
    """A request-response sagemaker integration that answers from its parameters."""

    def _get_supported_parameters(self):
        return {"ModelName"}

    def _eval_service_task(self, env, resource_runtime_part, normalised_parameters, *args, **kwargs):
        parameters = normalised_parameters
        if parameters["ModelName"] == "bad":
            raise self.failure(env, "SageMaker.AmazonSageMakerException", "refused")
        env.stack.append({"ModelArn": f"arn:model/{parameters['ModelName']}"})


@pytest.mark.parametrize("model, status, error", [("good", "SUCCEEDED", None),
                                                  ("bad", "FAILED", "SageMaker.AmazonSageMakerException")])
def test_register_services_routes_a_service_to_our_integration(stack, model, status, error):
    moto_adapter.register_services(stack, {"sagemaker": Echo})
    description = run({"StartAt": "T", "States": {"T": {
        "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createModel",
        "Parameters": {"ModelName": model}, "End": True}}}, name=model)
    assert description["status"] == status and description.get("error") == error
    if status == "SUCCEEDED":
        assert json.loads(description["output"]) == {"ModelArn": "arn:model/good"}


class Waits(moto_adapter.ServiceTask):
    """A task that runs until the interpreter ends its frame, then says whether that was its timeout."""
    seen: list[bool] = []

    def _get_supported_parameters(self):
        return {"ModelName"}

    def _eval_service_task(self, env, *args, **kwargs):
        while env.is_running():
            time.sleep(0.02)
        Waits.seen.append(moto_adapter.task_timed_out(env))
        env.stack.append({})


def test_task_timed_out_tells_a_task_s_timeout_from_a_stopped_execution(stack):
    moto_adapter.register_services(stack, {"sagemaker": Waits})
    Waits.seen.clear()

    def waiting(timeout: int) -> dict:
        return {"StartAt": "T", "States": {"T": {"Type": "Task", "Resource": "arn:aws:states:::sagemaker:createModel",
                                                  "Parameters": {"ModelName": "m"}, "TimeoutSeconds": timeout,
                                                  "End": True}}}
    assert run(waiting(1), name="timeout")["error"] == "States.Timeout"
    sfn = client("stepfunctions")
    machine = sfn.create_state_machine(name="m-stop", definition=json.dumps(waiting(60)), roleArn=ROLE)
    execution = sfn.start_execution(stateMachineArn=machine["stateMachineArn"], name="stop")["executionArn"]
    time.sleep(0.3)
    sfn.stop_execution(executionArn=execution)
    deadline = time.monotonic() + 5
    while len(Waits.seen) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert Waits.seen == [True, False]


def test_poll_sync_jobs_every_sets_the_interpreter_s_poll_delay(stack):
    from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
    moto_adapter.poll_sync_jobs_every(stack, 0.05)
    assert state_task_service_callback._DELAY_SECONDS_SYNC_CONDITION_CHECK == 0.05


def test_scale_retry_waits_scales_the_retrier_s_sleep(stack, monkeypatch):
    slept = []
    monkeypatch.setattr(time, "sleep", slept.append)
    moto_adapter.scale_retry_waits(stack, 0.01)
    from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
    retrier_decl.time.sleep(5)
    assert slept == [0.05]


def test_let_through_catch_keeps_states_all_from_catching_runtime_errors(stack):
    moto_adapter.run_lambdas(stack, lambda configuration, event: {"a": 1})
    moto_adapter.let_through_catch(stack, ("States.Runtime",))
    arn = lambda_function()
    description = run({"StartAt": "T", "States": {
        "T": invoke_task(arn, ResultSelector={"missing.$": "$.Payload.nothing"},
                         Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Caught"}], End=True),
        "Caught": {"Type": "Fail", "Error": "Caught"}}})
    assert description["status"] == "FAILED" and description["error"] == "States.Runtime"


def test_intercept_requests_answers_before_moto(stack):
    seen = []

    def check(service, operation, params):
        seen.append((service, operation))
        if params.get("ModelName") == "refused":
            return 400, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps(
                {"__type": "ValidationException", "message": "no"})
        return None
    moto_adapter.intercept_requests(stack, check)
    with pytest.raises(ClientError) as refused:
        client("sagemaker").describe_model(ModelName="refused")
    assert refused.value.response["Error"] == {"Code": "ValidationException", "Message": "no"}
    client("stepfunctions").list_state_machines()
    assert seen == [("sagemaker", "DescribeModel"), ("stepfunctions", "ListStateMachines")]


def test_sagemaker_jobs_is_the_backend_describe_renders(stack):
    """The engine puts a job's real lifecycle back on moto's record: status, reason, metrics left out."""
    sagemaker = client("sagemaker")
    sagemaker.create_training_job(
        TrainingJobName="t", RoleArn=ROLE, AlgorithmSpecification={"TrainingImage": "i", "TrainingInputMode": "File"},
        OutputDataConfig={"S3OutputPath": "s3://b/"}, StoppingCondition={"MaxRuntimeInSeconds": 60},
        ResourceConfig={"InstanceType": "ml.m5.large", "InstanceCount": 1, "VolumeSizeInGB": 1})
    job = moto_adapter.sagemaker_jobs(REGION).training_jobs["t"]
    job.training_job_status, job.failure_reason, job.final_metric_data_list = "Failed", "AlgorithmError: x", None
    described = sagemaker.describe_training_job(TrainingJobName="t")
    assert (described["TrainingJobStatus"], described["FailureReason"]) == ("Failed", "AlgorithmError: x")
    assert "FinalMetricDataList" not in described


def test_filter_logs_by_stream_prefix_keeps_other_streams_out(stack):
    moto_adapter.filter_logs_by_stream_prefix(stack)
    logs = client("logs")
    logs.create_log_group(logGroupName="g")
    for stream in ("job-a/algo-1-1", "job-b/algo-1-1"):
        logs.create_log_stream(logGroupName="g", logStreamName=stream)
        logs.put_log_events(logGroupName="g", logStreamName=stream, logEvents=[{"timestamp": int(time.time() * 1000), "message": stream}])
    found = logs.filter_log_events(logGroupName="g", logStreamNamePrefix="job-a/")["events"]
    assert [e["message"] for e in found] == ["job-a/algo-1-1"]
    assert logs.filter_log_events(logGroupName="g", logStreamNamePrefix="job-c/")["events"] == []


def test_tags_of_a_state_machine_that_does_not_exist_are_resource_not_found(stack):
    """AWS answers ResourceNotFound (API reference, ListTagsForResource); moto would answer no tags, and
    `sagestep prune` would then say "no sagestep:stack tag" instead of naming the missing state machine."""
    sfn = client("stepfunctions")
    arn = sfn.create_state_machine(name="tagged", roleArn=ROLE, tags=[{"key": "k", "value": "v"}], definition=json.dumps(
        {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}}))["stateMachineArn"]
    moto_adapter.tags_need_the_state_machine(stack)
    assert sfn.list_tags_for_resource(resourceArn=arn)["tags"] == [{"key": "k", "value": "v"}]
    with pytest.raises(ClientError) as caught:
        sfn.list_tags_for_resource(resourceArn=f"{arn}-gone")
    assert caught.value.response["Error"]["Code"] == "ResourceNotFound"


def distributed_map(child: dict, **extra) -> dict:
    """A Distributed Map over a JSON array in S3, its results written to S3."""
    return {"StartAt": "M", "States": {"M": {
        "Type": "Map",
        "ItemReader": {"Resource": "arn:aws:states:::s3:getObject", "ReaderConfig": {"InputType": "JSON"},
                       "Parameters": {"Bucket": "map-test", "Key": "items.json"}},
        "ItemProcessor": {"ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                          "StartAt": "C", "States": {"C": child}},
        "ResultWriter": {"Resource": "arn:aws:states:::s3:putObject", "Parameters": {"Bucket": "map-test", "Prefix": "out"}},
        "End": True, **extra}}}


def items_in_s3(items):
    s3 = client("s3")
    s3.create_bucket(Bucket="map-test")
    s3.put_object(Bucket="map-test", Key="items.json", Body=json.dumps(items).encode())
    return s3


def test_write_map_results_writes_each_child_s_output_and_a_manifest_listing_them(stack):
    moto_adapter.write_map_results(stack)
    s3 = items_in_s3([{"n": 1}, {"n": 2}])
    description = run(distributed_map({"Type": "Pass", "Parameters": {"double.$": "States.MathAdd($.n, $.n)"},
                                       "End": True}))
    assert description["status"] == "SUCCEEDED", description
    output = json.loads(description["output"])
    manifest = json.loads(s3.get_object(Bucket="map-test", Key=output["ResultWriterDetails"]["Key"])["Body"].read())
    assert output["ResultWriterDetails"]["Key"].startswith("out/") and manifest["DestinationBucket"] == "map-test"
    (succeeded,) = manifest["ResultFiles"]["SUCCEEDED"]
    records = json.loads(s3.get_object(Bucket="map-test", Key=succeeded["Key"])["Body"].read())
    assert sorted(json.loads(record["Output"])["double"] for record in records) == [2, 4]
    assert {record["Status"] for record in records} == {"SUCCEEDED"}


@pytest.mark.parametrize("tolerance, status", [({}, "FAILED"), ({"ToleratedFailureCount": 1}, "SUCCEEDED"),
                                               ({"ToleratedFailurePercentage": 50.0}, "SUCCEEDED")])
def test_fail_map_runs_beyond_tolerance_fails_the_map_as_aws_does(stack, tolerance, status):
    moto_adapter.fail_map_runs_beyond_tolerance(stack)
    items_in_s3([{"fail": False}, {"fail": True}])
    child = {"Type": "Choice", "Choices": [{"Variable": "$.fail", "BooleanEquals": True, "Next": "F"}], "Default": "OK"}
    definition = distributed_map(child, **tolerance)
    definition["States"]["M"]["ItemProcessor"]["States"].update(
        {"F": {"Type": "Fail", "Error": "Bad", "Cause": "bad item"}, "OK": {"Type": "Succeed"}})
    description = run(definition, name=f"t{len(tolerance)}{status}")
    assert description["status"] == status
    if status == "FAILED":
        assert description["error"] == "States.ExceedToleratedFailureThreshold"
        assert description["cause"] == "The specified tolerated failure threshold was exceeded"


def test_the_adapter_loads_moto_s_batch_helpers_without_its_ec2_model_and_batch_still_answers():
    """A second of start-up: moto's ASL interpreter needs moto.batch.utils, not moto.batch's models."""
    import subprocess
    import sys
    probe = ("import sys; import sagestep.local.moto_adapter; "
             "print([name for name in ('moto.batch', 'moto.batch.models', 'moto.ec2.models') if name in sys.modules]); "
             "import boto3; from moto import mock_aws; mock_aws().start(); "
             "print(boto3.client('batch', region_name='us-east-1').describe_compute_environments()['computeEnvironments'])")
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert result.stdout.splitlines() == ["[]", "[]"]


def test_page_execution_history_pages_by_max_results_reverse_order_and_token(stack):
    moto_adapter.page_execution_history(stack)
    description = run({"StartAt": "A", "States": {"A": {"Type": "Pass", "Next": "B"},
                                                  "B": {"Type": "Pass", "End": True}}})
    sfn, arn = client("stepfunctions"), description["executionArn"]
    ids = [e["id"] for e in sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]]
    assert ids == list(range(1, len(ids) + 1)) and len(ids) == 6
    first = sfn.get_execution_history(executionArn=arn, maxResults=4)
    rest = sfn.get_execution_history(executionArn=arn, maxResults=4, nextToken=first["nextToken"])
    assert [e["id"] for e in first["events"] + rest["events"]] == ids and "nextToken" not in rest
    newest = sfn.get_execution_history(executionArn=arn, maxResults=2, reverseOrder=True)
    assert [e["id"] for e in newest["events"]] == [6, 5] and newest["nextToken"]
    with pytest.raises(ClientError, match="InvalidToken"):
        sfn.get_execution_history(executionArn=arn, nextToken="nonsense")


def test_follow_reads_only_the_new_events_at_each_poll(stack, monkeypatch):
    """A long history is not read again at every poll: follow pages newest first and stops at what it has."""
    moto_adapter.page_execution_history(stack)
    sfn = client("stepfunctions")
    asked = []
    real = sfn._make_api_call

    def counted(operation, params):
        answer = real(operation, params)
        if operation == "GetExecutionHistory":
            asked.append(len(answer["events"]))
        return answer
    monkeypatch.setattr(sfn, "_make_api_call", counted)
    states = {f"S{n}": {"Type": "Wait", "Seconds": 1 if n in (20, 40) else 0, "Next": f"S{n + 1}"} for n in range(60)}
    states["S60"] = {"Type": "Pass", "End": True}
    arn = sfn.create_state_machine(name="long", definition=json.dumps({"StartAt": "S0", "States": states}),
                                   roleArn=ROLE)["stateMachineArn"]
    execution = sfn.start_execution(stateMachineArn=arn)["executionArn"]
    description, progress = follow(sfn, execution, poll_seconds=0.01)
    assert description["status"] == "SUCCEEDED" and len(asked) > 20
    read = sum(asked)
    whole = sfn.get_execution_history(executionArn=execution, maxResults=1000)["events"]
    assert progress.events == whole and len(whole) > 100
    assert read < 2 * len(whole) + 25 * len(asked), "a poll reads a small page of what is new, not the whole history"
