"""The synthesized stack on moto, with the hooks that make its state machine run locally.

The hooks (moto_adapter.py): Lambda invokes run the function's Python handler in-process with its
environment, what it prints going to the function's log group (FunctionOutput); the interpreter's
sagemaker service runs jobs locally (sagemaker_task.py); AWS's server-side request rules answer every
SageMaker and Step Functions request (aws_rules.py); States.ALL lets States.Runtime and
States.DataLimitExceeded through, as on AWS ("Error handling in Step Functions": those end the
execution); StartExecution without a name gets a UUID. A state machine is checked (statemachine.check)
before it is created, for what AWS rejects at CreateStateMachine.
"""
from __future__ import annotations

import importlib
import io
import json
import os
import sys
import threading
import time
import uuid
import zipfile
from contextlib import ExitStack, contextmanager, nullcontext
from pathlib import Path
from unittest import mock

import boto3

from sagestep import ROOT
from sagestep.synth import Synthesis
from statemachine.check import check_definition

from . import aws_rules, moto_adapter, registry, sagemaker_task, tuning

FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}
UNCATCHABLE = ("States.Runtime", "States.DataLimitExceeded")
SYNC_POLL_SECONDS = 0.05


class InvalidDefinition(Exception):
    """The definition has problems AWS would reject at CreateStateMachine."""


class _Context:
    """What Lambda hands a handler: the time it has left."""

    def __init__(self, timeout_seconds: int):
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


class _Environments:
    """os.environ is the process's: invocations with the same function environment run side by side
    (a Distributed Map's children), one with another environment waits until they are done."""

    def __init__(self):
        self._changed = threading.Condition()
        self._current: dict[str, str] | None = None
        self._saved: dict[str, str | None] = {}
        self._active = 0

    @contextmanager
    def applied(self, variables: dict[str, str]):
        with self._changed:
            self._changed.wait_for(lambda: self._active == 0 or self._current == variables)
            if self._active == 0:
                self._saved = {name: os.environ.get(name) for name in variables}
                self._current = dict(variables)
                os.environ.update(variables)
            self._active += 1
        try:
            yield
        finally:
            with self._changed:
                self._active -= 1
                if self._active == 0:
                    for name, value in self._saved.items():
                        if value is None:
                            os.environ.pop(name, None)
                        else:
                            os.environ[name] = value
                    self._current = None
                    self._changed.notify_all()


_ENVIRONMENTS = _Environments()


class FunctionOutput:
    """sys.stdout while an engine runs: what a Lambda handler prints goes to its function's log group, a
    stream per invocation, as Lambda sends a function's stdout to CloudWatch Logs (the terminal stays the
    CLI's); what any other thread prints goes to the stream it wraps."""

    def __init__(self, stream, logs):
        self.stream, self.logs = stream, logs
        self._local = threading.local()

    def write(self, text: str) -> int:
        buffer = getattr(self._local, "buffer", None)
        return self.stream.write(text) if buffer is None else buffer.write(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)

    @contextmanager
    def installed(self):
        """sys.stdout until the engine closes; left alone if something replaced it meanwhile (pytest's capture)."""
        sys.stdout = self
        try:
            yield self
        finally:
            if sys.stdout is self:
                sys.stdout = self.stream

    @contextmanager
    def function(self, name: str):
        """The calling thread's output, while it runs the named function's handler, into that function's log."""
        self._local.buffer = buffer = io.StringIO()
        try:
            yield
        finally:
            self._local.buffer = None
            self._put(f"/aws/lambda/{name}", [line for line in buffer.getvalue().splitlines() if line])

    def _put(self, group: str, lines: list[str]) -> None:
        if not lines:
            return
        stream = f"{time.strftime('%Y/%m/%d')}/[$LATEST]{uuid.uuid4().hex}"
        self.logs.create_log_stream(logGroupName=group, logStreamName=stream)
        now = int(time.time() * 1000)
        self.logs.put_log_events(logGroupName=group, logStreamName=stream,
                                 logEvents=[{"timestamp": now, "message": line} for line in lines])


def invoke_handler(configuration: dict, event) -> object:
    """A Lambda function's Python handler, called in-process with the function's environment, what it
    prints going to the function's log; calls of the same function run concurrently, as Lambda runs them."""
    module_name, _, attribute = configuration["Handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    output = sys.stdout
    printed = output.function(configuration["FunctionName"]) if isinstance(output, FunctionOutput) else nullcontext()
    with _ENVIRONMENTS.applied(configuration.get("Environment", {}).get("Variables", {})), printed:
        return handler(event, _Context(configuration.get("Timeout", 3)))


def lambda_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sorted(files.items()):
            archive.write(ROOT / path, name)
    return buffer.getvalue()


class LocalEngine:
    """`with LocalEngine(synthesis) as engine:` the stack exists in moto and executions run."""

    def __init__(self, synthesis: Synthesis, on_line=None, retry_wait_factor: float = 1.0):
        """retry_wait_factor scales every Retry's wait (a test need not wait out IntervalSeconds)."""
        self.synthesis = synthesis
        self.region = synthesis.region
        self.on_line = on_line
        self.retry_wait_factor = retry_wait_factor
        self._stack = ExitStack()

    def __enter__(self) -> "LocalEngine":
        stack = self._stack
        stack.enter_context(mock.patch.dict(os.environ, {**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": self.region}))
        moto_adapter.emulator(stack)
        stack.enter_context(FunctionOutput(sys.stdout, self.client("logs")).installed())
        # Installed before the rules: they check a StopTransformJob request first, then it stops the job (and the
        # same for StopHyperParameterTuningJob and ListTrainingJobsForHyperParameterTuningJob, which moto lacks).
        moto_adapter.intercept_requests(stack, sagemaker_task.stop_transform_job)
        moto_adapter.intercept_requests(stack, tuning.answer)
        moto_adapter.intercept_requests(stack, registry.keep_what_is_not_sent(self.region))
        aws_rules.enforce(stack)
        moto_adapter.run_lambdas(stack, invoke_handler)
        moto_adapter.name_executions(stack)
        moto_adapter.register_services(stack, {"sagemaker": sagemaker_task.SageMakerLocal})
        moto_adapter.poll_sync_jobs_every(stack, SYNC_POLL_SECONDS)
        moto_adapter.let_through_catch(stack, UNCATCHABLE)
        moto_adapter.filter_logs_by_stream_prefix(stack)
        moto_adapter.page_execution_history(stack)
        moto_adapter.emit_status_changes(stack, self._status_changed)
        moto_adapter.deliver_events_to_sns(stack)
        moto_adapter.tags_need_the_state_machine(stack)
        moto_adapter.write_map_results(stack)
        moto_adapter.fail_map_runs_beyond_tolerance(stack)
        moto_adapter.aws_sdk_timestamps_as_text(stack)
        moto_adapter.run_tuning_jobs(stack, tuning.start_tuning)
        if self.retry_wait_factor != 1.0:
            moto_adapter.scale_retry_waits(stack, self.retry_wait_factor)
        jobs = sagemaker_task.JOBS = sagemaker_task.LocalJobs(self.region, self.on_line)
        stack.callback(setattr, sagemaker_task, "JOBS", None)
        stack.callback(jobs.stop_all)           # first, while the emulator is still up
        self.apply()
        return self

    def __exit__(self, *exc) -> bool:
        self._stack.close()
        return False

    def client(self, service: str):
        return boto3.client(service, region_name=self.region)

    def apply(self) -> None:
        """Create what Pulumi would, with the synthesized names, policies and definition."""
        synthesis = self.synthesis
        s3, iam, logs = self.client("s3"), self.client("iam"), self.client("logs")
        location = {} if self.region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": self.region}}
        for bucket in synthesis.of_type("aws:s3/bucket:Bucket"):
            s3.create_bucket(Bucket=synthesis.physical[bucket["name"]], **location)
        for obj in synthesis.of_type("aws:s3/bucketObjectv2:BucketObjectv2"):
            s3.put_object(Bucket=obj["inputs"]["bucket"], Key=obj["inputs"]["key"],
                          Body=(ROOT / obj["inputs"]["source"]["file"]).read_bytes())
        for role in synthesis.of_type("aws:iam/role:Role"):
            iam.create_role(RoleName=synthesis.physical[role["name"]],
                            AssumeRolePolicyDocument=role["inputs"]["assumeRolePolicy"])
        for policy in synthesis.of_type("aws:iam/rolePolicy:RolePolicy"):
            iam.put_role_policy(RoleName=policy["inputs"]["role"], PolicyName=policy["name"],
                                PolicyDocument=policy["inputs"]["policy"])
        for group in synthesis.of_type("aws:cloudwatch/logGroup:LogGroup"):
            logs.create_log_group(logGroupName=group["inputs"]["name"])
        for function in (f["inputs"] for f in synthesis.of_type("aws:lambda/function:Function")):
            self.client("lambda").create_function(
                FunctionName=function["name"], Runtime=function["runtime"], Role=function["role"],
                Handler=function["handler"], Timeout=int(function["timeout"]), MemorySize=int(function["memorySize"]),
                Architectures=function["architectures"],
                Environment={"Variables": function["environment"]["variables"]},
                Code={"ZipFile": lambda_zip({name: asset["file"]
                                             for name, asset in function["code"]["archive"].items()})})
        for group in (g["inputs"] for g in synthesis.of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup")):
            self.client("sagemaker").create_model_package_group(
                ModelPackageGroupName=group["modelPackageGroupName"],
                ModelPackageGroupDescription=group["modelPackageGroupDescription"])
        self._notifications()
        machine = synthesis.one("aws:sfn/stateMachine:StateMachine")["inputs"]
        problems = check_definition(json.loads(machine["definition"]))
        if problems:
            raise InvalidDefinition("; ".join(problems))
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=machine["name"], definition=machine["definition"], roleArn=machine["roleArn"],
            type=machine["type"], tags=[{"key": key, "value": value} for key, value in machine.get("tags", {}).items()]
        )["stateMachineArn"]
        self.data_bucket = synthesis.outputs["dataBucket"]

    def _notifications(self) -> None:
        """The topics with their subscriptions and policy, the rules with their targets."""
        synthesis, sns, events = self.synthesis, self.client("sns"), self.client("events")
        for topic in synthesis.of_type("aws:sns/topic:Topic"):
            sns.create_topic(Name=topic["inputs"]["name"])
        for subscription in (s["inputs"] for s in synthesis.of_type("aws:sns/topicSubscription:TopicSubscription")):
            sns.subscribe(TopicArn=subscription["topic"], Protocol=subscription["protocol"],
                          Endpoint=subscription["endpoint"])
        for policy in (p["inputs"] for p in synthesis.of_type("aws:sns/topicPolicy:TopicPolicy")):
            sns.set_topic_attributes(TopicArn=policy["arn"], AttributeName="Policy", AttributeValue=policy["policy"])
        self.notify: dict | None = None       # the rule's pattern: which events, which statuses
        for rule in (r["inputs"] for r in synthesis.of_type("aws:cloudwatch/eventRule:EventRule")):
            events.put_rule(Name=rule["name"], EventPattern=rule["eventPattern"], Description=rule["description"])
            self.notify = json.loads(rule["eventPattern"])
        for target in synthesis.of_type("aws:cloudwatch/eventTarget:EventTarget"):
            transformer = target["inputs"]["inputTransformer"]
            events.put_targets(Rule=target["inputs"]["rule"], Targets=[{
                "Id": target["name"], "Arn": target["inputs"]["arn"],
                "InputTransformer": {"InputPathsMap": transformer["inputPaths"],
                                     "InputTemplate": transformer["inputTemplate"]}}])
        self.topics = [t["inputs"]["arn"] for t in synthesis.of_type("aws:cloudwatch/eventTarget:EventTarget")]

    def _status_changed(self, detail: dict) -> None:
        """Step Functions' event when an execution ends, on the default bus, when the stack has a rule for
        such events (then the rule decides, as on AWS)."""
        if self.notify:
            self.client("events").put_events(Entries=[{
                "Source": self.notify["source"][0], "DetailType": self.notify["detail-type"][0],
                "Resources": [detail["executionArn"]], "Detail": json.dumps(detail)}])

    def notifications(self, execution_arn: str, status: str, wait_seconds: float = 2.0) -> list[str]:
        """The messages the stack's topics received about one execution that ended with status (the event
        follows the end by a moment: wait up to wait_seconds for one when the rule takes that status)."""
        expected = bool(self.notify) and status in self.notify["detail"]["status"]
        deadline = time.monotonic() + wait_seconds
        while True:
            found = [message for topic in self.topics for message in moto_adapter.published(topic)
                     if execution_arn in message]
            if found or not expected or time.monotonic() > deadline:
                return found
            time.sleep(0.05)

    def upload_dataset(self, path: Path, shards: list[Path] | None = None) -> str:
        """A file as datasets/<name>, or a folder's shards under the prefix datasets/<name>/."""
        s3 = self.client("s3")
        if shards is None:
            s3.upload_file(str(path), self.data_bucket, f"datasets/{path.name}")
            return f"s3://{self.data_bucket}/datasets/{path.name}"
        for shard in shards:
            s3.upload_file(str(shard), self.data_bucket, f"datasets/{path.name}/{shard.relative_to(path).as_posix()}")
        return f"s3://{self.data_bucket}/datasets/{path.name}/"
