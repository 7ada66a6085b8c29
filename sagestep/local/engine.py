"""The synthesized stack on moto, with the hooks that make its state machine run locally.

Hook A: moto's own config turns on its ASL interpreter and its Docker-free Lambda backend.
Hook B: Lambda invokes run the function's Python handler in-process with its environment.
Hook C: the interpreter's sagemaker service runs jobs locally (sagemaker_task.py).
Hook D: a state machine is checked (statemachine.check) before moto accepts it.
And AWS's server-side request rules (aws_rules.py) answer every SageMaker and Step Functions request.
Hook E: States.ALL does not catch States.Runtime or States.DataLimitExceeded, as on AWS ("Error
handling in Step Functions": those end the execution); moto's interpreter catches them.
And StartExecution without a name gets a UUID, as on AWS.
"""
from __future__ import annotations

import importlib
import io
import json
import logging
import os
import threading
import time
import uuid
import zipfile
from contextlib import ExitStack
from pathlib import Path
from unittest import mock

import boto3
from moto import mock_aws
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback

from sagestep import ROOT
from sagestep.synth import Synthesis
from statemachine.check import check_definition

from . import aws_rules, sagemaker_task

MOTO_CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_SESSION_TOKEN": "testing"}


class InvalidDefinition(Exception):
    """The definition has problems AWS would reject at CreateStateMachine."""


class _Context:
    """What Lambda hands a handler: the time it has left."""

    def __init__(self, timeout_seconds: int):
        self._deadline = time.monotonic() + timeout_seconds
        self.function_name = ""

    def get_remaining_time_in_millis(self) -> int:
        return max(int((self._deadline - time.monotonic()) * 1000), 0)


_INVOKE_LOCK = threading.Lock()


def _invoke(backend, function_name, qualifier, body, headers, response_headers):
    """Hook B: the registered handler, with the function's environment, errors as Lambda reports them."""
    function = backend.get_function(function_name, qualifier)
    config = function.get_configuration()
    module_name, _, attribute = config["Handler"].rpartition(".")
    handler = getattr(importlib.import_module(module_name), attribute)
    variables = config.get("Environment", {}).get("Variables", {})
    with _INVOKE_LOCK, mock.patch.dict(os.environ, variables):
        try:
            result = handler(json.loads(body) if body else {}, _Context(config.get("Timeout", 3)))
        except Exception as error:  # noqa: BLE001 - becomes the function error, as on Lambda
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error),
                               "stackTrace": []}).encode()
    return json.dumps(result).encode()


def _named_execution(original):
    """StartExecution without a name gets a UUID, as on AWS (moto leaves it empty)."""
    def start_execution(self, state_machine_arn, name=None, *args, **kwargs):
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)
    return start_execution


UNCATCHABLE = ("States.Runtime", "States.DataLimitExceeded")


def _error_equals(original):
    """Hook E: a States.ALL Retry or Catch lets the uncatchable errors through."""
    def eval_body(self, env):
        error = env.stack[-1]
        if getattr(error, "error_name", None) in UNCATCHABLE and all(
                getattr(name, "error_name", None) == "States.ALL" for name in self.error_names):
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)
    return eval_body


def _service_for(original):
    def factory(service_name: str):
        return sagemaker_task.SageMakerLocal() if service_name == "sagemaker" else original(service_name)
    return factory


def lambda_zip(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, path in sorted(files.items()):
            archive.write(ROOT / path, name)
    return buffer.getvalue()


class LocalEngine:
    """`with LocalEngine(synthesis) as engine:` the stack exists in moto and executions run."""

    def __init__(self, synthesis: Synthesis, on_line=None):
        self.synthesis = synthesis
        self.region = synthesis.region
        self.on_line = on_line
        self._stack = ExitStack()

    def __enter__(self) -> "LocalEngine":
        stack = self._stack
        # moto's interpreter logs every caught task error with a stack of its parse tree; the
        # execution history already says what failed.
        interpreter_log = logging.getLogger("moto.stepfunctions.parser")
        stack.callback(interpreter_log.setLevel, interpreter_log.level)
        interpreter_log.setLevel(logging.CRITICAL)
        stack.enter_context(mock.patch.dict(os.environ, {**FAKE_CREDENTIALS, "AWS_DEFAULT_REGION": self.region}))
        stack.enter_context(mock_aws(config=MOTO_CONFIG))
        stack.enter_context(aws_rules.enforced())
        stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", _invoke))
        stack.enter_context(mock.patch.object(StepFunctionsParserBackend, "start_execution",
                                              _named_execution(StepFunctionsParserBackend.start_execution)))
        stack.enter_context(mock.patch.object(state_task_factory, "state_task_service_for",
                                              _service_for(state_task_factory.state_task_service_for)))
        stack.enter_context(mock.patch.object(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", 0.05))
        stack.enter_context(mock.patch.object(ErrorEqualsDecl, "_eval_body", _error_equals(ErrorEqualsDecl._eval_body)))
        sagemaker_task.JOBS = sagemaker_task.LocalJobs(self.region, self.on_line)
        stack.callback(setattr, sagemaker_task, "JOBS", None)
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
        for bucket in (synthesis.outputs["dataBucket"], synthesis.outputs["artifactsBucket"]):
            s3.create_bucket(Bucket=bucket)
        for obj in synthesis.of_type("aws:s3/bucketObjectv2:BucketObjectv2"):
            s3.put_object(Bucket=synthesis.outputs["artifactsBucket"], Key=obj["inputs"]["key"],
                          Body=(ROOT / obj["inputs"]["source"]["file"]).read_bytes())
        for role in synthesis.of_type("aws:iam/role:Role"):
            iam.create_role(RoleName=synthesis.physical[role["name"]],
                            AssumeRolePolicyDocument=role["inputs"]["assumeRolePolicy"])
        for policy in synthesis.of_type("aws:iam/rolePolicy:RolePolicy"):
            iam.put_role_policy(RoleName=policy["inputs"]["role"], PolicyName=policy["name"],
                                PolicyDocument=policy["inputs"]["policy"])
        for group in synthesis.of_type("aws:cloudwatch/logGroup:LogGroup"):
            logs.create_log_group(logGroupName=group["inputs"]["name"])
        function = synthesis.one("aws:lambda/function:Function")["inputs"]
        self.client("lambda").create_function(
            FunctionName=function["name"], Runtime=function["runtime"], Role=function["role"],
            Handler=function["handler"], Timeout=int(function["timeout"]), MemorySize=int(function["memorySize"]),
            Architectures=function["architectures"], Environment={"Variables": function["environment"]["variables"]},
            Code={"ZipFile": lambda_zip({name: asset["file"] for name, asset in function["code"]["archive"].items()})})
        machine = synthesis.one("aws:sfn/stateMachine:StateMachine")["inputs"]
        problems = check_definition(json.loads(machine["definition"]))
        if problems:
            raise InvalidDefinition("; ".join(problems))
        self.state_machine_arn = self.client("stepfunctions").create_state_machine(
            name=machine["name"], definition=machine["definition"], roleArn=machine["roleArn"],
            type=machine["type"])["stateMachineArn"]
        self.data_bucket = synthesis.outputs["dataBucket"]

    def upload_dataset(self, path: Path) -> str:
        key = f"datasets/{path.name}"
        self.client("s3").upload_file(str(path), self.data_bucket, key)
        return f"s3://{self.data_bucket}/{key}"
