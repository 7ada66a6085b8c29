"""The pipeline's Lambda, two actions on one run's data (one function, role and deploy for both):
- preprocess (the default): validate the dataset, split it under runs/<execution>/, plan the jobs;
- evaluate: the batch predictions against the held-out labels, with a baseline beside them.

Reads objects as streams and writes every output with multipart uploads that are completed only when
the whole action succeeded (and aborted otherwise); memory does not grow with the dataset.
"""
from __future__ import annotations

import json
import os

import boto3

from . import layout
from .dataset import split_dataset
from .errors import FunctionMisconfigured, InvalidExecutionInput
from .evaluation import evaluate
from .general import read_rows
from .naming import run_name, tag_value
from .plan import csv_field, objective_hyperparameters, parse_event, quality_gate
from .sink import Outputs, S3Output, Uploader
from .source import S3Dataset

DEFAULT_REMAINING_MS = 900_000
MAX_MATRIX_CLASSES_IN_OUTPUT = 50      # 2,500 counts: a few KB of the execution's output


def _targets(prefix: str) -> dict[str, tuple[str, str]]:
    return {
        "train": (f"{prefix}{layout.TRAIN_DIR}train.csv", "text/csv"),
        "validation": (f"{prefix}{layout.VALIDATION_DIR}validation.csv", "text/csv"),
        "test": (f"{prefix}{layout.TEST_FEATURES_DIR}test.csv", "text/csv"),
        "labels": (f"{prefix}{layout.TEST_LABELS}", "text/csv"),
        "schema": (f"{prefix}{layout.SCHEMA}", "application/json"),
    }


REQUIRED_ENVIRONMENT = ("DATA_BUCKET", "JOB_NAME_PREFIX", "OBJECTIVES", "QUALITY_GATE")
ACTIONS = ("preprocess", "evaluate")


def handler(event, context):
    missing = [name for name in REQUIRED_ENVIRONMENT if not os.environ.get(name)]
    if missing:
        raise FunctionMisconfigured(f"the function's environment has no {', '.join(missing)}; "
                                    "deploy it with the stack (pulumi up)")
    action = event.get("action", "preprocess") if isinstance(event, dict) else "preprocess"
    if action not in ACTIONS:
        raise InvalidExecutionInput(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    return evaluate_run(event) if action == "evaluate" else preprocess_run(event, context)


def preprocess_run(event, context) -> dict:
    request = parse_event(event)
    data_bucket = os.environ["DATA_BUCKET"]
    s3 = boto3.client("s3")
    dataset = S3Dataset(s3, request.bucket, request.key)
    remaining = context.get_remaining_time_in_millis() if context is not None else DEFAULT_REMAINING_MS
    dataset.check_size(remaining)
    prefix = layout.run_prefix(request.execution_name)
    targets = _targets(prefix)

    def outputs() -> Outputs:
        uploader = Uploader()
        return Outputs({name: S3Output(s3, data_bucket, key, kind, uploader)
                        for name, (key, kind) in targets.items()}, uploader)

    planned: dict = {}

    def plan(result: dict) -> None:
        """The hyperparameters and the quality gate, checked before the split is committed."""
        hyperparameters = {
            **objective_hyperparameters(result["problem"], result["classes"], json.loads(os.environ["OBJECTIVES"])),
            **json.loads(os.environ.get("HYPERPARAMETERS", "{}")), **request.hyperparameters}
        planned.update(hyperparameters=hyperparameters,
                       gate=quality_gate(request, json.loads(os.environ["QUALITY_GATE"]), hyperparameters))

    result = split_dataset(dataset.chunks, dataset.where, request, outputs, check=plan)
    hyperparameters = planned["hyperparameters"]
    base = f"s3://{data_bucket}/{prefix}"
    return {
        "runName": run_name(os.environ["JOB_NAME_PREFIX"], request.execution_name, request.execution_arn),
        "executionTag": tag_value(request.execution_name),
        "channels": {"train": f"{base}{layout.TRAIN_DIR}", "validation": f"{base}{layout.VALIDATION_DIR}"},
        "transformInput": f"{base}{layout.TEST_FEATURES_DIR}",
        "predictionsUri": f"{base}{layout.PREDICTIONS_DIR}",
        "checkpointsUri": f"{base}{layout.CHECKPOINTS_DIR}",
        "testLabelsUri": f"{base}{layout.TEST_LABELS}",
        "schemaUri": f"{base}{layout.SCHEMA}",
        "hyperparameters": hyperparameters,
        "objective": hyperparameters["objective"],
        "problem": result["problem"],
        "rows": result["counts"],
        "ignoredColumns": result["ignored"],
        "gate": planned["gate"],
    }


def evaluate_run(event: dict) -> dict:
    """Pairs the batch predictions (every object under predictions/, in key order) with the held-out
    labels, writes them joined with their header as predictions.csv and the metrics as evaluation.json."""
    name = event.get("executionName")
    if not isinstance(name, str) or not name:
        raise InvalidExecutionInput("the evaluate event has no executionName (the state machine passes it)")
    data_bucket, s3 = os.environ["DATA_BUCKET"], boto3.client("s3")
    prefix = layout.run_prefix(name)
    schema = json.loads(s3.get_object(Bucket=data_bucket, Key=f"{prefix}{layout.SCHEMA}")["Body"].read())
    listing = s3.get_paginator("list_objects_v2").paginate(Bucket=data_bucket, Prefix=f"{prefix}{layout.PREDICTIONS_DIR}")
    keys = sorted(item["Key"] for page in listing for item in page.get("Contents", []))

    def rows_of(key: str):
        dataset = S3Dataset(s3, data_bucket, key)
        return read_rows(dataset.chunks(), dataset.where)

    predictions = (row for key in keys for row in rows_of(key))
    uploader = Uploader()
    with Outputs({"predictions": S3Output(s3, data_bucket, f"{prefix}{layout.JOINED_PREDICTIONS}", "text/csv", uploader),
                  "evaluation": S3Output(s3, data_bucket, f"{prefix}{layout.EVALUATION}", "application/json",
                                         uploader)}, uploader) as outputs:
        joined = outputs["predictions"]
        labels = rows_of(f"{prefix}{layout.TEST_LABELS}")
        header = next(labels, []) + ["predicted"] + [f"P({name})" for name in schema["label"]["classes"] or []]
        joined.write((",".join(map(csv_field, header)) + "\n").encode())

        def write(prediction: list[str], held_out: list[str]) -> None:
            joined.write((",".join(map(csv_field, held_out + prediction)) + "\n").encode())

        result = evaluate(schema, predictions, labels, on_row=write)
        base = f"s3://{data_bucket}/{prefix}"
        result = {**result, "predictionsFile": f"{base}{layout.JOINED_PREDICTIONS}",
                  "evaluationFile": f"{base}{layout.EVALUATION}"}
        outputs["evaluation"].write(json.dumps(result, indent=2).encode())
        outputs.commit()
    # The confusion matrix goes into the run's output too when it is small; a state's payload is 256 KB at most.
    matrix = result.get("confusionMatrix")
    small = matrix is not None and len(matrix["classes"]) <= MAX_MATRIX_CLASSES_IN_OUTPUT
    return {**result, "confusionMatrix": matrix if small else None}
