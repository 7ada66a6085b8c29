"""Pure decisions of the preprocess step: the event, the column types, the objective, the split."""
from __future__ import annotations

import json
import math
import re
import struct
from dataclasses import dataclass
from operator import itemgetter
from typing import NamedTuple

from . import hyperparameters, tuning
from .errors import (InvalidDatasetUri, InvalidExecutionInput, InvalidHyperparameter, InvalidLabel,
                     InvalidQualityGate, InvalidTuning, MissingLabelColumn, UnknownColumn)

LABEL_NAMES = ("label", "target")
DEFAULT_RATIOS = {"train": 0.7, "validation": 0.15, "test": 0.15}
DEFAULT_SEED = 42
MAX_CLASSES_FROM_INTEGERS = 10     # integer labels with at most this many values are classes
# A row's partition at its first comma: (label, ",", features).
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
    ignore_columns: tuple[str, ...] = ()
    id_column: str | None = None
    quality_metric: str | None = None          # None: the stack's; "": no gate for this run
    quality_threshold: float | None = None     # None: the stack's
    tuning: dict | None = None                 # the execution's maxJobs / maxParallelJobs / ranges over the stack's


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
    label = _column_name(event, "labelColumn")
    id_column = _column_name(event, "idColumn")
    ignore = event.get("ignoreColumns", [])
    if not isinstance(ignore, list) or not all(isinstance(name, str) and name for name in ignore):
        raise InvalidExecutionInput(f"ignoreColumns must be a list of column names, got {json.dumps(ignore)[:80]}")
    if label is not None and label in (id_column, *ignore):
        raise InvalidExecutionInput(f"labelColumn {label!r} is the column to predict; it cannot also be "
                                    f"{'idColumn' if label == id_column else 'in ignoreColumns'}")
    ratios = event.get("splitRatios", DEFAULT_RATIOS)
    if (not isinstance(ratios, dict) or set(ratios) != set(DEFAULT_RATIOS)
            or not all(isinstance(v, (int, float)) and v > 0 for v in ratios.values())
            or abs(sum(ratios.values()) - 1) > 1e-6):
        raise InvalidExecutionInput('splitRatios must be {"train", "validation", "test"}, each > 0, summing to 1')
    seed = event.get("seed", DEFAULT_SEED)
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise InvalidExecutionInput(f"seed must be an integer, got {json.dumps(seed)}")
    metric, threshold = event.get("qualityMetric"), event.get("qualityThreshold")
    if metric is not None and not isinstance(metric, str):
        raise InvalidExecutionInput(f"qualityMetric must be a metric name such as validation:auc, or \"\" for no gate, "
                                    f"got {json.dumps(metric)}")
    if threshold is not None and (not isinstance(threshold, (int, float)) or isinstance(threshold, bool)
                                  or not math.isfinite(threshold)):
        raise InvalidExecutionInput(f"qualityThreshold must be a number, got {json.dumps(threshold)}")
    run_tuning = event.get("tuning")
    if run_tuning is not None and not isinstance(run_tuning, dict):
        raise InvalidTuning(f"tuning must be an object of {', '.join(tuning.RUN_KEYS)}, got {json.dumps(run_tuning)[:80]}")
    unknown = sorted(set(run_tuning or {}) - set(tuning.RUN_KEYS))
    if unknown:
        raise InvalidTuning(f"tuning.{unknown[0]} is the stack's (sagestep:tuning); an execution may set "
                            f"{', '.join(tuning.RUN_KEYS)}")
    for required in ("executionName", "executionArn"):
        if not isinstance(event.get(required), str):
            raise InvalidExecutionInput(f"the event has no {required} (the state machine passes it)")
    return Request(bucket=match.group(1), key=match.group(2), label_column=label,
                   execution_name=event["executionName"], execution_arn=event["executionArn"],
                   hyperparameters=hyperparameters.checked(_string_map(event.get("hyperparameters", {}), "hyperparameters"),
                                                           "the execution input's hyperparameters"),
                   ratios=dict(ratios), seed=seed, ignore_columns=tuple(dict.fromkeys(ignore)),
                   id_column=id_column, quality_metric=metric, quality_threshold=threshold, tuning=run_tuning)


def _column_name(event: dict, field: str) -> str | None:
    name = event.get(field)
    if name is not None and (not isinstance(name, str) or not name):
        raise InvalidExecutionInput(f"{field} must be a column name, got {json.dumps(name)}")
    return name


def _delimiter_hint(header: list[str]) -> str:
    """A one-column header holding ";" or a tab is a file with another delimiter."""
    if len(header) == 1:
        for delimiter, name in ((";", "semicolons"), ("\t", "tabs")):
            if delimiter in header[0]:
                return f" (the header is one column holding {name}: the dataset must be comma-separated)"
    return ""


CSV_SPECIAL = re.compile(r'[,"\r\n]')


def csv_field(value: str) -> str:
    """value as one RFC 4180 field: quoted (quotes doubled) only when it holds a comma, quote or newline."""
    return '"' + value.replace('"', '""') + '"' if CSV_SPECIAL.search(value) else value


@dataclass(frozen=True)
class Columns:
    """Which column is the label, which carries the row's id, which are left out by name; the rest are
    features, in file order."""
    header: tuple[str, ...]
    label: int
    id: int | None = None
    ignored: tuple[int, ...] = ()

    @property
    def features(self) -> list[int]:
        return [i for i in range(len(self.header)) if i != self.label and i != self.id and i not in self.ignored]

    @property
    def label_name(self) -> str:
        return self.header[self.label]

    def left_out(self) -> list[dict]:
        """The columns the request leaves out, for the schema."""
        named = [] if self.id is None else [{"name": self.header[self.id], "reason": "idColumn"}]
        return named + [{"name": self.header[i], "reason": "ignoreColumns"} for i in self.ignored if i != self.id]


def labels_header(columns: Columns) -> str:
    """The held-out labels file's header: the id column first when there is one, then the label."""
    names = ([] if columns.id is None else [columns.header[columns.id]]) + [columns.label_name]
    return ",".join(map(csv_field, names)) + "\n"


def find_columns(header: list[str], request: Request, where: str) -> Columns:
    label = find_label(header, request.label_column)

    def index(name: str, field: str) -> int:
        if name not in header:
            raise UnknownColumn(f"{field} {name!r} is not a column; columns: {', '.join(header)}")
        return header.index(name)

    id_index = None if request.id_column is None else index(request.id_column, "idColumn")
    ignored = tuple(index(name, "ignoreColumns") for name in request.ignore_columns)
    for field, indices in (("idColumn", [id_index]), ("ignoreColumns", ignored)):
        if label in indices:
            raise InvalidExecutionInput(f"{field} names {header[label]!r}, the label column")
    columns = Columns(tuple(header), label, id_index, ignored)
    if len(header) < 2:
        raise MissingLabelColumn(f"{where} has only the label column {header[label]!r}; there is nothing to learn from")
    if not columns.features:
        raise MissingLabelColumn(f"{where} has no feature column once idColumn and ignoreColumns are left out; "
                                 "there is nothing to learn from")
    return columns


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


# What a number is, on both paths: digits with at most one point, an optional sign and exponent (NUMBER;
# one past float32's range is refused apart: past_float32). float() would also take nan, inf, " 1 " and
# 1_000. NUMBERS is the same for lines of comma-separated fields, empty ones included, in C at about
# 110 MB/s (possessive, as a number is matched greedily and cannot be followed by a digit, point, sign or
# e). only_numbers screens a block first, several times faster: each character's class may follow the one
# before it as in numbers (byte i of a + (a << 11) is the class of character i plus 8 times that of
# character i - 1, for a megabyte at a time by big-integer arithmetic; a byte outside NUMERIC follows
# nothing), and each field has at most one point and one e, the point first; what the screen does not
# clear ("1." and "1.e5" too) goes to NUMBERS.
NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?")
_FIELD = rb"(?:[-+]?+(?:\d++\.?+\d*+|\.\d++)(?:[eE][-+]?+\d++)?+)?+"
NUMBERS = re.compile(rb"%s(?:,%s)*+(?:\n%s(?:,%s)*+)*+" % (_FIELD, _FIELD, _FIELD, _FIELD))
NUMERIC = b"0123456789.,-+eE\n"            # what lines of numbers are made of
_SEP, _DIGIT, _POINT, _E, _SIGN, _OTHER = 0, 1, 2, 3, 4, 7      # _OTHER: any byte not in NUMERIC
_CLASS_OF = dict(zip(b"\n,0123456789.eE+-", [_SEP, _SEP] + [_DIGIT] * 10 + [_POINT, _E, _E, _SIGN, _SIGN]))
_CLASSES = bytes(_CLASS_OF.get(byte, _OTHER) for byte in range(256))
SCREEN_PIECE = 1 << 20      # the screen's big integers stay in the CPU caches
_FOLLOWS = {_SEP: (_SEP, _DIGIT, _POINT, _SIGN), _DIGIT: (_SEP, _DIGIT, _POINT, _E), _POINT: (_DIGIT,),
            _E: (_DIGIT, _SIGN), _SIGN: (_DIGIT, _POINT)}
_PAIRS = bytes(sorted(this + 8 * before for before, these in _FOLLOWS.items() for this in these))
_MARKS = bytes.maketrans(b"E", b"e")
# ASCII letters only: Python's case-insensitive match would take "ınf" (a dotless i), which no reader takes for inf.
NOT_FINITE = re.compile(r"[-+]?(?:nan|inf|infinity)", re.IGNORECASE | re.ASCII)
# XGBoost (and numpy, in train.py) read values as float32, whose largest is 3.4e38: a number past it is read
# as inf. Only a positive exponent of 10 or more, or 30 digits in a row, can reach it (below both, a value
# is under 1e29 x 1e9); only lines that hold one are read value by value.
_FLOAT32 = struct.Struct("<f")
_LONG_RUN = bytes([_DIGIT]) * 30
LARGE_NUMBER = r"[eE]\+?0*[1-9][0-9]|[0-9]{30}"
_MAY_BE_LARGE = {bytes: re.compile(LARGE_NUMBER.encode()), str: re.compile(LARGE_NUMBER)}


class Numbers(NamedTuple):
    """Lines of numbers as number_marks found them: the lines without digits and signs (their points, e's,
    commas and line breaks), and whether some value may be past float32's range."""
    marks: bytes
    may_be_large: bool


def only_numbers(block: bytes) -> bool:
    """Every field of these lines is a NUMBER or empty."""
    return number_marks(block) is not None


def number_marks(block: bytes) -> Numbers | None:
    """When every field of these lines is a NUMBER or empty, what they hold (Numbers); else None. The screen
    (a byte outside NUMERIC fails it, as its class follows none), else NUMBERS."""
    classes = block.translate(_CLASSES)
    marks = block.translate(_MARKS, b"0123456789+-")
    screened = _pairs_allowed(classes) and b".." not in marks and not (
        b"e" in marks and (b"e." in marks or b"ee" in marks))
    if not screened and NUMBERS.fullmatch(block) is None:
        return None
    return Numbers(marks, (b"e" in marks and may_be_large(block)) or _LONG_RUN in classes)


def past_float32(value: bytes | str) -> bool:
    """This NUMBER rounds to inf as a float32 (struct rounds as C's cast does, and as numpy does), or is past
    even a double's range (float() reads 1e999 as inf)."""
    number = float(value)
    try:
        _FLOAT32.pack(number)
    except OverflowError:
        return True
    return math.isinf(number)


def may_be_large(text: bytes | str) -> bool:
    """This text (a value, or lines of them) holds a positive exponent of 10 or more, or 30 digits in a row."""
    return _MAY_BE_LARGE[type(text)].search(text) is not None


def first_past_float32(values) -> int | None:
    """The index of the first of these NUMBERs (or empty values; str or bytes) that float32 cannot hold."""
    return next((i for i, value in enumerate(values) if value and may_be_large(value) and past_float32(value)),
                None)


def past_float32_message(where: str, row: int, name: str, value) -> str:
    """InvalidNumber's message for a number float32 cannot hold."""
    text = value.decode() if isinstance(value, bytes) else value
    return (f"{where}, row {row}, column {name!r}: {text} is past float32's range (3.4e38), which XGBoost reads "
            "values as: it would read inf")


def _pairs_allowed(classes: bytes) -> bool:
    """Each class may follow the one before it, piece by piece (each piece cut after a separator, so that
    the next starts as a line does)."""
    start = 0
    while start < len(classes):
        end = classes.find(_SEP, start + SCREEN_PIECE) + 1 or len(classes)
        pairs = int.from_bytes(classes[start:end], "little")
        if (pairs + (pairs << 11)).to_bytes(end - start + 1, "little").translate(None, _PAIRS):
            return False
        start = end
    return True


def numbers_only(values, empty: bool = False) -> bool:
    """Every value is a NUMBER (or empty, with empty)."""
    return number_values(values, empty) is not None


def number_values(values, empty: bool = False) -> Numbers | None:
    """What number_marks finds of the values as lines, when every one is a NUMBER (or empty, with empty)."""
    values = values if isinstance(values, (list, tuple)) else list(values)
    if not values:
        return Numbers(b"", False)
    text = "\n".join(values)
    if not text.isascii() or "," in text or text.count("\n") != len(values) - 1 or (not empty and "" in values):
        return None
    return number_marks(text.encode("ascii"))


def not_finite(values) -> int | None:
    """The index of the first nan or inf among values when the others are numbers or empty: XGBoost's and
    numpy's readers take nan for a missing value and inf as a value XGBoost refuses, so it is refused."""
    odd = [i for i, value in enumerate(values) if value and not numbers_only([value])]
    return odd[0] if odd and all(NOT_FINITE.fullmatch(values[i]) for i in odd) else None


MIN_ROWS_FOR_IDENTIFIER = 20     # below it, many distinct labels may just be a small dataset
IDENTIFIER_SHARE = 0.9           # a text feature with distinct values in this share of rows names rows
ID_DENSITY = 4                   # an id's range spans at most this many times its count
IDENTIFIER_EVIDENCE = 50_000     # rows of all-distinct whole numbers that settle a label is an identifier


def identifier_like(distinct: int, rows: int) -> bool:
    """A text feature whose values are (nearly) all distinct: it names rows, it does not describe them."""
    return rows >= MIN_ROWS_FOR_IDENTIFIER and distinct >= IDENTIFIER_SHARE * rows


class NumericLabelWatch:
    """Whether a numeric label is a row number or an id: whole numbers, every one distinct, dense (the range
    at most ID_DENSITY times the count, as ids left after a filter are; prices spread far wider). Watches
    the first IDENTIFIER_EVIDENCE rows at most, and stops at the first repeat or fraction."""

    def __init__(self, name: str):
        self.name = name
        self.seen: set | None = set()
        self.rows = 0

    def add(self, values) -> None:
        if self.seen is None:
            return
        values = list(values)[:IDENTIFIER_EVIDENCE - self.rows]
        self.seen.update(values)
        self.rows += len(values)
        if len(self.seen) < self.rows or not all(float(v).is_integer() for v in values):
            self.seen = None
        elif self.rows >= IDENTIFIER_EVIDENCE:
            self.check()

    def check(self) -> None:
        """Raises InvalidLabel when what was seen is an identifier."""
        if self.seen is None or self.rows < MIN_ROWS_FOR_IDENTIFIER:
            return
        numbers = [float(v) for v in self.seen]
        if max(numbers) - min(numbers) + 1 <= ID_DENSITY * self.rows:
            raise InvalidLabel(f"label column {self.name!r} looks like an identifier: {self.rows} distinct whole "
                               f"numbers in {self.rows} rows, from {min(numbers):.0f} to {max(numbers):.0f}; "
                               "set labelColumn to the column to predict")
        self.seen = None


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


def run_hyperparameters(problem: str, classes: list[str] | None, objectives: dict[str, dict[str, str]],
                        stack: dict[str, str], run: dict[str, str]) -> tuple[dict[str, str], dict[str, str]]:
    """What the training job gets, every value explicit (so the console shows it), and where each came from:
    train.py's default, the problem the labels make, the stack's config or this run's input, later over earlier.
    An objective the labels contradict is refused here, before any job."""
    layers = (("default", {**hyperparameters.TRAINING_DEFAULTS, **hyperparameters.BOOSTER_DEFAULTS}),
              ("problem", objective_hyperparameters(problem, classes, objectives)), ("stack", stack), ("run", run))
    values: dict[str, str] = {}
    origins: dict[str, str] = {}
    for origin, layer in layers:
        for name, value in layer.items():
            name = hyperparameters.ALIASES.get(name, name)
            values[name], origins[name] = value, origin
    refused = hyperparameters.problem_refusal(problem, values["objective"])
    if refused:
        where = "the execution input's" if origins["objective"] == "run" else "the stack's"
        raise InvalidHyperparameter(f"{where} hyperparameters: {refused}")
    return values, origins


def quality_gate(request: Request, stack_gate: dict, problem: str, values: dict[str, str],
                 origins: dict[str, str]) -> dict:
    """The run's gate from the execution input over the stack's (stack_gate: its metric, threshold and the
    image's maximize / minimize metric names). A metric this problem cannot report is refused, before any job
    starts; one it can is added to eval_metric (values and origins are updated)."""
    metric = stack_gate["metric"] if request.quality_metric is None else request.quality_metric
    threshold = stack_gate["threshold"] if request.quality_threshold is None else request.quality_threshold
    if not metric:
        if request.quality_threshold is not None:
            raise InvalidQualityGate("qualityThreshold needs a qualityMetric (the stack has none): "
                                     "name the metric it is for, e.g. validation:auc")
        return {"metric": "", "threshold": 0, "maximize": True, "comparison": ">="}
    name = metric.removeprefix("validation:")
    if not metric.startswith("validation:") or name not in stack_gate["maximize"] + stack_gate["minimize"]:
        raise InvalidQualityGate(f"qualityMetric {metric!r} is not one of the image's validation metrics "
                                 f"(validation:<{', '.join(stack_gate['maximize'] + stack_gate['minimize'])}>)")
    reportable = hyperparameters.gate_metrics(problem, values["objective"])
    if name not in reportable:
        raise InvalidQualityGate(f"qualityMetric {metric!r} is not a metric a {problem} run reports (objective "
                                 f"{values['objective']}); it can gate on validation:<{', '.join(reportable)}>")
    if threshold is None:
        raise InvalidQualityGate(f"qualityMetric {metric!r} needs a qualityThreshold")
    asked = [part.strip() for part in values["eval_metric"].split(",") if part.strip()]
    if name not in asked:
        values["eval_metric"] = ",".join(hyperparameters.with_metric(asked, name))
        origins["eval_metric"] = "gate"
    maximize = name in stack_gate["maximize"]
    return {"metric": metric, "threshold": threshold, "maximize": maximize, "comparison": ">=" if maximize else "<="}


def run_tuning(request: Request, stack_tuning: dict) -> dict:
    """The run's tuning config: the execution's maxJobs, maxParallelJobs and ranges over the stack's (stack_tuning:
    sagestep:tuning as the stack sets it, {} when it does not tune), checked as the stack checks its own, defaults
    filled in; {} when the stack does not tune. Called before any work, and again when the plan is made."""
    if not stack_tuning:
        if request.tuning is not None:
            raise InvalidTuning("the execution input sets tuning, but this stack does not tune: set sagestep:tuning "
                                "and deploy it")
        return {}
    refused = tuning.refusal({**stack_tuning, **(request.tuning or {})})
    if refused:
        raise InvalidTuning(f"the execution input's tuning: {refused}")
    return tuning.effective(stack_tuning, request.tuning)


def tuning_plan(config: dict, stack_gate: dict, gate: dict, problem: str, values: dict[str, str],
                origins: dict[str, str]) -> dict:
    """What the Tune state reads ($.run.tuning): the objective (config's, else the gate's metric, else the last of
    eval_metric, the one the run early-stops on) in the image's direction, added to eval_metric as the gate's is
    (values and origins are updated); the ranges and limits as the API takes them; every other hyperparameter,
    static."""
    asked = [part.strip() for part in values["eval_metric"].split(",") if part.strip()]
    metric = config.get("objective") or gate["metric"] or f"validation:{asked[-1]}"
    name = metric.removeprefix("validation:")
    reportable = hyperparameters.gate_metrics(problem, values["objective"])
    if name not in reportable:
        raise InvalidTuning(f"the tuning objective {metric!r} is not a metric a {problem} run reports (objective "
                            f"{values['objective']}); it can tune on validation:<{', '.join(reportable)}>")
    if name not in asked:
        values["eval_metric"] = ",".join(hyperparameters.with_metric(asked, name))
        origins["eval_metric"] = "tuning"
    return {
        "objective": {"Type": "Maximize" if name in stack_gate["maximize"] else "Minimize", "MetricName": metric},
        "resourceLimits": tuning.resource_limits(config),
        "parameterRanges": tuning.parameter_ranges(config["ranges"]),
        "staticHyperParameters": {key: value for key, value in values.items() if key not in config["ranges"]},
    }
