"""Preprocess Lambda: validate the dataset, split it under runs/<execution>/, plan the jobs.

Reads the object as a stream and writes every output with multipart uploads that are completed
only when the whole split succeeded (and aborted otherwise); memory does not grow with the dataset.
"""
from __future__ import annotations

import json
import os

import boto3

from . import layout
from .dataset import split_dataset
from .errors import FunctionMisconfigured
from .naming import run_name, tag_value
from .plan import objective_hyperparameters, parse_event
from .sink import Outputs, S3Output, Uploader
from .source import S3Dataset

DEFAULT_REMAINING_MS = 900_000


def _targets(prefix: str) -> dict[str, tuple[str, str]]:
    return {
        "train": (f"{prefix}{layout.TRAIN_DIR}train.csv", "text/csv"),
        "validation": (f"{prefix}{layout.VALIDATION_DIR}validation.csv", "text/csv"),
        "test": (f"{prefix}{layout.TEST_FEATURES_DIR}test.csv", "text/csv"),
        "labels": (f"{prefix}{layout.TEST_LABELS}", "text/csv"),
        "schema": (f"{prefix}{layout.SCHEMA}", "application/json"),
    }


REQUIRED_ENVIRONMENT = ("DATA_BUCKET", "JOB_NAME_PREFIX", "OBJECTIVES")


def handler(event, context):
    missing = [name for name in REQUIRED_ENVIRONMENT if not os.environ.get(name)]
    if missing:
        raise FunctionMisconfigured(f"the function's environment has no {', '.join(missing)}; "
                                    "deploy it with the stack (pulumi up)")
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

    result = split_dataset(dataset.chunks, dataset.where, request, outputs)
    classes = result["classes"]
    hyperparameters = {**objective_hyperparameters(result["problem"], classes, json.loads(os.environ["OBJECTIVES"])),
                       **json.loads(os.environ.get("HYPERPARAMETERS", "{}")),
                       **request.hyperparameters}
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
    }
