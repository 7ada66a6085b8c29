"""The pipeline's Lambda: the actions of the Preprocess step on one run's data, and the Evaluate step's
(one function, role and deploy for all).

Preprocess, as the state machine runs it: plan (list the dataset, cut it into work items) → profile each
item, splitting an item of numbers in the same read (a Distributed Map) → merge the profiles into one plan,
and list the items still to split (those with text, or whose split the plan changes) → split each of those
(a Distributed Map, skipped when there is none) → finish (combine the items' results, write the schema).
A failure on the way ends at discard, which deletes what the run wrote and raises the first failure an item
recorded. "preprocess" runs the same phases in one invocation (the event contract for a direct call).
evaluate: the batch predictions against the held-out labels, with a baseline beside them.

Objects are read as streams and every output is written with multipart uploads that are completed only when
the item succeeded (and aborted otherwise); memory does not grow with the dataset.
"""
from __future__ import annotations

import json
import os
import time
from concurrent.futures import ThreadPoolExecutor
from itertools import tee, zip_longest
from operator import itemgetter

import boto3
from botocore.config import Config

from . import errors, layout
from .csvrows import read_rows
from .errors import FunctionMisconfigured, InvalidExecutionInput, PreprocessError, ShardFailed
from .evaluation import MisalignedPredictions, evaluate
from .naming import run_name, tag_value, tuning_name
from .plan import (Columns, csv_field, find_columns, parse_event, quality_gate, run_hyperparameters, run_tuning,
                   tuning_plan)
from .numeric import profile_any, split_any, split_stands
from .profile import merge_profiles
from .rowsplit import RowSplitter
from .shards import item_chunks, item_stream, item_where, list_objects, read_header, work_items
from .sink import Outputs, S3Output, Uploader
from .source import S3Object
from .split import SplitWriter, combine, empty_outputs, output_keys

DEFAULT_REMAINING_MS = 900_000
MAX_MATRIX_CLASSES_IN_OUTPUT = 50      # 2,500 counts: a few KB of the execution's output
REQUIRED_ENVIRONMENT = ("DATA_BUCKET", "JOB_NAME_PREFIX", "OBJECTIVES", "QUALITY_GATE")
RUN_ACTIONS = ("profile", "merge", "split", "finish", "discard", "evaluate")
ACTIONS = ("preprocess", "plan", *RUN_ACTIONS)
DELETE_BATCH = 1000                    # keys per DeleteObjects request


def handler(event, context):
    """The event's action, and one JSON line of it on stdout (the function's CloudWatch log), whether it
    succeeded or failed: what an operator reads of each invocation."""
    action = event.get("action", "preprocess") if isinstance(event, dict) else "preprocess"
    started = time.monotonic()
    try:
        result = _act(action, event, context)
    except Exception as error:
        log_action(action, event, None, time.monotonic() - started, error)
        raise
    log_action(action, event, result, time.monotonic() - started)
    return result


def log_action(action: str, event, result, seconds: float, error: Exception | None = None) -> None:
    """{"action", "executionName", "item" (a work item's number), "rows" (the rows it handled), "bytes" (of
    the dataset it read), "seconds", "status": "ok" | "error", "error" (the class name: Lambda's errorType)}."""
    fields = event if isinstance(event, dict) else {}
    item = fields.get("item") if isinstance(fields.get("item"), dict) else None
    outcome = result if isinstance(result, dict) else {}
    line = {"action": action, "executionName": fields.get("executionName"),
            **({"item": item.get("item")} if item else {}),
            "rows": _row_count(outcome.get("rows")),
            "bytes": _item_bytes(item) if item else outcome.get("bytes"),
            "seconds": round(seconds, 3), "status": "error" if error else "ok",
            **({"error": type(error).__name__} if error else {})}
    print(json.dumps(line), flush=True)


def _row_count(rows) -> int | None:
    """A count of rows, or the sum of a split's counts (train, validation, test)."""
    if isinstance(rows, dict):
        return sum(rows.values())
    return rows if isinstance(rows, int) else None


def _item_bytes(item: dict) -> int | None:
    """The bytes a work item owns: its byte range, or its whole object (None for a malformed item: the log
    line must not fail in place of the action)."""
    try:
        return (item["end"] or item["size"]) - item["start"]
    except (KeyError, TypeError):
        return None


def _act(action: str, event, context):
    missing = [name for name in REQUIRED_ENVIRONMENT if not os.environ.get(name)]
    if missing:
        raise FunctionMisconfigured(f"the function's environment has no {', '.join(missing)}; "
                                    "deploy it with the stack (pulumi up)")
    if action not in ACTIONS:
        raise InvalidExecutionInput(f"action {action!r} is not one of {', '.join(ACTIONS)}")
    if action == "preprocess":
        return preprocess_run(event, context)
    if action == "plan":
        return plan_run(event, context)
    run = Run(event)
    if action == "evaluate":
        return evaluate_run(run)
    return getattr(run, action)(event)


def s3_client():
    """S3 with the standard retry mode and room to retry: a thousand items writing at once can pass S3's
    3,500 PUT/s per prefix until it repartitions, and it answers 503 SlowDown meanwhile."""
    return boto3.client("s3", config=Config(retries={"mode": "standard", "max_attempts": 10}))


def _instances(name: str) -> int:
    value = os.environ.get(name, "1")
    if not value.isdigit() or int(value) < 1:
        raise FunctionMisconfigured(f"the function's {name} is {value!r}, not a count; deploy it with the stack")
    return int(value)


def stack_tuning() -> dict:
    """sagestep:tuning as the stack sets it (TUNING), {} when the stack does not tune."""
    return json.loads(os.environ.get("TUNING") or "{}")


def plan_run(event, context) -> dict:
    """Validate the input, read the header, cut the dataset into work items; write them for the Maps."""
    request = parse_event(event)
    run_tuning(request, stack_tuning())
    run = Run(event)
    objects = list_objects(run.s3, request.bucket, request.key)
    header = read_header(objects[0])
    find_columns(header, request, objects[0].where)
    remaining = context.get_remaining_time_in_millis() if context is not None else DEFAULT_REMAINING_MS
    items = work_items(objects, layout.RANGE_BYTES, remaining / 1000)
    run.delete_all()                  # a direct call that reuses an execution name starts afresh
    run.put(layout.REQUEST, {"event": {key: value for key, value in event.items() if key != "action"},
                             "header": header, "items": len(items)})
    run.put(layout.ITEMS, items)
    return {"itemsKey": f"{run.prefix}{layout.ITEMS}", "items": len(items), "objects": len(objects),
            "ranged": sum(item["ranged"] for item in items), "bytes": sum(obj.size for obj in objects)}


def preprocess_run(event, context) -> dict:
    """Every phase in one invocation, in the order the state machine runs them (a direct call)."""
    planned = plan_run(event, context)
    run = Run(event)
    try:
        for item in run.get(layout.ITEMS):
            run.profile({"item": item})
        run.merge({})
        for item in run.get(layout.SPLIT_ITEMS):
            run.split({"item": item})
        return {**run.finish({}), "bytes": planned["bytes"]}
    except Exception:
        run.delete_all()
        raise


def _item_source(s3, item: dict, header: list[str]) -> tuple:
    """What profile_any and split_any read of an item: its bytes (afresh on each call), where it is, the
    header its bytes start with (its object's, when the item starts the object), whether it is a byte range."""
    return (lambda: item_chunks(s3, item)), item_where(item), header if item["start"] == 0 else None, item["ranged"]


class Run:
    """One execution's preprocess data under runs/<executionName>/ in the data bucket."""

    def __init__(self, event: dict):
        name = event.get("executionName") if isinstance(event, dict) else None
        if not isinstance(name, str) or not name:
            raise InvalidExecutionInput("the event has no executionName (the state machine passes it)")
        self.name, self.bucket = name, os.environ["DATA_BUCKET"]
        self.prefix = layout.run_prefix(name)
        self.s3 = s3_client()

    def put(self, key: str, value) -> None:
        self.s3.put_object(Bucket=self.bucket, Key=f"{self.prefix}{key}", Body=json.dumps(value).encode(),
                           ContentType="application/json")

    def get(self, key: str):
        return json.loads(self.s3.get_object(Bucket=self.bucket, Key=f"{self.prefix}{key}")["Body"].read())

    def read_all(self, under: str) -> list:
        """Every JSON record under a folder of the run, in key order (item order), 16 reads at a time."""
        with ThreadPoolExecutor(max_workers=16) as pool:
            return list(pool.map(lambda key: json.loads(self.s3.get_object(Bucket=self.bucket, Key=key)["Body"].read()),
                                 self.keys(under)))

    def keys(self, under: str = "") -> list[str]:
        listing = self.s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=f"{self.prefix}{under}")
        return sorted(item["Key"] for page in listing for item in page.get("Contents", []))

    def request(self) -> tuple[dict, object, Columns]:
        stored = self.get(layout.REQUEST)
        request = parse_event(stored["event"])
        return stored, request, find_columns(stored["header"], request, "the dataset")

    def _recording(self, item: dict, work):
        """work(), and any error it raises recorded for discard (which names the first item's): a dataset's
        error says where itself, another (S3 refusing a write, a bug) is named with the item."""
        try:
            return work()
        except Exception as error:  # noqa: BLE001 - recorded, then raised again: the Map fails on it
            cause = str(error) if isinstance(error, PreprocessError) else f"{item_where(item)}: {error}"
            self.put(f"{layout.FAILURES_DIR}{layout.part_name(item['item'], suffix='.json')}",
                     {"item": item["item"], "error": type(error).__name__, "cause": cause})
            raise

    def profile(self, event: dict) -> dict:
        """The item's profile; an item of numbers is split in the same read (its labels as written), and
        the profile says so."""
        item = event["item"]
        stored, request, columns = self.request()

        def work() -> dict:
            profile = {}

            def profile_and_split(writer, outputs) -> dict | None:
                found, path, split = profile_any(*_item_source(self.s3, item, stored["header"]), columns, writer,
                                                 outputs)
                profile.update(found, path=path, split=split is not None)
                return split
            self._write_split(item, request, columns, None, profile_and_split)
            self.put(f"{layout.PROFILES_DIR}{layout.part_name(item['item'], suffix='.json')}", profile)
            return {"item": item["item"], "rows": profile["rows"]}
        return self._recording(item, work)

    def merge(self, event: dict) -> dict:
        """One plan from every item's profile, with the hyperparameters and the quality gate, checked
        before any item is split."""
        stored, request, columns = self.request()
        items = self.get(layout.ITEMS)
        profiles = self.read_all(layout.PROFILES_DIR)
        if len(profiles) != len(items):
            raise ShardFailed(f"{len(profiles)} of {len(items)} work items have a profile; the profile Map did not "
                              "finish")
        plan = merge_profiles(profiles, columns, [item_where(item) for item in items], request.ratios, request.seed,
                              list(map(item_stream, items)))
        values, origins = run_hyperparameters(plan["problem"], plan["classes"], json.loads(os.environ["OBJECTIVES"]),
                                              json.loads(os.environ.get("HYPERPARAMETERS", "{}")),
                                              request.hyperparameters)
        stack_gate = json.loads(os.environ["QUALITY_GATE"])
        gate = quality_gate(request, stack_gate, plan["problem"], values, origins)
        tuning = run_tuning(request, stack_tuning())
        if tuning:
            plan["tuning"] = tuning_plan(tuning, stack_gate, gate, plan["problem"], values, origins)
        plan.update(hyperparameters=values, hyperparameterOrigins=origins, gate=gate)
        self.put(layout.PLAN, plan)
        stands = split_stands(plan, columns)
        # path: the one the item's profile took, which its split takes too
        to_split = [{**item, "path": profile["path"]} for item, profile in zip(items, profiles)
                    if not (stands and profile["split"])]
        self.put(layout.SPLIT_ITEMS, to_split)
        return {"rows": plan["rows"], "problem": plan["problem"], "splitItems": len(to_split),
                "splitItemsKey": f"{self.prefix}{layout.SPLIT_ITEMS}"}

    def split(self, event: dict) -> dict:
        """The item split with the plan (one the profile's read did not split, or split otherwise)."""
        item = event["item"]
        stored, request, columns = self.request()
        plan = self.get(layout.PLAN)

        def work() -> dict:
            result = self._write_split(item, request, columns, plan["problem"] == "regression", lambda writer, outputs:
                                       split_any(*_item_source(self.s3, item, stored["header"]), columns, plan,
                                                 writer, outputs, item["path"])[0])
            return {"item": item["item"], "rows": result["counts"]}
        return self._recording(item, work)

    def _write_split(self, item: dict, request, columns: Columns, regression: bool | None, split) -> dict | None:
        """split(writer, outputs) writes the item's rows through writer() and returns the result: its objects
        (those it wrote a row to) are completed and its split record written; a result of None drops them.
        The item's objects are named by item, host and instance alone, so a second split replaces the first."""
        hosts, instances = _instances("TRAINING_HOSTS"), _instances("TRANSFORM_INSTANCES")
        keys = output_keys(self.prefix, item["item"], hosts, instances)
        uploader = Uploader()
        outputs = Outputs({name: S3Output(self.s3, self.bucket, key, "text/csv", uploader)
                           for name, key in keys.items()}, uploader)
        with outputs:
            def writer() -> SplitWriter:
                return SplitWriter(outputs, columns, RowSplitter(request.ratios, request.seed, item_stream(item)),
                                   regression, hosts, instances)
            result = split(writer, outputs)
            if result is None:
                outputs.abort()
                return None
            for name in empty_outputs(result["written"], keys):
                outputs.outputs.pop(name).abort()
            outputs.commit()
        self.put(f"{layout.SPLITS_DIR}{layout.part_name(item['item'], suffix='.json')}", result)
        return result

    def finish(self, event: dict) -> dict:
        """The items' results together, the schema, and what the state machine keeps of the run."""
        stored, request, columns = self.request()
        plan = self.get(layout.PLAN)
        results = self.read_all(layout.SPLITS_DIR)
        if len(results) != stored["items"]:
            raise ShardFailed(f"{len(results)} of {stored['items']} work items were split; the split Map did not "
                              "finish")
        combined = combine(results, plan)
        ignored = columns.left_out() + plan["identifiers"]
        header = stored["header"]
        schema = {"dataset": stored["event"]["datasetUri"], "shards": stored["items"],
                  "label": {"name": columns.label_name, "classes": plan["classes"], **combined["labelStats"]},
                  "id": None if columns.id is None else header[columns.id],
                  "features": [{"name": header[i], "type": "categorical", "categories": plan["categories"][str(i)]}
                               if str(i) in plan["categories"] else {"name": header[i], "type": "numeric"}
                               for i in plan["features"]],
                  "ignored": ignored, "problem": plan["problem"], "rows": combined["counts"]}
        self.put(layout.SCHEMA, schema)
        hyperparameters = plan["hyperparameters"]
        base = f"s3://{self.bucket}/{self.prefix}"
        execution = stored["event"]
        return {
            "runName": run_name(os.environ["JOB_NAME_PREFIX"], self.name, execution["executionArn"]),
            "executionTag": tag_value(self.name),
            "channels": {"train": f"{base}{layout.TRAIN_DIR}", "validation": f"{base}{layout.VALIDATION_DIR}"},
            "transformInput": f"{base}{layout.TEST_FEATURES_DIR}",
            "predictionsUri": f"{base}{layout.PREDICTIONS_DIR}",
            "checkpointsUri": f"{base}{layout.CHECKPOINTS_DIR}",
            "testLabelsUri": f"{base}{layout.TEST_LABELS_DIR}",
            "schemaUri": f"{base}{layout.SCHEMA}",
            "hyperparameters": hyperparameters,
            "hyperparameterOrigins": plan["hyperparameterOrigins"],
            "objective": hyperparameters["objective"],
            "problem": plan["problem"],
            "rows": combined["counts"],
            "shards": stored["items"],
            "ignoredColumns": ignored,
            "gate": plan["gate"],
            **({"tuningName": tuning_name(os.environ["JOB_NAME_PREFIX"], self.name, execution["executionArn"]),
                "tuning": plan["tuning"]} if "tuning" in plan else {}),
        }

    def discard(self, event: dict) -> None:
        """Delete everything the run wrote, then fail with the first failure an item recorded (in dataset
        order), or with the error the state machine caught."""
        failures = self.read_all(layout.FAILURES_DIR)
        self.delete_all()
        if failures:
            first = min(failures, key=lambda failure: failure["item"])
            raise _named(first["error"], first["cause"])
        caught = event.get("error") or {}
        name, cause = caught.get("Error", "ShardFailed"), caught.get("Cause", "")
        try:
            message = json.loads(cause).get("errorMessage", cause)
        except (TypeError, ValueError, AttributeError):
            message = cause
        if name.startswith("States.") or not name.isidentifier():
            raise ShardFailed(f"{name}: {message}")
        raise _named(name, message)

    def delete_all(self) -> None:
        keys = self.keys()
        for start in range(0, len(keys), DELETE_BATCH):
            self.s3.delete_objects(Bucket=self.bucket, Delete={
                "Objects": [{"Key": key} for key in keys[start:start + DELETE_BATCH]], "Quiet": True})


def _named(name: str, message: str) -> PreprocessError:
    """The error an item raised, raised again under its name (Lambda's errorType is the class name)."""
    known = getattr(errors, name, None)
    if isinstance(known, type) and issubclass(known, PreprocessError):
        return known(message)
    return type(name, (PreprocessError,), {})(message)


def evaluate_run(run: Run) -> dict:
    """Pairs the batch predictions with the held-out labels object by object (the predictions of each
    test-features object are <its name>.out), writes them joined with their header as predictions.csv and
    the metrics as evaluation.json."""
    s3, bucket, prefix = run.s3, run.bucket, run.prefix
    schema = run.get(layout.SCHEMA)
    names = [key.rsplit("/", 1)[1] for key in run.keys(layout.TEST_FEATURES_DIR)]
    predicted = set(run.keys(layout.PREDICTIONS_DIR))

    def rows_of(key: str):
        obj = S3Object(s3, bucket, key)
        return read_rows(obj.chunks(), obj.where)

    def pairs(name: str):
        key = f"{prefix}{layout.PREDICTIONS_DIR}{name}.out"
        if key not in predicted:
            raise MisalignedPredictions(f"s3://{bucket}/{key} is missing: the batch transform wrote no predictions "
                                        f"for test-features/{name}")
        labels = rows_of(f"{prefix}{layout.TEST_LABELS_DIR}{name}")
        next(labels, None)                                  # each labels object starts with the header
        for number, (prediction, held_out) in enumerate(zip_longest(rows_of(key), labels), start=1):
            if prediction is None or held_out is None:
                raise MisalignedPredictions(
                    f"s3://{bucket}/{key} has {'fewer' if prediction is None else 'more'} lines than "
                    f"test-labels/{name} (from line {number}): the predictions do not pair up with the held-out rows")
            yield prediction, held_out

    first, second = tee(pair for name in names for pair in pairs(name))
    predictions, labels = map(itemgetter(0), first), map(itemgetter(1), second)
    header = (next(rows_of(f"{prefix}{layout.TEST_LABELS_DIR}{names[0]}"), []) if names else []) + ["predicted"] + [
        f"P({name})" for name in schema["label"]["classes"] or []]
    uploader = Uploader()
    with Outputs({"predictions": S3Output(s3, bucket, f"{prefix}{layout.JOINED_PREDICTIONS}", "text/csv", uploader),
                  "evaluation": S3Output(s3, bucket, f"{prefix}{layout.EVALUATION}", "application/json",
                                         uploader)}, uploader) as outputs:
        joined = outputs["predictions"]
        joined.write((",".join(map(csv_field, header)) + "\n").encode())

        def write(prediction: list[str], held_out: list[str]) -> None:
            joined.write((",".join(map(csv_field, held_out + prediction)) + "\n").encode())

        result = evaluate(schema, predictions, labels, on_row=write)
        base = f"s3://{bucket}/{prefix}"
        result = {**result, "predictionsFile": f"{base}{layout.JOINED_PREDICTIONS}",
                  "evaluationFile": f"{base}{layout.EVALUATION}"}
        outputs["evaluation"].write(json.dumps(result, indent=2).encode())
        outputs.commit()
    # The confusion matrix goes into the run's output too when it is small; a state's payload is 256 KB at most.
    matrix = result.get("confusionMatrix")
    small = matrix is not None and len(matrix["classes"]) <= MAX_MATRIX_CLASSES_IN_OUTPUT
    return {**result, "confusionMatrix": matrix if small else None}
