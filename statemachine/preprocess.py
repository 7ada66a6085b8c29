"""Preprocess: the preprocess Lambda's actions, with the dataset shared among many Lambdas.

Preprocess (plan) lists the dataset and cuts it into work items (preprocess/items.json); ProfileShards, a
Distributed Map that reads the items with its ItemReader, profiles each one, and splits an item of numbers in
the same read; MergeProfiles makes one plan of the profiles (column types, category codes, classes) and lists
the items still to split (preprocess/split-items.json: those with text, or every item when the plan needs
codes); SplitShards splits those with it, and is skipped when there is none (AnyItemToSplit);
FinishPreprocess puts the items' results together. Every Map writes its results to S3 (ResultWriter), so no
payload grows with the dataset. A failure after the plan goes through DiscardPreprocess, which deletes what the
run wrote and fails with the first failure an item recorded, so PreprocessFailed names the shard and the row.

The Lambda's own role belongs to the function (infra/function.py); the Maps need this role to start their
child executions and read and write the preprocess records (statements below).
"""
from __future__ import annotations

from preprocess import layout
from preprocess.layout import RANGE_BYTES

from . import errors
from .iam import allow
from .refs import Refs
from .settings import PipelineSettings
from .step import Step, then

NAME = "Preprocess"
PROFILE, MERGE, SPLIT_CHOICE, SPLIT, FINISH, DISCARD = "ProfileShards", "MergeProfiles", "AnyItemToSplit", \
    "SplitShards", "FinishPreprocess", "DiscardPreprocess"
TRAINING_PROGRAM = "train.py"

# What the state machine keeps of the Lambda's answer ($.run); the rest stays in the Lambda's logs.
PLAN_FIELDS = ("runName", "executionTag", "channels", "transformInput", "predictionsUri", "checkpointsUri",
               "testLabelsUri", "schemaUri", "hyperparameters", "hyperparameterOrigins", "objective", "rows", "shards",
               "ignoredColumns", "gate")
# With sagestep:tuning, the run's tuning job name and its resolved config (statemachine/tune.py reads both).
TUNING_FIELDS = ("tuningName", "tuning")
# AWS's recommended Retry for Lambda tasks, plus throttling.
LAMBDA_RETRY = {
    "ErrorEquals": ["Lambda.ClientExecutionTimeoutException", "Lambda.ServiceException",
                    "Lambda.AWSLambdaException", "Lambda.SdkClientException", "Lambda.TooManyRequestsException"],
    "IntervalSeconds": 2, "MaxAttempts": 6, "BackoffRate": 2.0, "JitterStrategy": "FULL",
}
RUN = "$$.Execution.Name"


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    fields = PLAN_FIELDS + (TUNING_FIELDS if settings.tuning else ())
    selector = {f"{field}.$": f"$.Payload.{field}" for field in fields}
    # Script mode, merged into the hyperparameters by the Train state: the code bundle, and the region
    # the image's launcher downloads it from (without AWS_REGION it builds "https://s3..amazonaws.com").
    selector["trainingCode"] = {
        "sagemaker_program": TRAINING_PROGRAM,
        "sagemaker_submit_directory": refs.training_code_uri,
        "sagemaker_region": refs.region,
    }
    fail = errors.fail_state_name(NAME)
    return {
        # The Lambda event: the execution input plus executionName, executionArn and action (from Start).
        NAME: lambda_task(refs, "Checks the input and the dataset's header, lists its shards and cuts them into "
                                "work items (preprocess/items.json).",
                          {"Payload.$": "States.JsonMerge($, $.execution, false)"},
                          {"items.$": "$.Payload.items", "objects.$": "$.Payload.objects",
                           "itemsKey.$": "$.Payload.itemsKey"},
                          "$.shards", PROFILE, fail),
        PROFILE: work_map(refs, settings, "profile", "Profiles each work item (types, categories, classes, rows), "
                                                     "and splits an item of numbers in the same read.",
                          "$.shards.itemsKey", MERGE),
        MERGE: lambda_task(refs, "One plan from every profile (types, category codes, classes), and the items still "
                                 "to split (preprocess/split-items.json).",
                           {"Payload": {"action": "merge", "executionName.$": RUN}},
                           {"splitItems.$": "$.Payload.splitItems", "splitItemsKey.$": "$.Payload.splitItemsKey"},
                           "$.merged", SPLIT_CHOICE, DISCARD),
        SPLIT_CHOICE: {"Type": "Choice", "Comment": "Skips SplitShards when the profiles' reads split every item.",
                       "Choices": [{"Variable": "$.merged.splitItems", "NumericEquals": 0, "Next": FINISH}],
                       "Default": SPLIT},
        SPLIT: work_map(refs, settings, "split", "Splits each item still to split with the plan into train, validation "
                                                 "and test.", "$.merged.splitItemsKey", FINISH),
        FINISH: lambda_task(refs, "Puts the items' results together, writes the schema and plans the jobs.",
                            {"Payload": {"action": "finish", "executionName.$": RUN}}, selector, "$.run",
                            next_state, DISCARD),
        DISCARD: lambda_task(refs, "Deletes what the run wrote and fails with the first failure a work item recorded.",
                             {"Payload": {"action": "discard", "executionName.$": RUN, "error.$": "$.error"}},
                             None, None, fail, fail),
        **errors.fail_state(NAME),
    }


def lambda_task(refs: Refs, comment: str, payload: dict, selector: dict | None, result_path: str | None,
                next_state: str | None, catch_to: str | None) -> dict:
    """A Task state that invokes the pipeline's function (one of its actions), with AWS's recommended
    Lambda Retry; any other error goes to catch_to, under $.error (or fails the execution: a Map's child)."""
    return {
        "Type": "Task",
        "Comment": comment,
        "Resource": refs.integration("lambda:invoke"),
        "Parameters": {"FunctionName": refs.function_arn, **payload},
        "Retry": [LAMBDA_RETRY],
        **({"Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": catch_to}]} if catch_to else {}),
        **({"ResultSelector": selector} if selector else {}),
        "ResultPath": result_path,
        **then(next_state),
    }


def work_map(refs: Refs, settings: PipelineSettings, action: str, comment: str, items_key: str,
             next_state: str) -> dict:
    """A Distributed Map over work items (the JSON list at the data bucket's key that items_key selects): one
    child execution per item invokes the function's action, up to preprocessConcurrency at once; results
    go to S3, and any failure to DiscardPreprocess."""
    child = f"{action.capitalize()}Item"
    return {
        "Type": "Map",
        "Comment": comment,
        "ItemReader": {
            "Resource": refs.integration("s3:getObject"),
            "ReaderConfig": {"InputType": "JSON"},
            "Parameters": {"Bucket": refs.data_bucket, "Key.$": items_key},
        },
        "ItemSelector": {"action": action, "executionName.$": RUN, "item.$": "$$.Map.Item.Value"},
        "MaxConcurrency": settings.preprocess_concurrency,
        "ItemProcessor": {
            "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
            "StartAt": child,
            # A failure fails the child execution, and so the Map run (no failure is tolerated).
            "States": {child: lambda_task(refs, f"The {action} action on one work item.", {"Payload.$": "$"},
                                          {"result.$": "$.Payload"}, "$", None, None)},
        },
        "ResultWriter": {
            "Resource": refs.integration("s3:putObject"),
            # From the context object: moto resolves a ResultWriter's "$" against the Map's results, AWS
            # against its input; "$$" is the same in both.
            "Parameters": {"Bucket": refs.data_bucket,
                           "Prefix.$": f"States.Format('{layout.RUNS_PREFIX}{{}}/{layout.MAP_RESULTS_DIR}{action}', {RUN})"},
        },
        "ResultPath": None,
        "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": DISCARD}],
        "Next": next_state,
    }


def invoke_function(refs: Refs, name: str, comment: str, payload: dict, selector: dict, result_path: str,
                    next_state: str | None) -> dict[str, dict]:
    """A step that is one action of the pipeline's function (Evaluate), with its <name>Failed state."""
    return {name: lambda_task(refs, comment, payload, selector, result_path, next_state, errors.fail_state_name(name)),
            **errors.fail_state(name)}


def invoke_statements(refs: Refs) -> list[dict]:
    """Invoke exactly this function, unqualified or any version/alias of it."""
    return [allow("InvokePreprocess", ["lambda:InvokeFunction"], [refs.function_arn, f"{refs.function_arn}:*"])]


def statements(refs: Refs) -> list[dict]:
    """The function, and the Distributed Maps ("IAM policies for using Distributed Map states"): start this
    state machine's child executions and follow or stop them (AWS's example policy names execution:<name>:*,
    the children's ARNs are execution:<name>/<map run label>:<id>: both, and only this state machine's), read
    the work items, write the results (multipart) under the run's preprocess records."""
    name, runs = refs.state_machine_name, f"{layout.RUNS_PREFIX}*/"
    return invoke_statements(refs) + [
        allow("StartMapChildren", ["states:StartExecution"], [refs.arn("states", f"stateMachine:{name}")]),
        allow("FollowMapChildren", ["states:DescribeExecution", "states:StopExecution"],
              [refs.arn("states", f"execution:{name}:*"), refs.arn("states", f"execution:{name}/*")]),
        allow("ReadWorkItems", ["s3:GetObject"], [refs.s3(refs.data_bucket, f"{runs}{layout.ITEMS}"),
                                                  refs.s3(refs.data_bucket, f"{runs}{layout.SPLIT_ITEMS}")]),
        allow("WriteMapResults", ["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts",
                                  "s3:PutObject"], [refs.s3(refs.data_bucket, f"{runs}{layout.MAP_RESULTS_DIR}*")]),
    ]


def summary(rendered: dict[str, dict]) -> list[str]:
    return [f"preprocess: work items of up to {RANGE_BYTES >> 20} MB (a shard, or a byte range of a large object) "
            f"through two Distributed Maps (the second only for items with text, or when the plan needs codes), up "
            f"to {rendered[PROFILE]['MaxConcurrency']} Lambdas at once"]


STEP = Step(NAME, states, statements, summary=summary, outputs={
    "runName.$": "$.run.runName", "objective.$": "$.run.objective", "rows.$": "$.run.rows",
    "testLabelsUri.$": "$.run.testLabelsUri", "schemaUri.$": "$.run.schemaUri", "shards.$": "$.run.shards",
    "ignoredColumns.$": "$.run.ignoredColumns", "hyperparameters.$": "$.run.hyperparameters",
    "hyperparameterOrigins.$": "$.run.hyperparameterOrigins"})
