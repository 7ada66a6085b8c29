"""Datasets as many objects: shards under a prefix, large objects cut into byte ranges, the two-phase
preprocess (profile, merge, split) run item by item in any order, as the Distributed Maps run them."""
import json
import random

import boto3
import pytest

from preprocess import errors, layout
from preprocess.handler import handler
from tests.test_preprocess import BUCKET, put, s3  # noqa: F401  (s3 is a fixture)

def event(uri, run="Run_1", **extra):
    return {"datasetUri": uri, "executionName": run, "executionArn": f"arn:aws:states:::execution:sm:{run}", **extra}


def objects(s3, run="Run_1", under=""):
    listing = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"runs/{run}/{under}").get("Contents", [])
    return {item["Key"][len(f"runs/{run}/"):]: s3.get_object(Bucket=BUCKET, Key=item["Key"])["Body"].read()
            for item in listing}


def data_files(s3, run="Run_1"):
    """What the jobs read, folder by folder, the objects of each concatenated in key order (the header of
    each labels object once)."""
    found = objects(s3, run)
    out = {}
    for folder in ("train", "validation", "test-features", "test-labels"):
        parts = [body for key, body in sorted(found.items()) if key.startswith(f"{folder}/") and key.endswith(".csv")]
        if folder == "test-labels":
            parts = parts[:1] + [body.split(b"\n", 1)[1] for body in parts[1:]]
        out[folder] = b"".join(parts)
    return out


def run_in_phases(uri, run="Run_1", order=lambda items: items, **extra):
    """The state machine's sequence, each Map's items in the given order (concurrency reorders them); the
    split Map over the items the merge lists, when there is one."""
    planned = handler({**event(uri, run, **extra), "action": "plan"}, None)
    s3 = boto3.client("s3")
    items = json.loads(s3.get_object(Bucket=BUCKET, Key=planned["itemsKey"])["Body"].read())
    for item in order(items):
        handler({"action": "profile", "executionName": run, "item": item}, None)
    merged = handler({"action": "merge", "executionName": run}, None)
    to_split = json.loads(s3.get_object(Bucket=BUCKET, Key=merged["splitItemsKey"])["Body"].read())
    assert len(to_split) == merged["splitItems"]
    for item in order(to_split):
        handler({"action": "split", "executionName": run, "item": item}, None)
    return planned, handler({"action": "finish", "executionName": run}, None)


def sharded(s3):
    """Mixed plain and gzip shards; 'teal' (a category) and 'c' (a class) appear only in the last one."""
    header = "colour,size,label\n"
    put(s3, "datasets/clicks/part-0.csv", header + "".join(f"red,{i},{'ab'[i % 2]}\n" for i in range(40)))
    put(s3, "datasets/clicks/part-1.csv.gz", header + "".join(f"blue,{i},{'ab'[i % 2]}\n" for i in range(40)), True)
    put(s3, "datasets/clicks/part-2.csv", header)                                 # a header and no rows
    put(s3, "datasets/clicks/part-3.csv", "")                                     # empty
    put(s3, "datasets/clicks/_SUCCESS", "")
    put(s3, "datasets/clicks/part-4.csv.gz", header + "".join(f"teal,{i},c\n" for i in range(40)), True)
    return f"s3://{BUCKET}/datasets/clicks/"


def test_a_prefix_of_mixed_shards_is_one_dataset_with_codes_from_every_shard(s3):
    planned, result = run_in_phases(sharded(s3))
    assert planned["objects"] == 4 and planned["items"] == 4         # the empty object and _SUCCESS are no shards
    schema = json.loads(objects(s3)["validation/schema.json"])
    assert schema["label"]["classes"] == ["a", "b", "c"] and schema["problem"] == "multiclass"
    assert schema["features"][0] == {"name": "colour", "type": "categorical", "categories": ["blue", "red", "teal"]}
    assert sum(result["rows"].values()) == 120 and result["shards"] == 4
    files = data_files(s3)
    train = [line.split(",") for line in files["train"].decode().splitlines()]
    assert {(row[0], row[1]) for row in train} == {("0", "1"), ("1", "1"), ("0", "0"), ("1", "0"), ("2", "2")}
    labels = files["test-labels"].decode().splitlines()
    assert labels[0] == "label" and set(labels[1:]) <= {"a", "b", "c"}


def test_codes_and_bytes_do_not_depend_on_the_order_items_run_in(s3):
    uri = sharded(s3)
    run_in_phases(uri, "Forward")
    run_in_phases(uri, "Backward", order=lambda items: items[::-1])
    run_in_phases(uri, "Shuffled", order=lambda items: random.Random(7).sample(items, len(items)))
    forward = data_files(s3, "Forward")
    assert data_files(s3, "Backward") == forward == data_files(s3, "Shuffled")
    assert objects(s3, "Forward")["validation/schema.json"] == objects(s3, "Backward")["validation/schema.json"]


def test_a_shard_with_another_header_is_named_and_nothing_is_left(s3):
    uri = sharded(s3)
    put(s3, "datasets/clicks/part-5.csv", "colour,weight,label\nred,1,a\n")
    with pytest.raises(errors.HeaderMismatch, match=r"s3://sagestep-dev-data/datasets/clicks/part-5\.csv has the header "
                                                    r"'colour,weight,label', but the dataset's first shard has "
                                                    r"'colour,size,label'"):
        handler(event(uri), None)
    assert objects(s3) == {}


def test_a_folder_without_the_slash_is_the_prefix(s3):
    sharded(s3)
    assert sum(handler(event(f"s3://{BUCKET}/datasets/clicks"), None)["rows"].values()) == 120


def test_a_prefix_without_shards_is_not_found(s3):
    with pytest.raises(errors.DatasetNotFound, match="holds no dataset shard"):
        handler(event(f"s3://{BUCKET}/datasets/nothing/"), None)


def text_dataset(rows=3000):
    lines = ["id,city,amount,label"]
    for i in range(rows):
        city = ('"New York, NY"', "Paris", '"Say ""hi"""')[i % 3]
        lines.append(f"{i},{city},{i * 0.25},{('yes', 'no')[i % 7 == 0]}")
    return "\r\n".join(lines) + "\r\n"


def features(files: dict) -> list[bytes]:
    """Every row's features as written, train, validation and test together, sorted."""
    rows = files["train"].splitlines() + files["validation"].splitlines()
    return sorted([row.partition(b",")[2] for row in rows] + files["test-features"].splitlines())


@pytest.mark.parametrize("range_bytes", [1000, 4096, 12345])
def test_one_object_cut_in_byte_ranges_holds_every_row_once_and_splits_the_same_in_any_order(s3, monkeypatch,
                                                                                            range_bytes):
    uri = put(s3, "datasets/big.csv", "\ufeff" + text_dataset(1000))
    run_in_phases(uri, "Whole")
    monkeypatch.setattr(layout, "RANGE_BYTES", range_bytes)
    planned, _ = run_in_phases(uri, "Ranged", order=lambda items: items[::-1])
    run_in_phases(uri, "Forward")
    assert planned["items"] > 2 and planned["ranged"] == planned["items"]
    assert data_files(s3, "Ranged") == data_files(s3, "Forward")
    assert features(data_files(s3, "Ranged")) == features(data_files(s3, "Whole"))
    whole, first = objects(s3, "Whole"), objects(s3, "Ranged", "train/part-00000")
    first_rows = first["train/part-00000-000.csv"].splitlines()   # the first range draws the seed's own stream
    assert whole["train/part-00000-000.csv"].splitlines()[:len(first_rows)] == first_rows


def test_ranges_cut_exactly_at_a_line_break_lose_and_repeat_nothing(s3, monkeypatch):
    line = "1,2,0\n"                                      # every range boundary falls on a line break or after one
    uri = put(s3, "datasets/even.csv", "a,b,label\n" + line.replace("0\n", "1\n") * 5 + line * 35)
    run_in_phases(uri, "Whole")
    for size in (6, 10, 12):
        monkeypatch.setattr(layout, "RANGE_BYTES", size)
        run_in_phases(uri, f"R{size}")
        assert features(data_files(s3, f"R{size}")) == features(data_files(s3, "Whole"))


def test_a_quoted_line_break_in_a_ranged_object_is_refused_by_name(s3, monkeypatch):
    lines = ["note,amount,label"] + [f"plain,{i},{i % 2}" for i in range(200)]
    lines[150] = '"two\nlines",1,0'
    uri = put(s3, "datasets/notes.csv", "\n".join(lines) + "\n")
    monkeypatch.setattr(layout, "RANGE_BYTES", 512)
    with pytest.raises(errors.MultilineRecord, match=r"notes\.csv \(bytes \d+-\d+\): a quoted field holds a line break"):
        handler(event(uri), None)
    assert objects(s3) == {}
    monkeypatch.setattr(layout, "RANGE_BYTES", 1 << 20)     # whole, the same file is fine
    assert sum(handler(event(uri), None)["rows"].values()) == 200


def test_a_bad_row_deep_in_a_later_shard_names_the_shard_and_row_and_leaves_nothing(s3):
    header = "a,b,label\n"
    put(s3, "datasets/bad/p0.csv", header + "".join(f"{i},{i},{i % 2}\n" for i in range(50)))
    put(s3, "datasets/bad/p1.csv", header + "".join(f"{i},{i},{i % 2}\n" for i in range(30)) + "1,2\n")
    with pytest.raises(errors.MalformedRow, match=r"bad/p1\.csv, row 32: expected 3 fields, found 2"):
        handler(event(f"s3://{BUCKET}/datasets/bad/"), None)
    assert objects(s3) == {}


def test_a_column_text_in_one_shard_and_many_numbers_in_another_is_named(s3, monkeypatch):
    import preprocess.profile as profile
    monkeypatch.setattr(profile, "NUMBER_VALUES_KEPT", 10)
    put(s3, "datasets/mixed/p0.csv", "code,label\n" + "".join(f"{i},{i % 2}\n" for i in range(40)))
    put(s3, "datasets/mixed/p1.csv", "code,label\n" + "".join(f"x{i % 3},{i % 2}\n" for i in range(40)))
    with pytest.raises(errors.MixedColumn, match=r"column 'code' holds text in .*p1\.csv but more than 10 distinct "
                                                 r"numbers in .*p0\.csv"):
        handler(event(f"s3://{BUCKET}/datasets/mixed/"), None)


@pytest.mark.parametrize("hosts, instances", [(3, 1), (1, 2), (2, 4)])
def test_train_and_test_rows_are_dealt_to_one_object_per_host_and_instance(s3, monkeypatch, hosts, instances):
    uri = put(s3, "datasets/deal.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(400)))
    run_in_phases(uri, "One")
    monkeypatch.setenv("TRAINING_HOSTS", str(hosts))
    monkeypatch.setenv("TRANSFORM_INSTANCES", str(instances))
    run_in_phases(uri, "Many")
    found = objects(s3, "Many")
    assert sorted(key for key in found if key.startswith("train/")) == [
        f"train/part-00000-{k:03d}.csv" for k in range(hosts)]
    tests = sorted(key for key in found if key.startswith("test-features/"))
    assert [key.replace("test-features", "test-labels") for key in tests] == sorted(
        key for key in found if key.startswith("test-labels/")) and len(tests) == instances
    one = data_files(s3, "One")
    many_train = sorted(b"".join(found[f"train/part-00000-{k:03d}.csv"] for k in range(hosts)).splitlines())
    assert many_train == sorted(one["train"].splitlines())
    for key in tests:                                 # each features object pairs with its labels object
        rows = found[key].decode().splitlines()
        labels = found[key.replace("test-features", "test-labels")].decode().splitlines()
        assert labels[0] == "label" and len(labels) == len(rows) + 1
        assert all(label == ("1" if int(row) % 2 else "0") for row, label in zip(rows, labels[1:]))


def test_the_numeric_fast_path_profiles_as_the_csv_module_does(tmp_path):
    from preprocess.numeric import numeric_blocks, profile_numeric
    from preprocess.plan import Columns
    from preprocess.profile import NUMBER_VALUES_KEPT, profile_item, profile_with_restarts
    from preprocess.shards import data_batches
    header = ["a", "label", "id", "b"]
    text = "a,label,id,b\r\n" + "".join(f"{i % 7},{i % 3},{i},{i * 0.5}\r\n" for i in range(3000)) + "\r\n5,1,9999,\r\n"
    columns = Columns(tuple(header), label=1, id=2)
    fast = profile_numeric(numeric_blocks([text.encode()], "x", header, header), columns, "x", NUMBER_VALUES_KEPT)
    general = profile_with_restarts(lambda text_columns: profile_item(data_batches([text.encode()], "x", header), columns,
                                                                      "x", text_columns))
    assert fast == general and fast["rows"] == 3001 and fast["columns"]["0"]["values"] == [str(i) for i in range(7)]


def test_a_quote_deep_in_a_numeric_item_hands_it_to_the_csv_module(s3, monkeypatch):
    import preprocess.source as source
    monkeypatch.setattr(source, "CHUNK", 4096)
    body = "".join(f"{i % 2},{i},{i * 0.5}\n" for i in range(3000))
    plain = put(s3, "datasets/plain.csv", "label,a,b\n" + body)
    late = put(s3, "datasets/late.csv", "label,a,b\n" + body.replace("1,2999,", '1,"2999",'))
    run_in_phases(plain, "Plain")
    run_in_phases(late, "Late")
    assert data_files(s3, "Late") == data_files(s3, "Plain")
    assert s3.list_multipart_uploads(Bucket=BUCKET).get("Uploads") is None, "the fast path's parts were aborted"


def test_a_direct_call_that_reuses_an_execution_name_starts_afresh(s3):
    sharded(s3)
    first = handler(event(f"s3://{BUCKET}/datasets/clicks/"), None)
    single = put(s3, "datasets/one.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    second = handler(event(single), None)
    assert first["shards"] == 4 and second["shards"] == 1 and sum(second["rows"].values()) == 50
    assert not [key for key in objects(s3) if key.startswith("train/part-00003")], "nothing of the first run"


def test_an_object_replaced_during_the_run_fails_rather_than_mixing_versions(s3):
    uri = put(s3, "datasets/moving.csv", "a,label\n" + "".join(f"{i},{i % 2}\n" for i in range(50)))
    planned = handler({**event(uri), "action": "plan"}, None)
    put(s3, "datasets/moving.csv", "a,label\n" + "".join(f"{i},{i % 3}\n" for i in range(60)))
    (item,) = json.loads(s3.get_object(Bucket=BUCKET, Key=planned["itemsKey"])["Body"].read())
    with pytest.raises(errors.DatasetChanged, match=r"moving\.csv changed while the run read it"):
        handler({"action": "profile", "executionName": "Run_1", "item": item}, None)


def test_an_item_that_fails_on_something_else_is_named_and_its_run_discarded(s3, monkeypatch):
    import preprocess.handler as handler_module
    original = handler_module.split_any

    def failing(open_chunks, where, *args):
        if where.endswith("part-1.csv.gz"):
            raise RuntimeError("the disk is full")
        return original(open_chunks, where, *args)
    monkeypatch.setattr(handler_module, "split_any", failing)
    uri = sharded(s3)
    with pytest.raises(RuntimeError, match="the disk is full"):
        run_in_phases(uri)
    with pytest.raises(errors.PreprocessError) as raised:
        handler({"action": "discard", "executionName": "Run_1",
                 "error": {"Error": "States.ExceedToleratedFailureThreshold", "Cause": "…"}}, None)
    assert type(raised.value).__name__ == "RuntimeError"
    assert str(raised.value) == "s3://sagestep-dev-data/datasets/clicks/part-1.csv.gz: the disk is full"
    assert objects(s3) == {}


@pytest.mark.parametrize("caught, name, message", [
    # a merge or finish error, as Step Functions catches a Lambda's: its errorMessage inside the Cause
    ({"Error": "TooFewRows", "Cause": json.dumps({"errorType": "TooFewRows", "errorMessage": "only 3 rows"})},
     "TooFewRows", "only 3 rows"),
    # an item that timed out records nothing: the Map's own error is all there is
    ({"Error": "States.ExceedToleratedFailureThreshold", "Cause": "threshold exceeded"},
     "ShardFailed", "States.ExceedToleratedFailureThreshold: threshold exceeded"),
])
def test_discard_without_a_recorded_failure_fails_with_what_was_caught(s3, caught, name, message):
    run_in_phases(sharded(s3))
    with pytest.raises(errors.PreprocessError) as raised:
        handler({"action": "discard", "executionName": "Run_1", "error": caught}, None)
    assert (type(raised.value).__name__, str(raised.value)) == (name, message)
    assert objects(s3) == {}


def numeric_shards(s3, labels=("0", "1")):
    """Three plain shards of numbers and one gzip, labels in turn from the given ones."""
    header = "a,b,label\n"
    for n in range(4):
        rows = "".join(f"{i * 0.5},{n - i},{labels[(i + n) % len(labels)]}\n" for i in range(60))
        put(s3, f"datasets/numbers/part-{n}.csv{'.gz' if n == 3 else ''}", header + rows, n == 3)
    return f"s3://{BUCKET}/datasets/numbers/"


def gets(monkeypatch) -> list[str]:
    """The dataset's objects each GET reads, as the preprocess reads them (ranged or whole)."""
    import preprocess.source as source
    read, get = [], source.S3Object.get

    def counted(self, first=0, last=None):
        if self.key.startswith("datasets/"):
            read.append(f"{self.key}[{first}:{last}]")
        return get(self, first, last)
    monkeypatch.setattr(source.S3Object, "get", counted)
    return read


@pytest.mark.parametrize("labels, one_read", [(("0", "1"), True), (("0", "1", "2", "3"), True), (("1", "2"), False),
                                              (("0.1", "0.2", "0.7"), True), (tuple(f"{i}.1" for i in range(12)), True)])
def test_an_item_of_numbers_is_split_in_the_read_that_profiles_it_when_the_plan_agrees(s3, monkeypatch, labels,
                                                                                       one_read):
    """Labels 1 and 2 need class codes that only the merged plan knows: those items are split again, and
    either way the objects are byte for byte what the split Map would write."""
    import preprocess.handler as handler_module
    uri = numeric_shards(s3, labels)
    read = gets(monkeypatch)
    planned, result = run_in_phases(uri, "Once")
    split_items = json.loads(objects(s3, "Once", "preprocess/")["preprocess/split-items.json"])
    profiles = [json.loads(body) for key, body in sorted(objects(s3, "Once", "preprocess/profiles/").items())]
    assert [profile["split"] for profile in profiles] == [True] * 4
    assert (split_items == []) is one_read
    keys = [f"datasets/numbers/part-{n}.csv{'.gz' if n == 3 else ''}[0:None]" for n in range(4)]
    assert read[1:] == keys * (1 if one_read else 2), "the plan reads the header, then each object once (or twice)"
    monkeypatch.setattr(handler_module, "split_stands", lambda plan, columns: False)
    run_in_phases(uri, "Twice")
    assert data_files(s3, "Once") == data_files(s3, "Twice")
    assert objects(s3, "Once", "validation/schema.json") == objects(s3, "Twice", "validation/schema.json")
    assert sum(result["rows"].values()) == 240


def test_a_block_of_blank_lines_between_numbers_is_no_row():
    from preprocess.numeric import profile_any
    from preprocess.plan import Columns
    header = ["a", "b", "label"]
    rows = [b"a,b,label\n" + b"".join(b"%d,%d,%d\n" % (i, i * 2, i % 2) for i in range(20)), b"\n", b"\r\n\n",
            b"7,8,1"]
    profile, path, _ = profile_any(lambda: rows, "d.csv", header, False, Columns(tuple(header), 2))
    assert (path, profile["rows"]) == ("numeric", 21)


def test_only_the_items_with_text_are_read_twice_when_the_plan_needs_no_codes(s3, monkeypatch):
    uri = numeric_shards(s3)
    put(s3, "datasets/numbers/part-1.csv", 'a,b,label\n' + "".join(f'"{i}",{i},{i % 2}\n' for i in range(60)))
    read = gets(monkeypatch)
    run_in_phases(uri)
    split_items = json.loads(objects(s3, under="preprocess/")["preprocess/split-items.json"])
    assert [(item["key"], item["path"]) for item in split_items] == [("datasets/numbers/part-1.csv", "arrow")], \
        "quoted numbers: through Arrow"
    # part-1: the profile (Arrow goes on from where the fast path stopped), then its split
    assert sorted(read[1:]) == sorted([f"datasets/numbers/part-{n}.csv{'.gz' if n == 3 else ''}[0:None]"
                                      for n in range(4)] + ["datasets/numbers/part-1.csv[0:None]"])
    schema = json.loads(objects(s3)["validation/schema.json"])
    assert [feature["type"] for feature in schema["features"]] == ["numeric", "numeric"]
    assert sum(schema["rows"].values()) == 240


def logged(capsys) -> list[dict]:
    """The handler's log lines (its stdout: one JSON object per invocation)."""
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_each_invocation_logs_one_json_line_of_its_action(s3, capsys):
    uri = sharded(s3)
    run_in_phases(uri)
    lines = logged(capsys)
    assert [line["action"] for line in lines] == ["plan", *["profile"] * 4, "merge", *["split"] * 4, "finish"]
    assert {(line["executionName"], line["status"], line["seconds"] >= 0) for line in lines} == {("Run_1", "ok", True)}
    lines = [{key: value for key, value in line.items() if key not in ("executionName", "status", "seconds")}
             for line in lines]
    sizes = [s3.head_object(Bucket=BUCKET, Key=f"datasets/clicks/{name}")["ContentLength"]
             for name in ("part-0.csv", "part-1.csv.gz", "part-2.csv", "part-4.csv.gz")]
    plan, profiles, merge, splits, finish = lines[0], lines[1:5], lines[5], lines[6:10], lines[10]
    assert plan == {"action": "plan", "rows": None, "bytes": sum(sizes)}
    items = [{"item": n, "rows": rows, "bytes": size} for n, (rows, size) in enumerate(zip([40, 40, 0, 40], sizes))]
    assert profiles == [{"action": "profile", **item} for item in items]
    assert splits == [{"action": "split", **item} for item in items]
    assert merge == {"action": "merge", "rows": 120, "bytes": None}
    assert finish == {"action": "finish", "rows": 120, "bytes": None}


def test_a_failed_invocation_logs_one_line_with_the_error_s_class(s3, capsys):
    uri = sharded(s3)
    put(s3, "datasets/clicks/part-5.csv", "colour,weight,label\nred,1,a\n")
    with pytest.raises(errors.HeaderMismatch):
        handler(event(uri), None)                       # a direct call: every phase, one invocation
    (line,) = logged(capsys)
    assert line == {"action": "preprocess", "executionName": "Run_1", "rows": None, "bytes": None,
                    "seconds": line["seconds"], "status": "error", "error": "HeaderMismatch"}
    planned = handler({**event(uri), "action": "plan"}, None)
    item = json.loads(s3.get_object(Bucket=BUCKET, Key=planned["itemsKey"])["Body"].read())[-1]
    with pytest.raises(errors.HeaderMismatch):
        handler({"action": "profile", "executionName": "Run_1", "item": item}, None)
    _, line = logged(capsys)
    assert line == {"action": "profile", "executionName": "Run_1", "item": 4, "rows": None, "bytes": item["size"],
                    "seconds": line["seconds"], "status": "error", "error": "HeaderMismatch"}
