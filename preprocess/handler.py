"""Preprocess Lambda: validate the dataset, split it under runs/<execution>/, plan the jobs.

Two streaming passes over the object (profile, then split), so memory holds only the distinct
values of categorical columns. Outputs are uploaded only after the whole split succeeded.
"""
from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from contextlib import ExitStack

import boto3
from botocore.exceptions import ClientError

from . import layout
from .errors import (DatasetAccessDenied, DatasetNotFound, EmptyDataset, InvalidEncoding,
                     InvalidLabel, MalformedRow, TooFewRows)
from .naming import run_name
from .plan import (ColumnProfile, Request, find_label, objective_hyperparameters, parse_event,
                   problem_type, splitter)

GZIP_MAGIC = b"\x1f\x8b"
SPLITS = ("train", "validation", "test")


class _StreamingRaw(io.RawIOBase):
    """botocore's StreamingBody as a raw stream, so io buffering, gzip and text decoding apply."""

    def __init__(self, body):
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        data = self._body.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _open_rows(s3, request: Request):
    """A csv.reader over the object, gunzipped when needed, decoded as UTF-8 (BOM tolerated)."""
    where = f"s3://{request.bucket}/{request.key}"
    try:
        body = s3.get_object(Bucket=request.bucket, Key=request.key)["Body"]
    except ClientError as error:
        code = error.response["Error"]["Code"]
        if code in ("NoSuchKey", "NoSuchBucket", "404"):
            raise DatasetNotFound(f"{where} does not exist") from None
        if code in ("AccessDenied", "403", "AllAccessDisabled"):
            raise DatasetAccessDenied(
                f"{where} cannot be read by the stack; datasets are read from "
                f"s3://{os.environ['DATA_BUCKET']}/{layout.DATASETS_PREFIX} and the buckets in "
                "sagestep:datasetBuckets") from None
        raise
    raw = io.BufferedReader(_StreamingRaw(body), buffer_size=1 << 20)
    if request.key.endswith(".gz") or raw.peek(2)[:2] == GZIP_MAGIC:
        raw = gzip.GzipFile(fileobj=raw)
    text = io.TextIOWrapper(raw, encoding="utf-8-sig", newline="")
    return csv.reader(text)


def _rows(s3, request: Request):
    """(row number, fields) with the header first; decoding errors name the row."""
    reader = _open_rows(s3, request)
    number = 0
    try:
        for number, fields in enumerate(reader, start=1):
            yield number, fields
    except UnicodeDecodeError as error:
        raise InvalidEncoding(f"s3://{request.bucket}/{request.key} is not UTF-8 text ({error.reason} after "
                              f"row {number}); save it as UTF-8") from None
    except (OSError, EOFError) as error:
        raise InvalidEncoding(f"s3://{request.bucket}/{request.key}: not a readable gzip or CSV ({error})") from None


def _profile(s3, request: Request):
    rows = _rows(s3, request)
    header = next((fields for _, fields in rows if fields), None)
    if not header:
        raise EmptyDataset(f"s3://{request.bucket}/{request.key} is empty (no header row)")
    label_index = find_label(header, request.label_column)
    columns = [ColumnProfile(name) for name in header]
    count = 0
    for number, fields in rows:
        if not fields:
            continue
        if len(fields) != len(header):
            raise MalformedRow(f"row {number}: expected {len(header)} fields, found {len(fields)}")
        if fields[label_index] == "":
            raise InvalidLabel(f"row {number}: the label column {header[label_index]!r} is empty")
        for column, value in zip(columns, fields):
            column.add(value)
        count += 1
    if count == 0:
        raise EmptyDataset(f"s3://{request.bucket}/{request.key} has a header but no data rows")
    return header, label_index, columns, count


def _encoder(column: ColumnProfile):
    if column.numeric:
        return lambda value: value
    codes = {value: str(code) for code, value in enumerate(column.categories())}
    return lambda value: codes.get(value, "")


def handler(event, context):
    request = parse_event(event)
    data_bucket = os.environ["DATA_BUCKET"]
    s3 = boto3.client("s3")
    header, label_index, columns, count = _profile(s3, request)
    if count < 10:
        raise TooFewRows(f"{count} data rows; at least 10 are needed to train, validate and test")
    kind, classes = problem_type(columns[label_index])
    label_codes = {value: str(code) for code, value in enumerate(classes)} if classes else None
    feature_indexes = [i for i in range(len(header)) if i != label_index]
    encoders = [_encoder(columns[i]) for i in feature_indexes]

    prefix = layout.run_prefix(request.execution_name)
    targets = {
        "train": f"{prefix}{layout.TRAIN_DIR}train.csv",
        "validation": f"{prefix}{layout.VALIDATION_DIR}validation.csv",
        "test": f"{prefix}{layout.TEST_FEATURES_DIR}test.csv",
        "labels": f"{prefix}{layout.TEST_LABELS}",
    }
    counts = dict.fromkeys(SPLITS, 0)
    assign = splitter(request.ratios, request.seed)
    with ExitStack() as stack:
        files = {name: stack.enter_context(tempfile.TemporaryFile("w+b")) for name in targets}
        writers = {name: csv.writer(io.TextIOWrapper(f, encoding="utf-8", newline="", write_through=True),
                                    lineterminator="\n") for name, f in files.items()}
        rows = _rows(s3, request)
        next(fields for _, fields in rows if fields)            # the header
        for _, fields in rows:
            if not fields:
                continue
            label = fields[label_index]
            label = label_codes[label] if label_codes else label
            features = [encode(fields[i]) for encode, i in zip(encoders, feature_indexes)]
            split = assign()
            counts[split] += 1
            if split == "test":
                writers["test"].writerow(features)
                writers["labels"].writerow([label])
            else:
                writers[split].writerow([label, *features])
        empty = [name for name in SPLITS if counts[name] == 0]
        if empty:
            raise TooFewRows(f"{count} data rows leave the {', '.join(empty)} split empty; add rows or change splitRatios")
        schema = {
            "dataset": f"s3://{request.bucket}/{request.key}",
            "label": {"name": header[label_index], "classes": classes},
            "features": [{"name": header[i], "type": "numeric" if columns[i].numeric else "categorical",
                          **({} if columns[i].numeric else {"categories": columns[i].categories()})}
                         for i in feature_indexes],
            "problem": kind,
            "rows": counts,
        }
        # Every split is complete: upload. A failure above leaves nothing behind.
        for name, key in targets.items():
            files[name].seek(0)
            s3.upload_fileobj(files[name], data_bucket, key, ExtraArgs={"ContentType": "text/csv"})
        s3.put_object(Bucket=data_bucket, Key=f"{prefix}{layout.SCHEMA}",
                      Body=json.dumps(schema, indent=2).encode(), ContentType="application/json")

    hyperparameters = {**objective_hyperparameters(kind, classes),
                       **json.loads(os.environ.get("HYPERPARAMETERS", "{}")),
                       **request.hyperparameters}
    base = f"s3://{data_bucket}/{prefix}"
    return {
        "runName": run_name(os.environ["JOB_NAME_PREFIX"], request.execution_name, request.execution_arn),
        "channels": {"train": f"{base}{layout.TRAIN_DIR}", "validation": f"{base}{layout.VALIDATION_DIR}"},
        "transformInput": f"{base}{layout.TEST_FEATURES_DIR}",
        "predictionsUri": f"{base}{layout.PREDICTIONS_DIR}",
        "checkpointsUri": f"{base}{layout.CHECKPOINTS_DIR}",
        "testLabelsUri": f"{base}{layout.TEST_LABELS}",
        "schemaUri": f"{base}{layout.SCHEMA}",
        "hyperparameters": hyperparameters,
        "objective": hyperparameters["objective"],
        "problem": kind,
        "rows": counts,
    }
