"""Batch-transform handlers for the SageMaker XGBoost framework container (text/csv in and out).

A request holds many records (BatchStrategy MultiRecord); they are parsed by pyarrow's CSV reader (the
image ships pyarrow 22.0.0) and predicted in one call. Output: one line per input line, in order.
"""
from __future__ import annotations

import io
import json
import os

import numpy as np
import pyarrow as pa
import pyarrow.csv as pa_csv
import xgboost as xgb

MODEL_FILE = "xgboost-model.json"
CSV = "text/csv"
# Numbers only, as np.loadtxt reads them: no header, no quoting (a quote is no part of a number), and only an
# empty field is missing (pyarrow's other null spellings, "NA", "null", ..., are not numbers).
# On the calling thread: the image's serving sets OMP_NUM_THREADS=1, which pyarrow's pool follows anyway, and a
# process that ends with pyarrow's pool threads alive may abort ("terminate called without an active exception",
# once in a local suite run).
READ = pa_csv.ReadOptions(autogenerate_column_names=True, use_threads=False)
PARSE = pa_csv.ParseOptions(quote_char=False)


class InvalidPayload(ValueError):
    """A record that cannot be predicted: the message names the line and the problem."""


class Model:
    def __init__(self, booster: xgb.Booster, schema: dict | None, objective: str):
        self.booster = booster
        self.objective = objective
        self.classes = (schema or {}).get("label", {}).get("classes")
        self.num_features = booster.num_features()


def model_fn(model_dir: str) -> Model:
    booster = xgb.Booster()
    booster.load_model(os.path.join(model_dir, MODEL_FILE))
    schema = None
    if os.path.isfile(os.path.join(model_dir, "schema.json")):
        with open(os.path.join(model_dir, "schema.json")) as f:
            schema = json.load(f)
    objective = json.loads(booster.save_config())["learner"]["objective"]["name"]
    return Model(booster, schema, objective)


def _diagnose(lines: list[str], width: int) -> str:
    """The first bad line, for the error message (only on the slow path)."""
    for number, line in enumerate(lines, start=1):
        fields = line.split(",")
        if len(fields) != width:
            return f"line {number}: expected {width} fields, found {len(fields)}"
        for column, field in enumerate(fields, start=1):
            text = field.strip()
            if text:
                try:
                    float(text)
                except ValueError:
                    return f"line {number}, field {column}: {text[:40]!r} is not a number"
    return "unreadable CSV"


def _loadtxt_agrees(payload: bytes) -> bool:
    """False where pyarrow would read what np.loadtxt refuses: a byte-order mark, a lone CR as a line
    break, C's "nan(...)"; those payloads take np.loadtxt's path, so both accept and refuse the same."""
    return (not payload.startswith(b"\xef\xbb\xbf") and b"(" not in payload
            and (b"\r" not in payload or payload.count(b"\r") == payload.count(b"\r\n")))


def _parse(payload: bytes) -> np.ndarray | None:
    """The payload through pyarrow's C++ reader (4-7x np.loadtxt here), or None where it refuses it. Each value
    is read as a double and rounded to float32, as np.loadtxt does, so the predictions are the same."""
    width = payload.partition(b"\n")[0].count(b",") + 1
    types = {f"f{column}": pa.float64() for column in range(width)}
    try:
        table = pa_csv.read_csv(io.BytesIO(payload), read_options=READ, parse_options=PARSE,
                                convert_options=pa_csv.ConvertOptions(column_types=types, null_values=[""]))
    except pa.ArrowInvalid:
        return None
    if table.num_columns != width:      # blank lines before the first record
        return None
    data = np.empty((table.num_rows, width), dtype=np.float32)
    with np.errstate(over="ignore"):    # beyond float32's range is +-inf, as in np.loadtxt
        for column, values in enumerate(table.columns):
            data[:, column] = values.to_numpy()
    return data


def input_fn(input_data, content_type: str) -> np.ndarray:
    if content_type.split(";")[0].strip() != CSV:
        raise InvalidPayload(f"content type {content_type!r} is not supported; send {CSV}")
    text = input_data.decode("utf-8") if isinstance(input_data, (bytes, bytearray)) else input_data
    text = text.rstrip("\r\n")
    if not text:
        return np.empty((0, 0), dtype=np.float32)
    payload = (text + "\n").encode()   # a lone record needs its line end (pyarrow finds no columns without)
    data = _parse(payload) if _loadtxt_agrees(payload) else None
    if data is not None:
        return data
    try:
        # What pyarrow refused (comments, whitespace-only fields, bad values): np.loadtxt, as before.
        return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2)
    except ValueError:
        pass
    try:
        # Empty fields are missing values: the same parse with a converter (slower, still one call).
        return np.loadtxt(io.StringIO(text), delimiter=",", dtype=np.float32, ndmin=2,
                          converters=lambda field: float(field) if field.strip() else np.nan)
    except ValueError:
        lines = text.replace("\r\n", "\n").split("\n")
        raise InvalidPayload(_diagnose(lines, len(lines[0].split(",")))) from None


def predict_fn(data: np.ndarray, model: Model) -> dict:
    """All records in one call; the classes travel along for output_fn (which gets no model)."""
    if data.size == 0:
        return {"values": np.empty((0,), dtype=np.float32), "classes": model.classes, "objective": model.objective}
    if data.shape[1] != model.num_features:
        raise InvalidPayload(f"line 1: expected {model.num_features} fields, found {data.shape[1]}")
    return {"values": model.booster.inplace_predict(data, missing=np.nan), "classes": model.classes,
            "objective": model.objective}


def _field(name: str) -> str:
    """A class name as one CSV field (RFC 4180 quoting, only when it needs it)."""
    return '"' + name.replace('"', '""') + '"' if any(c in name for c in ',"\r\n') else name


def output_fn(prediction: dict, accept: str) -> tuple[str, str]:
    """Classification: the predicted class (its name, as in the held-out labels) then the probability of
    every class in class order, "<class>,<p0>,...,<pk-1>". Regression: "<value>". One line per record."""
    if accept.split(";")[0].strip() not in (CSV, "*/*", ""):
        raise InvalidPayload(f"accept type {accept!r} is not supported; ask for {CSV}")
    values, classes = prediction["values"], prediction["classes"]
    if values.ndim == 1 and not prediction.get("objective", "").startswith("binary:"):
        return "".join(map("%.6f\n".__mod__, values.tolist())), CSV
    probabilities = np.column_stack([1 - values, values]) if values.ndim == 1 else values
    names = np.array([_field(name) for name in classes or map(str, range(probabilities.shape[1]))], dtype=object)
    best = names[probabilities.argmax(axis=1)] if len(probabilities) else names[:0]
    # One C-level "%" per line: "<class>,<p0>,...,<pk-1>".
    line = "%s," + ",".join(["%.6f"] * probabilities.shape[1]) + "\n"
    return "".join(map(line.__mod__, zip(best.tolist(), *probabilities.T.tolist()))), CSV
