"""The first preprocess handler against moto S3: the plan it returns and its named errors."""
import csv
import gzip
import io
import json

import boto3
import pytest
from moto import mock_aws

from preprocess import errors
from preprocess.handler import handler

BUCKET = "sagestep-dev-data"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    monkeypatch.setenv("JOB_NAME_PREFIX", "sagestep-dev")
    monkeypatch.setenv("HYPERPARAMETERS", json.dumps({"max_depth": "4", "eta": "0.3"}))
    with mock_aws():
        client = boto3.client("s3")
        client.create_bucket(Bucket=BUCKET)
        yield client


def put(s3, key, text, compress=False):
    body = text.encode()
    s3.put_object(Bucket=BUCKET, Key=key, Body=gzip.compress(body) if compress else body)
    return f"s3://{BUCKET}/{key}"


def event(uri, **extra):
    return {"datasetUri": uri, "executionName": "Run_1", "executionArn": "arn:aws:states:::execution:sm:Run_1", **extra}


def read(s3, key):
    return s3.get_object(Bucket=BUCKET, Key=key)["Body"].read().decode()


def test_binary_dataset_is_split_and_planned(s3):
    rows = ["x,colour,label"] + [f"{i},{'red' if i % 3 else 'blue'},{'yes' if i % 2 else 'no'}" for i in range(200)]
    uri = put(s3, "datasets/d.csv.gz", "\ufeff" + "\r\n".join(rows), compress=True)
    plan = handler(event(uri, hyperparameters={"eta": 0.1}), None)
    assert plan["runName"].startswith("sagestep-dev-run-1-") and len(plan["runName"]) <= 52
    assert plan["hyperparameters"] == {"objective": "binary:logistic", "eval_metric": "logloss",
                                       "max_depth": "4", "eta": "0.1"}
    assert sum(plan["rows"].values()) == 200 and min(plan["rows"].values()) > 0
    assert plan["channels"]["train"] == f"s3://{BUCKET}/runs/Run_1/train/"
    train = list(csv.reader(io.StringIO(read(s3, "runs/Run_1/train/train.csv"))))
    assert len(train) == plan["rows"]["train"] and all(len(r) == 3 and r[0] in ("0", "1") for r in train)
    assert {r[2] for r in train} <= {"0", "1"}          # colours as category codes
    test = list(csv.reader(io.StringIO(read(s3, "runs/Run_1/test-features/test.csv"))))
    labels = read(s3, "runs/Run_1/test-labels.csv").splitlines()
    assert len(test) == len(labels) == plan["rows"]["test"] and all(len(r) == 2 for r in test)
    schema = json.loads(read(s3, "runs/Run_1/train/schema.json"))
    assert schema["label"] == {"name": "label", "classes": ["no", "yes"]}
    assert schema["features"][1] == {"name": "colour", "type": "categorical", "categories": ["blue", "red"]}


def test_same_input_and_seed_give_identical_bytes(s3):
    uri = put(s3, "datasets/r.csv", "a,b,target\n" + "\n".join(f"{i},{i * 2},{i * 0.5}" for i in range(50)))
    first = handler(event(uri), None)
    first_bytes = read(s3, "runs/Run_1/train/train.csv")
    second = handler(event(uri), None)
    assert first == second and read(s3, "runs/Run_1/train/train.csv") == first_bytes
    assert first["objective"] == "reg:squarederror"


def test_multiclass_string_labels(s3):
    uri = put(s3, "datasets/m.csv", "f,species\n" + "\n".join(f"{i},{('a', 'b', 'c')[i % 3]}" for i in range(60)))
    plan = handler(event(uri, labelColumn="species"), None)
    assert plan["hyperparameters"]["objective"] == "multi:softprob" and plan["hyperparameters"]["num_class"] == "3"


@pytest.mark.parametrize("text, key, error, fragment", [
    (None, "datasets/missing.csv", errors.DatasetNotFound, "does not exist"),
    ("", "datasets/empty.csv", errors.EmptyDataset, "empty"),
    ("a,b\n1,2\n", "datasets/nolabel.csv", errors.MissingLabelColumn, "set labelColumn"),
    ("a,label\n1,0\n2\n", "datasets/short.csv", errors.MalformedRow, "row 3: expected 2 fields, found 1"),
    ("a,label\n1,\n", "datasets/nolabel2.csv", errors.InvalidLabel, "row 2"),
    ("a,label\n" + "1,x\n" * 20, "datasets/oneclass.csv", errors.InvalidLabel, "1 distinct value"),
    ("a,label\n1,0\n2,1\n", "datasets/tiny.csv", errors.TooFewRows, "at least 10"),
])
def test_bad_datasets_raise_named_errors_and_write_nothing(s3, text, key, error, fragment):
    uri = f"s3://{BUCKET}/{key}" if text is None else put(s3, key, text)
    with pytest.raises(error) as caught:
        handler(event(uri), None)
    assert fragment in str(caught.value)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_not_utf8(s3):
    s3.put_object(Bucket=BUCKET, Key="datasets/latin1.csv", Body="a,label\ncafé,1\n".encode("latin-1"))
    with pytest.raises(errors.InvalidEncoding, match="is not UTF-8 text"):
        handler(event(f"s3://{BUCKET}/datasets/latin1.csv"), None)


@pytest.mark.parametrize("payload, error", [
    ({}, errors.InvalidExecutionInput),
    ({"datasetUri": "https://example.com/d.csv"}, errors.InvalidDatasetUri),
    ({"datasetUri": "s3://bkt/k.csv", "hyperparameters": {"sagemaker_program": "evil.py"}}, errors.InvalidExecutionInput),
    ({"datasetUri": "s3://bkt/k.csv", "splitRatios": {"train": 1}}, errors.InvalidExecutionInput),
])
def test_bad_execution_input(s3, payload, error):
    with pytest.raises(error):
        handler({**payload, "executionName": "e", "executionArn": "a"}, None)
