"""training/train.py and inference/inference.py under the container contract, on real small datasets."""
import csv
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from infra.catalogue import SUPPORTED_XGBOOST
from infra.settings import project_defaults
from preprocess.evaluation import evaluate
from sagestep import ROOT
from sagestep.local import image
from statemachine import framework

sys.path.insert(0, str(ROOT / "inference"))
sys.path.insert(0, str(ROOT / "training"))
import inference  # noqa: E402  (the module SageMaker imports from the code bundle)
import train as train_script  # noqa: E402

OBJECTIVES = {"binary": ("binary:logistic", "logloss"), "multiclass": ("multi:softprob", "mlogloss"),
              "regression": ("reg:squarederror", "rmse")}


def dataset(kind):
    x, y = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind](return_X_y=True)
    order = np.random.default_rng(0).permutation(len(y))
    return x[order], y[order]


def write_channel(folder: Path, x, y):
    folder.mkdir(parents=True)
    np.savetxt(folder / "part-0.csv", np.column_stack([y, x]), delimiter=",", fmt="%.6g")


def run_training(tmp_path: Path, kind: str, extra_hps=None, checkpoint_dir=None, channels=True):
    x, y = dataset(kind)
    cut = int(len(y) * 0.8)
    if channels:
        write_channel(tmp_path / "input/data/train", x[:cut], y[:cut])
        write_channel(tmp_path / "input/data/validation", x[cut:], y[cut:])
    objective, metric = OBJECTIVES[kind]
    hps = {"objective": objective, "eval_metric": metric, "num_round": "40",
           **({"num_class": "3"} if kind == "multiclass" else {}), **(extra_hps or {})}
    env = {**os.environ, "SM_CHANNEL_TRAIN": str(tmp_path / "input/data/train"),
           "SM_CHANNEL_VALIDATION": str(tmp_path / "input/data/validation"),
           "SM_MODEL_DIR": str(tmp_path / "model"), "SM_OUTPUT_DIR": str(tmp_path / "output"),
           "SM_OUTPUT_DATA_DIR": str(tmp_path / "output/data"), "SM_NUM_GPUS": "0",
           "SM_HPS": json.dumps(hps), "SAGESTEP_CHECKPOINT_DIR": str(checkpoint_dir or tmp_path / "no-checkpoints")}
    args = [a for k, v in hps.items() for a in (f"--{k}", v)]
    # The image's Python side runs the script, as in the container (and its xgboost imports no pandas or
    # scikit-learn, which the test tools bring into the project's venv: 0.5 s to start, not 3.5 s).
    python = str(image.image_env() / "bin/python")
    return subprocess.run([python, str(ROOT / "training/train.py"), *args], env=env,
                          capture_output=True, text=True, timeout=120), x[cut:], y[cut:]


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_training_and_batch_inference_round_trip(tmp_path, kind):
    result, x_test, y_test = run_training(tmp_path, kind)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((tmp_path / "model/metrics.json").read_text())
    _, metric = OBJECTIVES[kind]
    assert set(metrics["metrics"]) == {f"train:{metric}", f"validation:{metric}"}
    assert metrics["device"] == "cpu" and metrics["xgboost"] == "3.0.5"

    model = inference.model_fn(str(tmp_path / "model"))
    payload = "\n".join(",".join(f"{v:.6g}" for v in row) for row in x_test).encode()
    body, content_type = inference.output_fn(inference.predict_fn(inference.input_fn(payload, "text/csv"), model),
                                             "text/csv")
    lines = body.splitlines()
    assert content_type == "text/csv" and len(lines) == len(y_test)
    if kind in ("binary", "multiclass"):
        # No schema in the model: the classes are named by their index.
        rows = [line.split(",") for line in lines]
        probabilities = np.array([[float(v) for v in row[1:]] for row in rows])
        predicted = np.array([int(row[0]) for row in rows])
        assert probabilities.shape == (len(y_test), 2 if kind == "binary" else 3)
        assert np.allclose(probabilities.sum(axis=1), 1, atol=1e-5) and (probabilities.argmax(axis=1) == predicted).all()
        assert (predicted == y_test).mean() > (0.9 if kind == "binary" else 0.85)
    else:
        predicted = np.array([float(v) for v in lines])
        assert np.corrcoef(predicted, y_test)[0, 1] > 0.4


# The image's own definitions, written out as the reference lists them (xgboost-container.md, R2).
IMAGE_REGEX = r".*\[[0-9]+\].*#011validation-{}:(\S+)"


def test_our_copy_of_the_image_metric_definitions_is_the_image_s():
    definitions = framework.metric_definitions()
    assert len(definitions) == 33 and len({d.name for d in definitions}) == 33
    for d in definitions:
        metric = d.name.split(":", 1)[1]
        assert d.regex == IMAGE_REGEX.format(metric)
        assert d.maximize == (metric in ("auc", "accuracy", "aucpr", "f1", "map", "ndcg", "r2", "precision", "recall",
                                         "balanced_accuracy", "f1_binary", "f1_macro", "precision_macro",
                                         "precision_micro", "recall_macro", "recall_micro"))


@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression"])
def test_the_image_regexes_capture_every_round_from_the_log_as_cloudwatch_stores_it(tmp_path, kind):
    """For each objective sagestep chooses: the log rendered the CloudWatch way (tab = #011), the
    image's exact regex for validation:<metric> captures a plain number every round, the round early
    stopping ends on included."""
    result, _, _ = run_training(tmp_path, kind, {"num_round": "500", "early_stopping_rounds": "5"})
    assert result.returncode == 0, result.stderr
    stored = [line.replace("\t", "#011") for line in result.stdout.splitlines()]
    rounds = [line for line in stored if line.startswith("[")]
    assert len(rounds) >= 10
    _, metric = OBJECTIVES[kind]
    captured = [m.group(1) for line in stored if (m := re.search(IMAGE_REGEX.format(metric), line))]
    assert len(captured) == len(rounds)
    assert all(re.fullmatch(r"-?\d+\.\d{6}", value) for value in captured), captured[:3]
    trained = json.loads((tmp_path / "model/metrics.json").read_text())
    assert trained["rounds"] < 500, "early stopping ended the training"
    assert len(rounds) == trained["rounds"] and rounds[-1].startswith(f"[{trained['rounds'] - 1}]#011"), \
        "every round trained has its line, the last one included"
    final = trained["metrics"][f"validation:{metric}"]
    assert float(captured[-1]) == pytest.approx(final, abs=1e-6)
    # What SageMaker would store as FinalMetricDataList: that one metric, its last value.
    assert framework.scrape(stored) == {f"validation:{metric}": float(captured[-1])}


def test_with_two_metrics_each_validation_value_ends_its_line(tmp_path):
    """XGBoost's EvaluationMonitor would print train-auc, train-logloss, validation-auc, ...: then
    (\\S+) after validation-auc runs into "#011validation-logloss:…". One line per metric cannot."""
    lines = train_script.metric_lines(3, {"train": {"auc": [0.9], "logloss": [0.3]},
                                          "validation": {"auc": [0.8], "logloss": [0.4]}})
    assert lines == ["[3]\ttrain-auc:0.900000\tvalidation-auc:0.800000",
                     "[3]\ttrain-logloss:0.300000\tvalidation-logloss:0.400000"]
    assert framework.scrape([framework.as_cloudwatch_stores_it(line) for line in lines]) == {
        "validation:auc": 0.8, "validation:logloss": 0.4}


def test_multiclass_output_uses_the_schema_labels(tmp_path):
    """schema.json lies beside the validation data (FullyReplicated: every host has it) and is not read as data."""
    x, y = dataset("multiclass")
    write_channel(tmp_path / "input/data/train", x[:120], y[:120])
    (tmp_path / "input/data/validation").mkdir(parents=True)
    np.savetxt(tmp_path / "input/data/validation/part-0.csv", np.column_stack([y[120:], x[120:]]), delimiter=",",
               fmt="%.6g")
    (tmp_path / "input/data/validation/schema.json").write_text(json.dumps(
        {"label": {"name": "species", "classes": ["setosa", "versicolor", "virginica"]}}))
    result, _, _ = run_training(tmp_path, "multiclass", channels=False)
    assert result.returncode == 0, result.stderr
    model = inference.model_fn(str(tmp_path / "model"))
    body, _ = inference.output_fn(inference.predict_fn(inference.input_fn("5.1,3.5,1.4,0.2\n6.7,3.0,5.2,2.3", "text/csv"),
                                                       model), "text/csv")
    assert [line.split(",")[0] for line in body.splitlines()] == ["setosa", "virginica"]


@pytest.mark.parametrize("payload, message", [
    ("1,2,3,4\n1,2,3\n", "line 2: expected 4 fields, found 3"),
    ("1,2,3,4\n1,2,abc,4\n", "line 2, field 3: 'abc' is not a number"),
    ("1,2\r\n3,4,5\r\n", "line 2: expected 2 fields, found 3"),
    ("1,2\n  \n3,4", "line 2: expected 2 fields, found 1"),
    ("1,2\n1.2.3,4", "line 2, field 1: '1.2.3' is not a number"),
    ("1,--e", "line 1, field 2: '--e' is not a number"),
    ("NA,1", "line 1, field 1: 'NA' is not a number"),             # one of pyarrow's null spellings
    ('"1.5",2', "line 1, field 1: '\"1.5\"' is not a number"),     # quoted
    # What pyarrow alone would read: C's nan(...), a lone CR as a line break, a byte-order mark.
    ("nan(1),1", "line 1, field 1: 'nan(1)' is not a number"),
    ("1\r2\n3", "line 1, field 1: '1\\r2' is not a number"),
    ("\ufeff1,2", "line 1, field 1: '\\ufeff1' is not a number"),
])
def test_malformed_payloads_name_the_line(tmp_path, payload, message):
    with pytest.raises(inference.InvalidPayload, match=re.escape(message)):
        inference.input_fn(payload, "text/csv")


def test_missing_values_and_content_types(tmp_path):
    data = inference.input_fn(b"1,,3\n4,5,6\n", "text/csv")
    assert data.shape == (2, 3) and np.isnan(data[0, 1])
    with pytest.raises(inference.InvalidPayload, match="application/json"):
        inference.input_fn(b"{}", "application/json")


def loadtxt_parse(payload: str) -> np.ndarray:
    """The handler's parse before pyarrow: np.loadtxt, an empty field a missing value."""
    with np.errstate(over="ignore"):
        return np.loadtxt(io.StringIO(payload.rstrip("\r\n")), delimiter=",", dtype=np.float32, ndmin=2,
                          converters=lambda field: float(field) if field.strip() else np.nan)


def number_fields(seed: int, rows: int, columns: int) -> list[list[str]]:
    """Numbers as people and programs write them: up to 17 digits, signs, exponents beyond float32's range
    both ways, integers past 2**24, empty fields, nan and inf."""
    rng = np.random.default_rng(seed)
    specials = ["", "", "nan", "-inf", "inf", "1e39", "-0", "1E-45", "3.4028235e38", "+.5", "5.", "  2.5 "]
    def field() -> str:
        value = float(rng.uniform(-1, 1) * 10.0 ** rng.integers(-45, 45))
        kind = rng.integers(7)
        return (specials[rng.integers(len(specials))] if kind == 0 else repr(value) if kind == 1
                else f"{value:.17g}" if kind == 2 else f"{value:.5g}" if kind == 3 else f"{value:e}" if kind == 4
                else f"{value:.9f}" if kind == 5 else str(rng.integers(-10**15, 10**15)))
    return [[field() for _ in range(columns)] for _ in range(rows)]


@pytest.mark.parametrize("payload", [
    *("\n".join(",".join(row) for row in number_fields(seed, 300, 7)) for seed in range(3)),
    "\r\n".join(",".join(row) for row in number_fields(3, 300, 7)) + "\r\n",      # CRLF, a trailing line end
    "\n".join(",".join(row) for row in number_fields(4, 50, 1)) + "\n\n",           # one column
    "0.1,-2.5e-3,1e5\n", "1,,3\n4,5,6\n", ",,\n", "1,2\n\n3,4\n", "-nan,INF,Infinity",
    # What pyarrow refuses and np.loadtxt reads: comments, whitespace-only fields, underscores, a leading blank.
    "1,2 # note\n3,4", "# header\n1,2", "  ,1\n2,3", "1_000,2", "\n1,2\n3,4",
])
def test_the_parse_reads_every_payload_as_np_loadtxt_did(payload):
    data, expected = inference.input_fn(payload.encode(), "text/csv"), loadtxt_parse(payload)
    assert data.dtype == np.float32 and data.flags.c_contiguous
    assert data.shape == expected.shape and data.tobytes() == expected.tobytes()


@pytest.mark.parametrize("payload", ["", "\n", "\r\n"])
def test_an_empty_payload_is_no_records(payload):
    assert inference.input_fn(payload, "text/csv").shape == (0, 0)


@pytest.mark.parametrize("objective, classes", [("binary:logistic", ["no", "yes"]), ("reg:squarederror", None)])
def test_the_output_lines_are_the_ones_np_loadtxt_gave(monkeypatch, objective, classes):
    """Byte for byte, through pyarrow's reader: np.loadtxt here would fail the request."""
    rng = np.random.default_rng(0)
    x = rng.normal(size=(400, 7)).astype(np.float32)
    booster = xgb.train({"objective": objective, "max_depth": 4}, xgb.DMatrix(x, label=x[:, 0] > 0), 10)
    model = inference.Model(booster, {"label": {"classes": classes}}, objective)
    payload = "\r\n".join(",".join(row) for row in number_fields(5, 2000, 7)) + "\r\n"
    expected, _ = inference.output_fn(inference.predict_fn(loadtxt_parse(payload), model), "text/csv")

    def refused(*args, **kwargs):
        raise AssertionError("np.loadtxt parsed a payload pyarrow reads")
    monkeypatch.setattr(inference.np, "loadtxt", refused)
    body, _ = inference.output_fn(inference.predict_fn(inference.input_fn(payload, "text/csv"), model), "text/csv")
    assert body == expected and len(body.splitlines()) == 2000


def test_a_failure_is_one_clear_line_on_stderr_and_exit_1(tmp_path):
    """The image's launcher overwrites the failure file, so the reason goes to the log."""
    (tmp_path / "input/data/train").mkdir(parents=True)
    (tmp_path / "input/data/train/part-0.csv").write_text("1,2,3\n0,4\n")
    (tmp_path / "input/data/validation").mkdir(parents=True)
    (tmp_path / "input/data/validation/part-0.csv").write_text("1,2,3\n")
    result, _, _ = run_training(tmp_path, "binary", channels=False)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert result.stderr.splitlines() == [
        "TrainingError: channel 'train', file part-0.csv: Line #2 (got 2 columns instead of 3)"]
    assert not (tmp_path / "output/failure").exists()


def test_a_missing_channel_is_named(tmp_path):
    result, _, _ = run_training(tmp_path, "binary", channels=False)
    assert result.returncode == 1
    assert result.stderr.splitlines()[-1].startswith("TrainingError: channel 'train' is missing")


def test_checkpoints_resume_after_an_interruption(tmp_path):
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    # A first attempt that got 10 rounds in before the spot instance went away.
    first, _, _ = run_training(tmp_path, "binary", {"num_round": "10", "early_stopping_rounds": "1000",
                                                    "checkpoint_interval": "5"}, checkpoint_dir=checkpoints)
    assert first.returncode == 0, first.stderr
    assert sorted(os.listdir(checkpoints)) == ["checkpoint-10.json"]
    (tmp_path / "model").rename(tmp_path / "model-first")
    second, x_test, y_test = run_training(tmp_path, "binary", {"num_round": "30", "early_stopping_rounds": "1000",
                                                              "checkpoint_interval": "5"},
                                          checkpoint_dir=checkpoints, channels=False)
    assert second.returncode == 0, second.stderr
    assert "resuming from checkpoint-10.json (10 rounds done)" in second.stdout
    assert second.stdout.splitlines()[1].startswith("[10]\t")
    assert json.loads((tmp_path / "model/metrics.json").read_text())["rounds"] == 30
    model = inference.model_fn(str(tmp_path / "model"))
    values = inference.predict_fn(inference.input_fn("\n".join(",".join(map(str, r)) for r in x_test), "text/csv"),
                                  model)["values"]
    assert ((values > 0.5) == y_test).mean() > 0.9


def test_local_xgboost_is_the_containers_release():
    import xgboost
    assert xgboost.__version__ == SUPPORTED_XGBOOST[project_defaults()["xgboostVersion"]]
    import tomllib
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    image = (ROOT / "sagestep/local/image/requirements.txt").read_text().splitlines()
    for pins in (extras["local"], image):
        assert [pin for pin in pins if pin.startswith("xgboost")] == [f"xgboost-cpu=={xgboost.__version__}"]


def test_missing_feature_values_train(tmp_path):
    x, y = dataset("binary")
    rows = [",".join([f"{label:g}"] + ["" if (i + j) % 7 == 0 else f"{v:.6g}" for j, v in enumerate(row)])
            for i, (row, label) in enumerate(zip(x, y))]
    for name, part in (("train", rows[:450]), ("validation", rows[450:])):
        (tmp_path / f"input/data/{name}").mkdir(parents=True)
        (tmp_path / f"input/data/{name}/part-0.csv").write_text("\n".join(part) + "\n")
    result, _, _ = run_training(tmp_path, "binary", channels=False)
    assert result.returncode == 0, result.stderr
    assert json.loads((tmp_path / "model/metrics.json").read_text())["metrics"]["validation:logloss"] < 0.3


@pytest.mark.parametrize("problem, classes, values, labels", [
    ("binary", ["no", "a, b"], [0.2, 0.9], ["no", "a, b"]),
    ("multiclass", ["setosa", "versicolor", "virginica"], [[0.1, 0.7, 0.2], [0.8, 0.1, 0.1]], ["versicolor", "setosa"]),
    ("regression", None, [3.5, -1.25], ["3.5", "-1.25"]),
])
def test_the_prediction_format_inference_writes_is_the_one_the_evaluate_step_reads(problem, classes, values, labels):
    """Class names (quoted when they need it) in the predictions as in the held-out labels."""
    objective = {"binary": "binary:logistic", "multiclass": "multi:softprob", "regression": "reg:squarederror"}
    body, _ = inference.output_fn({"values": np.array(values, dtype=np.float32), "classes": classes,
                                   "objective": objective[problem]}, "text/csv")
    label = {"trainMean": 0.0} if classes is None else {"trainCounts": [1] * len(classes)}
    schema = {"problem": problem, "label": {"name": "y", "classes": classes, **label}, "rows": {"test": 2}}
    result = evaluate(schema, csv.reader(io.StringIO(body)), [[name] for name in labels])
    if problem == "regression":
        assert result["metrics"]["rmse"] == 0
    else:
        assert result["metrics"]["accuracy"] == 1 and result["metrics"]["logLoss"] < 0.4
        assert body.splitlines()[1].startswith('"a, b",0.100000,0.900000' if problem == "binary" else "setosa,0.8")


def test_every_callback_runs_every_round_in_order_even_when_one_stops():
    """XGBoost keeps callbacks in a set and stops at the first that returns True; the final round's
    metric line must not depend on which comes first."""
    calls = []

    class Recorder(train_script.xgb.callback.TrainingCallback):
        def __init__(self, name, stop):
            super().__init__()
            self.name, self.stop = name, stop

        def after_iteration(self, model, epoch, evals_log):
            calls.append(self.name)
            return self.stop
    in_order = train_script.InOrder([Recorder("stopper", True), Recorder("printer", False), Recorder("last", False)])
    assert in_order.after_iteration(None, 0, {}) is True
    assert calls == ["stopper", "printer", "last"]
