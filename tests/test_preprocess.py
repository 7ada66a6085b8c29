"""The first preprocess handler against moto S3: the plan it returns and its named errors."""
import csv
import gzip
import io
import json
import re

import boto3
import pytest
from moto import mock_aws

from preprocess import errors
from preprocess.handler import handler
from statemachine import framework

BUCKET = "sagestep-dev-data"


@pytest.fixture
def s3(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("DATA_BUCKET", BUCKET)
    monkeypatch.setenv("JOB_NAME_PREFIX", "sagestep-dev")
    monkeypatch.setenv("HYPERPARAMETERS", json.dumps({"max_depth": "4", "eta": "0.3"}))
    monkeypatch.setenv("OBJECTIVES", json.dumps(framework.OBJECTIVES))
    monkeypatch.setenv("QUALITY_GATE", json.dumps(framework.quality_gate("", None)))
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


def read_split(s3, folder, run="Run_1"):
    """Every object a run wrote under one folder, in key order, as one text (a labels object's header
    once, first)."""
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{run}/{folder}/").get("Contents", [])
    texts = [read(s3, item["Key"]) for item in sorted(listing, key=lambda item: item["Key"])
             if item["Key"].endswith(".csv")]
    if folder == "test-labels" and texts:
        header = texts[0].split("\n", 1)[0] + "\n"
        texts = [header] + [text.split("\n", 1)[1] for text in texts]
    return "".join(texts)


def test_binary_dataset_is_split_and_planned(s3):
    rows = ["x,colour,label"] + [f"{i},{'red' if i % 3 else 'blue'},{'yes' if i % 2 else 'no'}" for i in range(200)]
    uri = put(s3, "datasets/d.csv.gz", "\ufeff" + "\r\n".join(rows), compress=True)
    plan = handler(event(uri, hyperparameters={"eta": 0.1}), None)
    assert plan["runName"].startswith("sagestep-dev--run-1-") and len(plan["runName"]) <= 52
    assert plan["hyperparameters"] == {"num_round": "300", "early_stopping_rounds": "20", "checkpoint_interval": "10",
                                       "max_depth": "4", "eta": "0.1", "subsample": "1.0", "min_child_weight": "1",
                                       "tree_method": "hist", "objective": "binary:logistic", "eval_metric": "logloss"}
    assert plan["hyperparameterOrigins"] == {"num_round": "default", "early_stopping_rounds": "default",
                                             "checkpoint_interval": "default", "max_depth": "stack", "eta": "run",
                                             "subsample": "default", "min_child_weight": "default",
                                             "tree_method": "default", "objective": "problem", "eval_metric": "problem"}
    assert sum(plan["rows"].values()) == 200 and min(plan["rows"].values()) > 0
    assert plan["channels"]["train"] == f"s3://{BUCKET}/runs/Run_1/train/"
    train = list(csv.reader(io.StringIO(read_split(s3, "train"))))
    assert len(train) == plan["rows"]["train"] and all(len(r) == 3 and r[0] in ("0", "1") for r in train)
    assert {r[2] for r in train} <= {"0", "1"}          # colours as category codes
    test = list(csv.reader(io.StringIO(read_split(s3, "test-features"))))
    labels = read_split(s3, "test-labels").splitlines()
    assert labels[0] == "label" and set(labels[1:]) == {"no", "yes"}      # class names, as in the predictions
    assert len(test) == len(labels) - 1 == plan["rows"]["test"] and all(len(r) == 2 for r in test)
    schema = json.loads(read(s3, "runs/Run_1/validation/schema.json"))
    train_counts = [sum(r[0] == code for r in train) for code in ("0", "1")]
    assert schema["label"] == {"name": "label", "classes": ["no", "yes"], "trainCounts": train_counts}
    assert schema["ignored"] == [] and schema["id"] is None
    assert schema["features"][1] == {"name": "colour", "type": "categorical", "categories": ["blue", "red"]}


def test_same_input_and_seed_give_identical_bytes(s3):
    uri = put(s3, "datasets/r.csv", "a,b,target\n" + "\n".join(f"{i},{i * 2},{i * 0.5}" for i in range(50)))
    first = handler(event(uri), None)
    first_bytes = read_split(s3, "train")
    second = handler(event(uri), None)
    assert first == second and read_split(s3, "train") == first_bytes
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


@pytest.mark.parametrize("text, in_header", [("a,label\ncafé,1\n", False), ("café,label\n1,1\n", True)])
def test_not_utf8_says_whether_it_is_in_the_header(s3, text, in_header):
    """The plan reads the header row alone: a byte in a data row is its item's to report."""
    s3.put_object(Bucket=BUCKET, Key="datasets/latin1.csv", Body=text.encode("latin-1"))
    with pytest.raises(errors.InvalidEncoding, match="latin1.csv is not UTF-8 text") as caught:
        handler(event(f"s3://{BUCKET}/datasets/latin1.csv"), None)
    assert ("(in the header row)" in str(caught.value)) is in_header


@pytest.mark.parametrize("payload, error", [
    ({}, errors.InvalidExecutionInput),
    ({"datasetUri": "https://example.com/d.csv"}, errors.InvalidDatasetUri),
    ({"datasetUri": "s3://bkt/k.csv", "hyperparameters": {"sagemaker_program": "evil.py"}}, errors.InvalidExecutionInput),
    ({"datasetUri": "s3://bkt/k.csv", "splitRatios": {"train": 1}}, errors.InvalidExecutionInput),
])
def test_bad_execution_input(s3, payload, error):
    with pytest.raises(error):
        handler({**payload, "executionName": "e", "executionArn": "a"}, None)


# ---------------------------------------------------------------- formats and types

def split_rows(s3):
    return {name: list(csv.reader(io.StringIO(read_split(s3, folder)))) for name, folder in (
        ("train", "train"), ("validation", "validation"), ("test", "test-features"), ("labels", "test-labels"))}


def test_quotes_crlf_bom_and_multiline_fields(s3):
    lines = ['"id","city","note","label"']
    for i in range(60):
        city = '"New York, NY"' if i % 3 == 0 else ('"The ""Big"" Smoke"' if i % 3 == 1 else "Paris")
        note = '"two\r\nlines"' if i % 5 == 0 else ""
        lines.append(f"{i},{city},{note},{'yes' if i % 2 else 'no'}")
    uri = put(s3, "datasets/q.csv", "\ufeff" + "\r\n".join(lines) + "\r\n")
    plan = handler(event(uri), None)
    assert sum(plan["rows"].values()) == 60
    schema = json.loads(read(s3, "runs/Run_1/validation/schema.json"))
    city = next(f for f in schema["features"] if f["name"] == "city")
    assert city == {"name": "city", "type": "categorical", "categories": ["New York, NY", "Paris", 'The "Big" Smoke']}
    assert schema["features"][0] == {"name": "id", "type": "numeric"}
    train = split_rows(s3)["train"]
    assert all(len(r) == 4 and r[0] in ("0", "1") and r[2] in ("0", "1", "2") for r in train)


def test_gzip_detected_by_magic_bytes_without_extension(s3):
    text = "a,b,label\n" + "\n".join(f"{i},{i % 7},{i % 2}" for i in range(100)) + "\n"
    uri = put(s3, "datasets/data.bin", text, compress=True)
    assert sum(handler(event(uri), None)["rows"].values()) == 100


def test_missing_values_stay_empty(s3):
    text = "a,b,c,label\n" + "\n".join(f"{'' if i % 4 == 0 else i},{i % 3},{'' if i % 5 == 0 else 'x' if i % 2 else 'y'},{i % 2}"
                                       for i in range(80))
    uri = put(s3, "datasets/missing.csv", text)
    handler(event(uri), None)
    rows = [r for split in ("train", "validation") for r in split_rows(s3)[split]]
    assert any(r[1] == "" for r in rows) and any(r[3] == "" for r in rows)
    assert {r[3] for r in rows} <= {"", "0", "1"}


@pytest.mark.parametrize("labels, objective, classes", [
    (["1", "2"], "binary:logistic", ["1", "2"]),
    (["0", "1", "2", "3"], "multi:softprob", ["0", "1", "2", "3"]),
    (["3", "5", "9"], "multi:softprob", ["3", "5", "9"]),
    (["cat", "dog", "emu"], "multi:softprob", ["cat", "dog", "emu"]),
])
def test_labels_become_class_indices(s3, labels, objective, classes):
    text = "x,label\n" + "\n".join(f"{i},{labels[i % len(labels)]}" for i in range(90))
    plan = handler(event(put(s3, "datasets/l.csv", text)), None)
    assert plan["objective"] == objective
    assert json.loads(read(s3, "runs/Run_1/validation/schema.json"))["label"]["classes"] == classes
    train = split_rows(s3)["train"]
    for row in train:
        assert classes[int(row[0])] == labels[int(row[1]) % len(labels)]


def test_regression_labels_pass_through(s3):
    text = "x,target\n" + "\n".join(f"{i},{i * 1.5 + 0.25}" for i in range(50))
    plan = handler(event(put(s3, "datasets/r.csv", text)), None)
    assert plan["problem"] == "regression" and plan["objective"] == "reg:squarederror"
    assert all(float(r[0]) == float(r[1]) * 1.5 + 0.25 for r in split_rows(s3)["train"])


def test_label_anywhere_is_moved_first(s3):
    text = "a,label,b\n" + "\n".join(f"{i},{i % 2},{i * 10}" for i in range(40))
    handler(event(put(s3, "datasets/mid.csv", text)), None)
    out = split_rows(s3)
    assert all(int(r[2]) == int(r[1]) * 10 and int(r[0]) == int(r[1]) % 2 for r in out["train"])
    assert all(len(r) == 2 for r in out["test"])


def test_a_column_that_turns_to_text_late_is_categorical(s3, monkeypatch):
    import preprocess.csvrows as csvrows
    import preprocess.profile as profile
    monkeypatch.setattr(csvrows, "BATCH", 16)
    monkeypatch.setattr(profile, "NUMBER_VALUES_KEPT", 5)      # its numbers are no longer kept: read it again
    text = "a,b,label\n" + "\n".join(f"{i},{'n/a' if i == 70 else i % 20},{i % 2}" for i in range(100))
    handler(event(put(s3, "datasets/late.csv", text, )), None)
    schema = json.loads(read(s3, "runs/Run_1/validation/schema.json"))
    assert schema["features"][1]["type"] == "categorical" and "n/a" in schema["features"][1]["categories"]


# ---------------------------------------------------------------- determinism and atomicity

def test_split_does_not_depend_on_chunking(s3, monkeypatch):
    import preprocess.source as source
    text = "a,b,label\n" + "\n".join(f"{i},{i * 3},{i % 2}" for i in range(3000))
    uri = put(s3, "datasets/chunks.csv", text)
    handler(event(uri), None)
    first = split_rows(s3)
    monkeypatch.setattr(source, "CHUNK", 997)
    handler(event(uri), None)
    assert split_rows(s3) == first


def test_quoted_and_plain_numbers_write_the_same_bytes(s3):
    body = "\n".join(f"{i % 2},{i},{i * 0.5}" for i in range(500))
    handler(event(put(s3, "datasets/plain.csv", "label,a,b\n" + body)), None)
    plain = split_rows(s3)
    quoted = "\n".join(f'{i % 2},"{i}",{i * 0.5}' for i in range(500))
    handler(event(put(s3, "datasets/quoted.csv", "label,a,b\n" + quoted)), None)
    assert split_rows(s3) == plain


def test_input_is_never_modified(s3):
    uri = put(s3, "datasets/keep.csv", "a,label\n" + "\n".join(f"{i},{i % 2}" for i in range(30)))
    before = s3.head_object(Bucket=BUCKET, Key="datasets/keep.csv")["ETag"]
    handler(event(uri), None)
    assert s3.head_object(Bucket=BUCKET, Key="datasets/keep.csv")["ETag"] == before


def test_a_failure_deep_in_a_large_file_leaves_no_object_and_no_upload(s3, monkeypatch):
    import preprocess.sink as sink
    monkeypatch.setattr(sink, "PART_SIZE", 64 << 10)        # many multipart parts before the bad row
    good = "\n".join(f"{i % 2},{i},{i * 2},{i * 3}" for i in range(40000))
    uri = put(s3, "datasets/late-bad.csv", "label,a,b,c\n" + good + "\n1,2,3\n")
    with pytest.raises(errors.MalformedRow, match="row 40002: expected 4 fields, found 3"):
        handler(event(uri), None)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=BUCKET)


def test_outputs_read_back_as_the_training_script_reads_them(s3, tmp_path, monkeypatch):
    import sys
    from sagestep import ROOT
    sys.path.insert(0, str(ROOT / "training"))
    import train
    text = "size,colour,label\n" + "\n".join(f"{i},{('red', 'blue')[i % 2]},{('no', 'yes')[i % 3 == 0]}" for i in range(200))
    plan = handler(event(put(s3, "datasets/t.csv", text)), None)
    for channel in ("train", "validation"):
        folder = tmp_path / channel
        folder.mkdir()
        for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/Run_1/{channel}/")["Contents"]:
            (folder / obj["Key"].rsplit("/", 1)[1]).write_bytes(s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read())
        monkeypatch.setenv(f"SM_CHANNEL_{channel.upper()}", str(folder))
    x, y = train.read_channel("train")
    assert x.shape == (plan["rows"]["train"], 2) and set(y) <= {0.0, 1.0}
    assert set(x[:, 1]) <= {0.0, 1.0}


# ---------------------------------------------------------------- limits

def test_a_gzip_shard_too_large_for_one_lambda_is_refused_before_any_work(s3):
    class Context:
        def get_remaining_time_in_millis(self):
            return 20
    uri = put(s3, "datasets/big.csv.gz", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(100_000)), compress=True)
    with pytest.raises(errors.DatasetTooLarge, match=r"gzip, which cannot be cut into byte ranges.*several \.gz shards"):
        handler(event(uri), Context())
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_too_many_categories(s3, monkeypatch):
    import preprocess.profile as profile
    monkeypatch.setattr(profile, "MAX_CATEGORIES", 50)
    uri = put(s3, "datasets/ids.csv", "user,label\n" + "\n".join(f"u{i % 60},{i % 2}" for i in range(200)))
    with pytest.raises(errors.TooManyCategories, match="column 'user' has more than 50 .* ignoreColumns"):
        handler(event(uri), None)


def test_truncated_gzip(s3):
    data = gzip.compress(("a,label\n" + "1,0\n" * 1000).encode())[:-20]
    s3.put_object(Bucket=BUCKET, Key="datasets/cut.csv.gz", Body=data)
    with pytest.raises(errors.InvalidEncoding, match="gzip"):
        handler(event(f"s3://{BUCKET}/datasets/cut.csv.gz"), None)


def test_a_function_deployed_without_the_stack_s_environment_says_so(s3, monkeypatch):
    monkeypatch.delenv("OBJECTIVES")
    with pytest.raises(errors.FunctionMisconfigured, match="the function's environment has no OBJECTIVES"):
        handler(event("s3://sagestep-dev-data/datasets/x.csv"), None)


@pytest.mark.parametrize("text, hint", [("a;b;label\n1;2;0\n", "holding semicolons"),
                                        ("a\tb\tlabel\n1\t2\t0\n", "holding tabs")])
def test_a_file_with_another_delimiter_is_named(s3, text, hint):
    put(s3, "datasets/semi.csv", text)
    with pytest.raises(errors.MissingLabelColumn, match=f"{hint}: the dataset must be comma-separated"):
        handler(event(f"s3://{BUCKET}/datasets/semi.csv"), None)


def test_a_label_that_looks_like_an_identifier_is_refused_before_training(s3):
    rows = "\n".join(f"{i},{i % 3},cust-{i:04d}" for i in range(40))
    put(s3, "datasets/ids.csv", "a,b,customerID\n" + rows + "\n")
    with pytest.raises(errors.InvalidLabel, match="label column 'customerID' looks like an identifier: "
                                                  "40 distinct values in 40 rows"):
        handler(event(f"s3://{BUCKET}/datasets/ids.csv", labelColumn="customerID"), None)
    assert s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/").get("KeyCount", 0) == 0, "nothing written"


# ---------------------------------------------------------------- columns that are not features

def schema_of(s3):
    return json.loads(read(s3, "runs/Run_1/validation/schema.json"))


def test_a_text_column_of_distinct_values_is_left_out_as_an_identifier(s3):
    text = "customer,plan,label\n" + "\n".join(f"C-{i:05d},{('basic', 'pro')[i % 2]},{i % 3 == 0}" for i in range(300))
    plan = handler(event(put(s3, "datasets/churn.csv", text)), None)
    schema = schema_of(s3)
    assert [f["name"] for f in schema["features"]] == ["plan"]
    assert schema["ignored"] == [{"name": "customer", "reason": "identifier: 300 distinct values in 300 rows"}]
    assert plan["ignoredColumns"] == schema["ignored"]
    assert all(len(row) == 2 for row in split_rows(s3)["train"])


def test_a_dataset_whose_every_feature_is_an_identifier_is_refused_before_any_split(s3):
    text = "customer,label\n" + "\n".join(f"C-{i:05d},{i % 3 == 0}" for i in range(300))
    with pytest.raises(errors.MissingLabelColumn, match="every feature column looks like an identifier "
                       r"\(customer: identifier: 300 distinct values in 300 rows\); there is nothing to learn from"):
        handler(event(put(s3, "datasets/ids.csv", text)), None)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


@pytest.mark.parametrize("values, left_out", [
    # the first batch repeats one value, the rest are all distinct: found at the end, the pass restarts
    (lambda i: "same" if i < 16 else f"id{i}", True),
    # the first batch is all distinct, later rows repeat it: a category after all
    (lambda i: f"v{i % 16}", False),
])
def test_identifier_columns_are_judged_on_the_whole_file(s3, monkeypatch, values, left_out):
    import preprocess.csvrows as csvrows
    monkeypatch.setattr(csvrows, "BATCH", 16)
    text = "x,code,label\n" + "\n".join(f"{i},{values(i)},{i % 2}" for i in range(400))
    handler(event(put(s3, "datasets/late-id.csv", text)), None)
    schema = schema_of(s3)
    assert ("code" in [f["name"] for f in schema["features"]]) is not left_out
    assert [c["name"] for c in schema["ignored"]] == (["code"] if left_out else [])


@pytest.mark.parametrize("quote", ["", '"'])
def test_id_and_ignored_columns_stay_out_of_the_features_and_the_id_joins_the_labels(s3, quote):
    rows = {f"{1000 + i}": (i % 3, i * 2, i % 7, i % 2) for i in range(300)}
    text = "id,a,noise,b,label\n" + "\n".join(f"{key},{quote}{a}{quote},{n},{b},{label}"
                                              for key, (a, n, b, label) in rows.items())
    plan = handler(event(put(s3, "datasets/ids.csv", text), idColumn="id", ignoreColumns=["noise"]), None)
    schema = schema_of(s3)
    assert [f["name"] for f in schema["features"]] == ["a", "b"] and schema["id"] == "id"
    assert schema["ignored"] == [{"name": "id", "reason": "idColumn"}, {"name": "noise", "reason": "ignoreColumns"}]
    out = split_rows(s3)
    assert out["labels"][0] == ["id", "label"] and len(out["labels"]) == plan["rows"]["test"] + 1
    for (key, label), features in zip(out["labels"][1:], out["test"]):
        a, _, b, truth = rows[key]
        assert features == [str(a), str(b)] and label == str(truth)
    assert all(len(row) == 3 for row in out["train"])


def test_class_names_that_need_quotes_are_quoted_in_the_labels(s3):
    text = "x,label\n" + "\n".join(f'{i},"{("a, b", "c")[i % 2]}"' for i in range(60))
    handler(event(put(s3, "datasets/commas.csv", text)), None)
    assert {row[0] for row in split_rows(s3)["labels"][1:]} == {"a, b", "c"}


def test_regression_records_the_train_mean_for_the_baseline(s3):
    handler(event(put(s3, "datasets/reg.csv", "x,target\n" + "\n".join(f"{i},{i * 1.5}" for i in range(300)))), None)
    train = split_rows(s3)["train"]
    assert schema_of(s3)["label"]["trainMean"] == pytest.approx(sum(float(r[0]) for r in train) / len(train))


@pytest.mark.parametrize("label, refused", [
    (lambda i: i + 1, True),                      # a row number
    (lambda i: 10_000 + 3 * (299 - i), True),     # ids in any order, with gaps
    (lambda i: 100_000 + i * 977, False),         # distinct whole numbers spread wide: prices, not ids
    (lambda i: i // 2, False),                    # repeats: not an identifier
])
def test_a_numeric_label_that_looks_like_an_identifier_is_refused(s3, label, refused):
    uri = put(s3, "datasets/numid.csv", "x,target\n" + "\n".join(f"{i % 7},{label(i)}" for i in range(300)))
    if refused:
        with pytest.raises(errors.InvalidLabel, match="looks like an identifier: 300 distinct whole numbers"):
            handler(event(uri), None)
        assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")
    else:
        assert handler(event(uri), None)["objective"] == "reg:squarederror"


@pytest.mark.parametrize("extra, error, message", [
    ({"idColumn": "nope"}, errors.UnknownColumn, "idColumn 'nope' is not a column; columns: a, b, label"),
    ({"ignoreColumns": ["a", "zz"]}, errors.UnknownColumn, "ignoreColumns 'zz' is not a column"),
    ({"ignoreColumns": "a"}, errors.InvalidExecutionInput, "ignoreColumns must be a list of column names"),
    ({"idColumn": 3}, errors.InvalidExecutionInput, "idColumn must be a column name"),
    ({"ignoreColumns": ["label"]}, errors.InvalidExecutionInput, "ignoreColumns names 'label', the label column"),
    ({"labelColumn": "b", "idColumn": "b"}, errors.InvalidExecutionInput, "cannot also be idColumn"),
    ({"idColumn": "a", "ignoreColumns": ["b"]}, errors.MissingLabelColumn, "no feature column once idColumn"),
])
def test_bad_column_choices_are_named(s3, extra, error, message):
    uri = put(s3, "datasets/cols.csv", "a,b,label\n" + "\n".join(f"{i},{i % 5},{i % 2}" for i in range(40)))
    with pytest.raises(error, match=message.replace("(", r"\(")):
        handler(event(uri, **extra), None)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


# ---------------------------------------------------------------- the quality gate a run carries

@pytest.mark.parametrize("stack, extra, gate", [
    (("", None), {}, {"metric": "", "threshold": 0, "maximize": True, "comparison": ">="}),
    (("validation:logloss", 0.3), {}, {"metric": "validation:logloss", "threshold": 0.3, "maximize": False,
                                        "comparison": "<="}),
    (("validation:logloss", 0.3), {"qualityMetric": ""}, {"metric": "", "threshold": 0, "maximize": True,
                                                          "comparison": ">="}),
    (("", None), {"qualityMetric": "validation:auc", "qualityThreshold": 0.75, "hyperparameters": {"eval_metric": "logloss,auc"}},
     {"metric": "validation:auc", "threshold": 0.75, "maximize": True, "comparison": ">="}),
    (("validation:logloss", 0.3), {"qualityThreshold": 0.2}, {"metric": "validation:logloss", "threshold": 0.2,
                                                               "maximize": False, "comparison": "<="}),
])
def test_the_run_s_gate_is_the_input_s_over_the_stack_s(s3, monkeypatch, stack, extra, gate):
    monkeypatch.setenv("QUALITY_GATE", json.dumps(framework.quality_gate(*stack)))
    uri = put(s3, "datasets/g.csv", "x,label\n" + "\n".join(f"{i},{i % 2}" for i in range(60)))
    assert handler(event(uri, **extra), None)["gate"] == gate


@pytest.mark.parametrize("extra, error, message", [
    ({"qualityThreshold": "high"}, errors.InvalidExecutionInput, 'qualityThreshold must be a number, got "high"'),
    ({"qualityMetric": 5}, errors.InvalidExecutionInput, "qualityMetric must be a metric name"),
    ({"qualityMetric": "validation:nope", "qualityThreshold": 1}, errors.InvalidQualityGate,
     "is not one of the image's validation metrics"),
    ({"qualityMetric": "validation:rmse", "qualityThreshold": 1}, errors.InvalidQualityGate,
     "qualityMetric 'validation:rmse' is not a metric a binary run reports (objective binary:logistic); it can gate "
     "on validation:<logloss, auc, aucpr, error, map, ndcg>"),
    ({"qualityMetric": "validation:logloss"}, errors.InvalidQualityGate, "needs a qualityThreshold"),
    ({"qualityThreshold": 0.9}, errors.InvalidQualityGate, "qualityThreshold needs a qualityMetric"),
])
def test_a_gate_no_run_can_meet_is_refused_and_nothing_is_written(s3, extra, error, message):
    uri = put(s3, "datasets/g.csv", "x,label\n" + "\n".join(f"{i},{i % 2}" for i in range(60)))
    with pytest.raises(error, match=re.escape(message)):
        handler(event(uri, **extra), None)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


@pytest.mark.parametrize("extra, eval_metric", [
    ({"qualityMetric": "validation:auc", "qualityThreshold": 0.7}, "auc,logloss"),
    ({"qualityMetric": "validation:auc", "qualityThreshold": 0.7, "hyperparameters": {"eval_metric": "error,logloss"}},
     "error,auc,logloss"),
    ({"qualityMetric": "validation:error", "qualityThreshold": 0.3, "hyperparameters": {"eval_metric": "error"}},
     "error"),
])
def test_a_gate_metric_the_problem_reports_is_added_before_the_metric_early_stopping_watches(s3, extra, eval_metric):
    uri = put(s3, "datasets/g.csv", "x,label\n" + "\n".join(f"{i},{i % 2}" for i in range(60)))
    plan = handler(event(uri, **extra), None)
    assert plan["hyperparameters"]["eval_metric"] == eval_metric
    assert plan["hyperparameterOrigins"]["eval_metric"] == ("run" if eval_metric == "error" else "gate")


def test_a_gate_metric_a_regression_cannot_report_is_refused_before_any_job(s3):
    uri = put(s3, "datasets/r.csv", "x,y\n" + "\n".join(f"{i},{i * 1.37}" for i in range(60)))
    with pytest.raises(errors.InvalidQualityGate, match=re.escape(
            "qualityMetric 'validation:auc' is not a metric a regression run reports (objective reg:squarederror); "
            "it can gate on validation:<rmse, mae, mape, mphe, rmsle>")):
        handler(event(uri, labelColumn="y", qualityMetric="validation:auc", qualityThreshold=0.7), None)


@pytest.mark.parametrize("hyperparameters, message", [
    ({"max_dept": 3}, "the execution input's hyperparameters: max_dept is not a hyperparameter XGBoost 3.0.5 or "
                      "train.py knows (did you mean max_depth?)"),
    ({"foo_bar": 1}, "the execution input's hyperparameters: foo_bar is not a hyperparameter XGBoost 3.0.5 or "
                     "train.py knows"),
    ({"max_depth": -3}, "the execution input's hyperparameters: max_depth must be a whole number ≥ 0, got '-3'"),
    ({"eta": "abc"}, "the execution input's hyperparameters: eta must be a number ≥ 0, got 'abc'"),
    ({"objective": "reg:squarederror"}, "the execution input's hyperparameters: objective reg:squarederror does not "
                                        "fit a binary label; a binary label takes binary:logistic"),
])
def test_a_run_s_hyperparameters_are_checked_before_any_job_and_nothing_is_written(s3, hyperparameters, message):
    uri = put(s3, "datasets/h.csv", "x,label\n" + "\n".join(f"{i},{'yes' if i % 2 else 'no'}" for i in range(60)))
    with pytest.raises(errors.InvalidHyperparameter, match="^" + re.escape(message)):
        handler(event(uri, hyperparameters=hyperparameters), None)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_the_stack_s_objective_that_contradicts_the_labels_is_named_as_the_stack_s(s3, monkeypatch):
    monkeypatch.setenv("HYPERPARAMETERS", json.dumps({"objective": "count:poisson"}))
    uri = put(s3, "datasets/h.csv", "x,label\n" + "\n".join(f"{i},{'yes' if i % 2 else 'no'}" for i in range(60)))
    with pytest.raises(errors.InvalidHyperparameter, match="^the stack's hyperparameters: objective count:poisson "
                                                           "does not fit a binary label"):
        handler(event(uri), None)


@pytest.mark.parametrize("body, kind", [
    ('[{"x": 1, "label": 0}, {"x": 2, "label": 1}]', "JSON (or JSON Lines)"),
    ('{"x": 1, "label": 0}\n{"x": 2, "label": 1}\n', "JSON (or JSON Lines)"),
])
def test_a_dataset_that_is_not_csv_is_named_before_any_work(s3, body, kind):
    uri = put(s3, "datasets/export.csv", body, compress=True)
    with pytest.raises(errors.NotCsv, match=re.escape(f"s3://{BUCKET}/datasets/export.csv is not a CSV file: it looks "
                                                      f"like {kind}; export it as CSV with a header row")):
        handler(event(uri), None)
    assert "Contents" not in s3.list_objects_v2(Bucket=BUCKET, Prefix="runs/")


def test_a_parquet_file_named_csv_is_named(s3):
    s3.put_object(Bucket=BUCKET, Key="datasets/p.csv", Body=b"PAR1\x15\x04\x15\x10\x00\x00PAR1")
    with pytest.raises(errors.NotCsv, match="it looks like a Parquet file"):
        handler(event(f"s3://{BUCKET}/datasets/p.csv"), None)
