"""Every use of moto beyond its public API, in one place (moto is pinned; tests/test_moto_adapter.py has
one focused test per hook, so an upgrade shows exactly which one broke).

The hooks, each installed on an ExitStack and undone when it closes:
- run_lambdas: Lambda invokes run a Python handler in-process (moto's Docker-free backend echoes),
  and lambda_service_error stands for a failure of the Lambda service itself;
- name_executions: StartExecution without a name gets a UUID, as on AWS (moto leaves it empty);
- register_services: the ASL interpreter's optimized integrations, by service name (moto has no
  SageMaker .sync), with ServiceTask and the failure helpers for writing one;
- poll_sync_jobs_every / scale_retry_waits: the interpreter's waits, shortened for a local run or a test;
- let_through_catch: error names a States.ALL Retry or Catch must not match (moto matches everything);
- intercept_requests: a check before moto handles a request of a JSON-protocol service;
- sagemaker_jobs: moto's SageMaker backend, to put a local job's real lifecycle back;
- task_timed_out: whether a Task's frame ended for its TimeoutSeconds (a .sync job then runs on, as on AWS);
- page_execution_history: GetExecutionHistory pages by maxResults, reverseOrder and nextToken, as on AWS (moto
  answers with the whole history in order);
- filter_logs_by_stream_prefix: FilterLogEvents honours logStreamNamePrefix (what `aws logs tail
  --log-stream-name-prefix` sends), which moto ignores;
- write_map_results: a Distributed Map's ResultWriter writes the children's results as AWS does (moto
  writes a manifest that lists none);
- fail_map_runs_beyond_tolerance: a Map Run with more failed items than it tolerates fails the Map state
  with States.ExceedToleratedFailureThreshold, as on AWS (moto lets it succeed without their results);
- run_tuning_jobs: a tuning job moto records is handed to a runner (moto completes it at once with a made-up
  best training job);
- aws_sdk_timestamps_as_text: an aws-sdk integration's timestamps become ISO 8601 text, as on AWS (moto hands
  on datetime objects, which the execution's output cannot hold).
Importing this module loads moto's Batch helpers without moto's Batch and EC2 models (_batch_utils_alone).
"""
from __future__ import annotations

import copy
import importlib
import importlib.util
import json
import sys
import types
import logging
import threading
import time
import uuid
from contextlib import ExitStack
from datetime import datetime, timezone
from typing import Any, Callable
from unittest import mock



def _batch_utils_alone() -> None:
    """moto's ASL interpreter imports moto.batch.utils for its Batch task, and moto.batch's __init__ loads moto's
    Batch and EC2 models: a second of every local run's start-up, for a service the pipeline never calls. The
    utils module is loaded under a bare package here; `import moto.batch` still loads the real one when asked."""
    if "moto.batch" in sys.modules:
        return
    package = types.ModuleType("moto.batch")
    package.__path__ = list(importlib.util.find_spec("moto.batch").submodule_search_locations)
    sys.modules["moto.batch"] = package
    try:
        importlib.import_module("moto.batch.utils")
    finally:
        del sys.modules["moto.batch"]


_batch_utils_alone()

from moto import mock_aws
from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda_simple.models import LambdaSimpleBackend
from moto.core.responses import ActionResult, BaseResponse
from moto.events.models import Rule
from moto.logs.responses import LogsResponse
from moto.sagemaker.models import SageMakerModelBackend, sagemaker_backends
from moto.sagemaker.responses import SageMakerResponse
from moto.sns.models import sns_backends
from moto.stepfunctions.exceptions import InvalidToken, ResourceNotFound
from moto.stepfunctions.models import StepFunctionBackend
from moto.stepfunctions.parser.api import HistoryEventType, MapRunFailedEventDetails, TaskFailedEventDetails
from moto.stepfunctions.parser.backend.execution import BaseExecutionWorkerCommunication
from moto.stepfunctions.parser.asl.component.common.error_name.custom_error_name import CustomErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.error_equals_decl import ErrorEqualsDecl
from moto.stepfunctions.parser.asl.component.common.error_name.failure_event import (
    FailureEvent, FailureEventException)
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name import StatesErrorName
from moto.stepfunctions.parser.asl.component.common.error_name.states_error_name_type import StatesErrorNameType
from moto.stepfunctions.parser.asl.component.common.retry import retrier_decl
from moto.stepfunctions.parser.asl.component.state.exec.state_map.iteration.distributed_iteration_component import (
    DistributedIterationComponent)
from moto.stepfunctions.parser.asl.component.state.exec.state_map.result_writer.resource_eval import (
    resource_eval_s3 as result_writer_s3)
from moto.stepfunctions.parser.asl.component.state.exec.state_task import state_task_factory
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service import state_task_service_callback
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.resource import ResourceCondition
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_aws_sdk import (
    StateTaskServiceAwsSdk)
from moto.stepfunctions.parser.asl.component.state.exec.state_task.service.state_task_service_callback import (
    StateTaskServiceCallback)
from moto.stepfunctions.parser.asl.eval.event.event_detail import EventDetails
from moto.stepfunctions.parser.asl.eval.program_state import ProgramEnded
from moto.stepfunctions.parser.models import StepFunctionsParserBackend
from moto.stepfunctions.responses import StepFunctionResponse

from sagestep.synth import ACCOUNT_ID

from .notifications import status_change_event, transformed

CONFIG = {"stepfunctions": {"execute_state_machine": True}, "lambda": {"use_docker": False}}
RESPONSES = {"sagemaker": SageMakerResponse, "stepfunctions": StepFunctionResponse}

# (function configuration, event) -> the handler's result; raise to fail the invocation.
Invoke = Callable[[dict, Any], Any]
# (service, operation, parsed JSON body) -> None to go on, or (HTTP status, headers, body) to answer.
Check = Callable[[str, str, dict], "tuple[int, dict, str] | None"]


def emulator(stack: ExitStack) -> None:
    """moto in-process, with its ASL interpreter on and Lambda without Docker (public config)."""
    stack.enter_context(mock_aws(config=CONFIG))
    # It logs every caught task error with its parse tree; the execution history already says what failed. For the
    # process's life: an execution's thread may still log after the engine has closed (a run interrupted by Ctrl-C).
    logging.getLogger("moto.stepfunctions.parser").setLevel(logging.CRITICAL)


def server(host: str, port: int, verbose: bool = False):
    """moto's server (imported here: only `sagestep local serve` needs it); its werkzeug request handler logs
    one line per request (on stderr, through the "werkzeug" logger) only when verbose, and its errors always."""
    from moto.server import ThreadedMotoServer
    logging.getLogger("werkzeug").setLevel(logging.INFO if verbose else logging.ERROR)
    return ThreadedMotoServer(ip_address=host, port=port, verbose=False)


def run_lambdas(stack: ExitStack, invoke: Invoke) -> None:
    """Every Lambda invoke calls invoke(configuration, event); an exception becomes Lambda's function
    error ("Unhandled", with errorType and errorMessage), which the interpreter maps, retries and catches."""
    def backend_invoke(backend, function_name, qualifier, body, headers, response_headers):
        configuration = backend.get_function(function_name, qualifier).get_configuration()
        try:
            result = invoke(configuration, json.loads(body) if body else {})
        except LambdaClientError:
            raise
        except Exception as error:  # noqa: BLE001 - becomes the function error, as on Lambda
            response_headers["x-amz-function-error"] = "Unhandled"
            return json.dumps({"errorType": type(error).__name__, "errorMessage": str(error),
                               "stackTrace": []}).encode()
        return json.dumps(result).encode()
    stack.enter_context(mock.patch.object(LambdaSimpleBackend, "invoke", backend_invoke))


def lambda_service_error(code: str, message: str) -> Exception:
    """An error of the Lambda service itself, not of the function: raised by an invoke, the
    interpreter reports it as Lambda.<code> (e.g. Lambda.ServiceException, which a Retry may match)."""
    return LambdaClientError(code, message)


def name_executions(stack: ExitStack) -> None:
    original = StepFunctionsParserBackend.start_execution

    def start_execution(self, state_machine_arn, name=None, *args, **kwargs):
        return original(self, state_machine_arn, name or str(uuid.uuid4()), *args, **kwargs)
    stack.enter_context(mock.patch.object(StepFunctionsParserBackend, "start_execution", start_execution))


def register_services(stack: ExitStack, services: dict[str, Callable[[], StateTaskServiceCallback]]) -> None:
    """Optimized integrations by service name ("sagemaker"); the others stay moto's."""
    original = state_task_factory.state_task_service_for

    def service_for(service_name: str):
        factory = services.get(service_name)
        return factory() if factory else original(service_name)
    stack.enter_context(mock.patch.object(state_task_factory, "state_task_service_for", service_for))


def poll_sync_jobs_every(stack: ExitStack, seconds: float) -> None:
    stack.enter_context(mock.patch.object(state_task_service_callback, "_DELAY_SECONDS_SYNC_CONDITION_CHECK", seconds))


def scale_retry_waits(stack: ExitStack, factor: float) -> None:
    """A Retry waits IntervalSeconds × BackoffRate^n; times factor here (a test need not wait them out)."""
    class ScaledTime:
        def __getattr__(self, name: str):
            return getattr(time, name)

        @staticmethod
        def sleep(seconds: float) -> None:
            time.sleep(seconds * factor)
    stack.enter_context(mock.patch.object(retrier_decl, "time", ScaledTime()))


def let_through_catch(stack: ExitStack, error_names: tuple[str, ...]) -> None:
    """A States.ALL Retry or Catch does not match these errors (AWS: "States.ALL … can't catch the
    States.DataLimitExceeded terminal error and runtime error types"); moto's matches everything."""
    original = ErrorEqualsDecl._eval_body

    def eval_body(self, env) -> None:
        error = env.stack[-1]
        if getattr(error, "error_name", None) in error_names and all(
                getattr(name, "error_name", None) == "States.ALL" for name in self.error_names):
            env.stack.pop()
            env.stack.append(False)
            return
        original(self, env)
    stack.enter_context(mock.patch.object(ErrorEqualsDecl, "_eval_body", eval_body))


def intercept_requests(stack: ExitStack, check: Check) -> None:
    """check sees every SageMaker and Step Functions request (in-process and through server()) before
    moto handles it, and may answer it instead."""
    for service, response in RESPONSES.items():
        def call_action(self: BaseResponse, service=service, original=response.call_action) -> Any:
            try:
                params = json.loads(self.body or "{}")
            except (TypeError, ValueError):
                params = None
            answer = check(service, self._get_action(), params) if isinstance(params, dict) else None
            return original(self) if answer is None else answer
        stack.enter_context(mock.patch.object(response, "call_action", call_action))


def filter_logs_by_stream_prefix(stack: ExitStack) -> None:
    original = LogsResponse.filter_log_events

    def filter_log_events(self: LogsResponse) -> str:
        request = json.loads(self.body or "{}")
        prefix = request.get("logStreamNamePrefix")
        if not prefix or request.get("logStreamNames"):
            return original(self)
        group = self.logs_backend.groups.get(request.get("logGroupName"))
        names = [name for name in (group.streams if group else {}) if name.startswith(prefix)]
        if group is None or not names:
            return original(self) if group is None else json.dumps({"events": [], "searchedLogStreams": []})
        self.body = json.dumps({**request, "logStreamNames": names})
        return original(self)
    stack.enter_context(mock.patch.object(LogsResponse, "filter_log_events", filter_log_events))


HISTORY_PAGE = 100          # GetExecutionHistory's default maxResults (SFN API reference: default 100, at most 1000)


def page_execution_history(stack: ExitStack) -> None:
    """GetExecutionHistory pages as AWS's does, by maxResults, reverseOrder and nextToken (moto answers with the
    whole history, in order, whatever the request asks)."""
    def get_execution_history(self: StepFunctionResponse) -> ActionResult:
        events = self.stepfunction_backend.get_execution_history(self._get_param("executionArn"))["events"]
        if self._get_param("reverseOrder"):
            events = events[::-1]
        token = self._get_param("nextToken")
        if token is not None and not (token.isdigit() and int(token) < len(events)):
            raise InvalidToken(f"{token!r} is not a token of this history")
        start, size = int(token or 0), int(self._get_param("maxResults") or HISTORY_PAGE)
        page = {"events": events[start:start + size]}
        if start + size < len(events):
            page["nextToken"] = str(start + size)
        return ActionResult(page)
    stack.enter_context(mock.patch.object(StepFunctionResponse, "get_execution_history", get_execution_history))


def task_timed_out(env) -> bool:
    """Whether the interpreter ended a Task's frame for its TimeoutSeconds (it ends it, ProgramEnded, and raises
    States.Timeout); a stopped execution or Parallel branch stops it instead (ProgramStopped)."""
    return isinstance(env.program_state(), ProgramEnded)


def sagemaker_jobs(region: str):
    """moto's SageMaker backend: .training_jobs and .transform_jobs by name, their attributes as
    Describe* renders them (an attribute set to None is left out)."""
    return sagemaker_backends[ACCOUNT_ID][region]


class ServiceTask(StateTaskServiceCallback):
    """The base of an optimized integration with .sync (and request-response) support."""

    def __init__(self):
        # WaitForTaskToken is listed only because moto's callback machinery expects an endpoint.
        super().__init__(supported_integration_patterns={ResourceCondition.Sync, ResourceCondition.WaitForTaskToken})

    def failure(self, env, error: str, cause: str) -> FailureEventException:
        """The task fails with this error name and cause (a custom name such as "SageMaker.…")."""
        return self._failure_event(env, CustomErrorName(error), error, cause)

    def task_failed(self, env, cause: str) -> FailureEventException:
        """States.TaskFailed, as a .sync task whose job ended Failed or Stopped."""
        name = StatesErrorNameType.StatesTaskFailed
        return self._failure_event(env, StatesErrorName(typ=name), name.to_name(), cause)

    def _failure_event(self, env, error_name, error: str, cause: str) -> FailureEventException:
        return FailureEventException(FailureEvent(
            env=env, error_name=error_name, event_type=HistoryEventType.TaskFailed,
            event_details=EventDetails(taskFailedEventDetails=TaskFailedEventDetails(
                error=error, cause=cause, resource=self._get_sfn_resource(),
                resourceType=self._get_sfn_resource_type()))))


def emit_status_changes(stack: ExitStack, on_end: Callable[[dict], None], wait_seconds: float = 5.0) -> None:
    """on_end(detail) when an execution ends, as Step Functions sends its status change to EventBridge.
    A reader sees the end (DescribeExecution) before on_end has run, on the execution's thread; so until
    the stack closes, the emulator waits for every ending in flight (up to wait_seconds), and no event is
    sent to a real endpoint after the mock has gone."""
    original = BaseExecutionWorkerCommunication.terminated
    ending = threading.Condition()
    in_flight = [0]

    def terminated(self) -> None:
        with ending:
            in_flight[0] += 1          # before the end is visible: a reader that sees it finds it counted
        try:
            original(self)
            execution = self.execution
            on_end(status_change_event(execution.exec_arn, execution.state_machine.arn, execution.name,
                                       str(execution.exec_status.value), execution.start_date, execution.stop_date,
                                       execution.error, execution.cause))
        finally:
            with ending:
                in_flight[0] -= 1
                ending.notify_all()

    def wait_for_endings() -> None:
        with ending:
            ending.wait_for(lambda: in_flight[0] == 0, timeout=wait_seconds)

    stack.enter_context(mock.patch.object(BaseExecutionWorkerCommunication, "terminated", terminated))
    stack.callback(wait_for_endings)       # closed first (last in): the emulator and the patch are still up


def deliver_events_to_sns(stack: ExitStack) -> None:
    """moto's EventBridge drops events for SNS targets; deliver them as AWS does: through the target's
    input transformer, published to the topic."""
    original = Rule.send_to_targets

    def send_to_targets(self, original_event, transform_input: bool = True) -> None:
        to_sns = [target for target in self.targets if target["Arn"].split(":")[2] == "sns"]
        others = copy.copy(self)
        others.targets = [target for target in self.targets if target not in to_sns]
        original(others, original_event, transform_input)
        if not self.event_pattern.matches_event(original_event):
            return
        for target in to_sns:
            transformer = target.get("InputTransformer", {})
            message = transformed(transformer.get("InputPathsMap", {}), transformer.get("InputTemplate", ""),
                                  original_event) if transformer else json.dumps(original_event)
            sns_backends[self.account_id][self.region_name].publish(message, arn=target["Arn"])
    stack.enter_context(mock.patch.object(Rule, "send_to_targets", send_to_targets))


def published(topic_arn: str) -> list[str]:
    """Every message published to an emulated SNS topic, in order (an e-mail subscription keeps none)."""
    _, _, _, region, account, _ = topic_arn.split(":")
    return [message for _, message, *_ in sns_backends[account][region].topics[topic_arn].sent_notifications]


def tags_need_the_state_machine(stack: ExitStack) -> None:
    """ListTagsForResource on a state machine that does not exist answers ResourceNotFound on AWS
    (Step Functions API reference, ListTagsForResource, Errors); moto answers an empty list."""
    original = StepFunctionBackend.list_tags_for_resource

    def list_tags_for_resource(self, arn: str):
        if ":stateMachine:" in arn and not any(machine.arn == arn for machine in self.state_machines):
            raise ResourceNotFound(arn)
        return original(self, arn)
    stack.enter_context(mock.patch.object(StepFunctionBackend, "list_tags_for_resource", list_tags_for_resource))


def write_map_results(stack: ExitStack) -> None:
    """ResultWriter (Step Functions developer guide, "ResultWriter (Map)"): under <Prefix>/<map run id>/,
    manifest.json lists the result files, and SUCCEEDED_0.json holds one record per child execution with
    its Output as a JSON string; the Map state's output points at the manifest."""
    def put_object(env, resource_runtime_part, state_credentials) -> None:
        parameters = env.stack.pop()
        outputs = env.stack.pop()
        s3 = result_writer_s3.ResourceEvalS3._get_s3_client(resource_runtime_part=resource_runtime_part,
                                                            state_credentials=state_credentials)
        record = env.map_run_record_pool_manager.get_all().pop()
        run_id = record.map_run_arn.split(":")[-1]
        prefix = parameters.get("Prefix", "")
        folder = f"{prefix.rstrip('/')}/{run_id}/" if prefix else f"{run_id}/"
        results = [{"Name": f"{run_id}-{index}", "Status": "SUCCEEDED", "Output": json.dumps(output),
                    "OutputDetails": {"Included": True}} for index, output in enumerate(outputs)]
        body = json.dumps(results).encode()
        s3.put_object(Bucket=parameters["Bucket"], Key=f"{folder}SUCCEEDED_0.json", Body=body)
        manifest = {"DestinationBucket": parameters["Bucket"], "MapRunArn": record.map_run_arn,
                    "ResultFiles": {"FAILED": [], "PENDING": [],
                                    "SUCCEEDED": [{"Key": f"{folder}SUCCEEDED_0.json", "Size": len(body)}]}}
        s3.put_object(Bucket=parameters["Bucket"], Key=f"{folder}manifest.json", Body=json.dumps(manifest).encode())
        env.stack.append({"MapRunArn": record.map_run_arn,
                          "ResultWriterDetails": {"Bucket": parameters["Bucket"], "Key": f"{folder}manifest.json"}})
    stack.enter_context(mock.patch.object(result_writer_s3.ResourceEvalS3, "_handle_put_object",
                                          staticmethod(put_object)))


TOLERANCE_EXCEEDED = "The specified tolerated failure threshold was exceeded"


def fail_map_runs_beyond_tolerance(stack: ExitStack) -> None:
    """ToleratedFailureCount and ToleratedFailurePercentage: "the maximum number (percentage) of failed items
    before the Map Run fails" (UpdateMapRun, API reference); without either, the first failure fails it, and the
    Map state fails with States.ExceedToleratedFailureThreshold. Here the check comes when every item has run."""
    original = DistributedIterationComponent._map_run

    def map_run(self, env, eval_input) -> None:
        original(self, env, eval_input)
        record = eval_input.map_run_record
        failed, total = record.item_counter.failed.get(), record.item_counter.total.get()
        count, percentage = record.tolerated_failure_count, record.tolerated_failure_percentage
        # 0 is unset; with both unset none is tolerated; with both set, either one exceeded fails the run.
        exceeded = failed > 0 if not (count or percentage) else (
            (count and failed > count) or (percentage and total and 100 * failed / total > percentage))
        if exceeded:
            name = StatesErrorNameType.StatesExceedToleratedFailureThreshold
            raise FailureEventException(FailureEvent(
                env=env, error_name=StatesErrorName(typ=name), event_type=HistoryEventType.MapRunFailed,
                event_details=EventDetails(mapRunFailedEventDetails=MapRunFailedEventDetails(
                    error=name.to_name(), cause=TOLERANCE_EXCEEDED))))
    stack.enter_context(mock.patch.object(DistributedIterationComponent, "_map_run", map_run))


def iso_timestamps(value: Any) -> Any:
    """datetime values (naive ones are moto's UTC) as ISO 8601 text with milliseconds and Z, in place."""
    items = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, item in list(items):
        if isinstance(item, datetime):
            moment = item if item.tzinfo else item.replace(tzinfo=timezone.utc)
            value[key] = moment.astimezone(timezone.utc).isoformat(timespec="milliseconds").replace("+00:00", "Z")
        else:
            iso_timestamps(item)
    return value


def aws_sdk_timestamps_as_text(stack: ExitStack) -> None:
    """An aws-sdk task's result holds timestamps as ISO 8601 text (e.g. DescribeStacks' "CreationTime":
    "2013-08-23T01:02:15.422Z", https://github.com/sam-goodwin/functionless/issues/489); moto's leaves boto3's
    datetime objects, and DescribeExecution then fails to serialise the execution's output."""
    stack.enter_context(mock.patch.object(StateTaskServiceAwsSdk, "_normalise_response",
                                          lambda self, response, *args, **kwargs: iso_timestamps(response)))


def run_tuning_jobs(stack: ExitStack, start: Callable[[str], None]) -> None:
    """start(name) once moto has recorded a tuning job (through any client, the interpreter or the server)."""
    original = SageMakerModelBackend.create_hyper_parameter_tuning_job

    def create_hyper_parameter_tuning_job(self, hyper_parameter_tuning_job_name: str, *args, **kwargs) -> str:
        arn = original(self, hyper_parameter_tuning_job_name, *args, **kwargs)
        start(hyper_parameter_tuning_job_name)
        return arn
    stack.enter_context(mock.patch.object(SageMakerModelBackend, "create_hyper_parameter_tuning_job",
                                          create_hyper_parameter_tuning_job))
