"""Pure decisions of the preprocess step: the event, the column types, the objective, the split."""
from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from operator import itemgetter

from .errors import InvalidDatasetUri, InvalidExecutionInput, InvalidLabel, MissingLabelColumn

LABEL_NAMES = ("label", "target")
DEFAULT_RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}
DEFAULT_SEED = 42
MAX_CLASSES_FROM_INTEGERS = 10     # integer labels with at most this many values are classes
# A row's partition at its first comma: (label, ",", features).
LABEL_PART = itemgetter(0)
FEATURES_PART = itemgetter(2)
S3_URI = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])/(.+)$")


@dataclass(frozen=True)
class Request:
    bucket: str
    key: str
    label_column: str | None
    execution_name: str
    execution_arn: str
    hyperparameters: dict[str, str]
    ratios: dict[str, float]
    seed: int


def _string_map(value: object, what: str) -> dict[str, str]:
    if not isinstance(value, dict):
        raise InvalidExecutionInput(f"{what} must be an object of name: value, got {json.dumps(value)[:80]}")
    out = {}
    for key, item in value.items():
        if key.startswith("sagemaker_"):
            raise InvalidExecutionInput(f"{what}.{key}: sagemaker_* hyperparameters are set by the stack")
        if isinstance(item, (dict, list)) or item is None:
            raise InvalidExecutionInput(f"{what}.{key} must be a number or a string, got {json.dumps(item)}")
        out[key] = json.dumps(item) if isinstance(item, bool) else str(item)
    return out


def parse_event(event: dict) -> Request:
    """Validate the execution input the state machine passes on."""
    if not isinstance(event, dict):
        raise InvalidExecutionInput("the execution input must be a JSON object with datasetUri")
    uri = event.get("datasetUri")
    if not isinstance(uri, str) or not uri:
        raise InvalidExecutionInput('the execution input needs "datasetUri": "s3://bucket/key.csv"')
    match = S3_URI.match(uri)
    if not match:
        raise InvalidDatasetUri(f"datasetUri {uri!r} is not s3://<bucket>/<key>")
    label = event.get("labelColumn")
    if label is not None and (not isinstance(label, str) or not label):
        raise InvalidExecutionInput(f"labelColumn must be a column name, got {json.dumps(label)}")
    ratios = event.get("splitRatios", DEFAULT_RATIOS)
    if (not isinstance(ratios, dict) or set(ratios) != set(DEFAULT_RATIOS)
            or not all(isinstance(v, (int, float)) and v > 0 for v in ratios.values())
            or abs(sum(ratios.values()) - 1) > 1e-6):
        raise InvalidExecutionInput('splitRatios must be {"train", "validation", "test"}, each > 0, summing to 1')
    seed = event.get("seed", DEFAULT_SEED)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InvalidExecutionInput(f"seed must be an integer, got {json.dumps(seed)}")
    for required in ("executionName", "executionArn"):
        if not isinstance(event.get(required), str):
            raise InvalidExecutionInput(f"the event has no {required} (the state machine passes it)")
    return Request(bucket=match.group(1), key=match.group(2), label_column=label,
                   execution_name=event["executionName"], execution_arn=event["executionArn"],
                   hyperparameters=_string_map(event.get("hyperparameters", {}), "hyperparameters"),
                   ratios=dict(ratios), seed=seed)


def _delimiter_hint(header: list[str]) -> str:
    """A one-column header holding ";" or a tab is a file with another delimiter."""
    if len(header) == 1:
        for delimiter, name in ((";", "semicolons"), ("\t", "tabs")):
            if delimiter in header[0]:
                return f" (the header is one column holding {name}: the dataset must be comma-separated)"
    return ""


def find_label(header: list[str], requested: str | None) -> int:
    if requested is not None:
        if requested not in header:
            raise MissingLabelColumn(f"labelColumn {requested!r} is not a column; columns: {', '.join(header)}"
                                     + _delimiter_hint(header))
        return header.index(requested)
    lowered = [name.strip().lower() for name in header]
    for name in LABEL_NAMES:
        if name in lowered:
            return lowered.index(name)
    raise MissingLabelColumn(f"no column named label or target; set labelColumn to one of: {', '.join(header)}"
                             + _delimiter_hint(header))


def numbers_only(values) -> bool:
    """Every value parses as a finite float (in C, via map)."""
    try:
        return all(map(math.isfinite, map(float, values)))
    except ValueError:
        return False


MIN_ROWS_FOR_IDENTIFIER = 20     # below it, many distinct labels may just be a small dataset


def classification(name: str, classes: list[str], rows: int = 0) -> str:
    """A label with 2 or more classes; one whose values are (nearly) all distinct names rows, not classes
    (an identifier): training on it would "succeed" with as many classes as rows and accuracy 0."""
    if len(classes) < 2:
        raise InvalidLabel(f"label column {name!r} has {len(classes)} distinct value(s); at least 2 are needed")
    if rows >= MIN_ROWS_FOR_IDENTIFIER and len(classes) > rows / 2:
        raise InvalidLabel(f"label column {name!r} looks like an identifier: {len(classes)} distinct values in "
                           f"{rows} rows; set labelColumn to the column to predict")
    return "binary" if len(classes) == 2 else "multiclass"


def problem_type(name: str, values: set[str] | None) -> tuple[str, list[str] | None]:
    """For numeric labels: ("binary" | "multiclass" | "regression", the classes in numeric order).
    values is None when there were too many to keep: a continuous label."""
    if values is None:
        return "regression", None
    if len(values) < 2:
        classification(name, sorted(values))
    numbers = sorted(values, key=float)
    integers = all(float(v).is_integer() for v in numbers)
    if len(values) == 2 or (integers and len(values) <= MAX_CLASSES_FROM_INTEGERS):
        return classification(name, numbers), numbers
    return "regression", None


def objective_hyperparameters(kind: str, classes: list[str] | None, objectives: dict[str, dict[str, str]]) -> dict[str, str]:
    """The framework's hyperparameters for this problem type (the stack passes them in OBJECTIVES;
    "{classes}" stands for the number of classes)."""
    count = str(len(classes or []))
    return {name: value.replace("{classes}", count) for name, value in objectives[kind].items()}
