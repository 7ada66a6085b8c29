"""The run report as a person sees it: rendered by Debian's chromium, headless (`.ci/run` installs it),
driven by Playwright. Each record is a real run's shape: a tiny XGBoost model trained here and saved as
model.tar.gz, its test predictions in predictions.csv, the Evaluate step's own metrics, the deployed definition."""
from __future__ import annotations

import csv
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest
import xgboost as xgb
from PIL import Image
from playwright.sync_api import Browser, sync_playwright
from sklearn.datasets import load_breast_cancer, load_diabetes, load_iris

from preprocess.evaluation import evaluate
from sagestep.run_report import NOT_ENTERED, STATUS_STYLE, read_predictions, roc_curve, write_report
from statemachine import state_order

CHROMIUM = Path("/usr/bin/chromium")        # Debian's package; Playwright downloads no browser of its own
# A class name from a user's dataset that would run a script if it reached the page unescaped.
HOSTILE = '<img src=x onerror="window.pwned=1">&amp; <b>bold</b>'
OBJECTIVES = {"binary": ("binary:logistic", "logloss"), "multiclass": ("multi:softprob", "mlogloss"),
              "regression": ("reg:squarederror", "rmse")}


@pytest.fixture(scope="module")
def browser() -> Browser | None:
    """One browser for the module; None without chromium, and each test then fails saying so (never a skip)."""
    if not CHROMIUM.exists():
        yield None
        return
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM))
        yield browser
        browser.close()


def _dataset(kind: str):
    """Features, labels (class names, or numbers), feature names, class names in sorted order."""
    loader = {"binary": load_breast_cancer, "multiclass": load_iris, "regression": load_diabetes}[kind]
    data = loader()
    names = [str(name) for name in data.feature_names]
    if kind == "regression":
        return data.data, data.target.astype(float), names, None
    named = [HOSTILE if name == "malignant" else str(name) for name in data.target_names]
    return data.data, np.array([named[code] for code in data.target]), names, sorted(named)


def _model_tar(booster: xgb.Booster, path: Path) -> Path:
    """model.tar.gz as SageMaker stores a training job's /opt/ml/model."""
    raw = bytes(booster.save_raw("json"))
    with tarfile.open(path, "w:gz") as archive:
        member = tarfile.TarInfo("xgboost-model.json")
        member.size = len(raw)
        archive.addfile(member, io.BytesIO(raw))
    return path


def tuned_record(kind: str) -> dict:
    """A tuned run's part of the record: a tuning job of three trials (one failed), the second the best."""
    job = f"sagestep-dev--{kind}-tune"
    trials = [{"name": f"{job}-{n:03d}-0a1b2c3d", "hyperparameters": {"eta": str(eta), "max_depth": "3"},
               "objective": objective, "status": status}
              for n, eta, objective, status in ((1, 0.3, 4.2, "Completed"), (2, 0.1, 3.1, "Completed"),
                                                (3, 0.05, None, "Failed"))]
    return {"job": job, "objective": {"Type": "Minimize", "MetricName": "validation:rmse"}, "best": trials[1]["name"],
            "trials": trials}


def run_record(kind: str, definition: dict, folder: Path, rounds: int = 30) -> dict:
    """A finished run's record, as the CLI builds it, from a real model trained on a real dataset."""
    x, labels, names, classes = _dataset(kind)
    order = np.random.default_rng(7).permutation(len(x))
    train, validation, test = np.split(order, [int(0.6 * len(x)), int(0.8 * len(x))])
    objective, metric = OBJECTIVES[kind]
    target = labels if classes is None else np.array([classes.index(label) for label in labels], dtype=float)
    params = {"objective": objective, "eval_metric": metric, "max_depth": 3, "eta": 0.3, "seed": 7,
              **({"num_class": len(classes)} if kind == "multiclass" else {})}
    history: dict = {}
    booster = xgb.train(params, xgb.DMatrix(x[train], label=target[train]), rounds, evals_result=history,
                        verbose_eval=False,
                        evals=[(xgb.DMatrix(x[train], label=target[train]), "train"),
                               (xgb.DMatrix(x[validation], label=target[validation]), "validation")])
    scores = booster.predict(xgb.DMatrix(x[test]))
    if kind == "regression":
        predicted = [[f"{value:.6g}"] for value in scores]
        label_stats = {"trainMean": float(labels[train].mean())}
    else:
        probabilities = np.column_stack([1 - scores, scores]) if kind == "binary" else scores
        predicted = [[classes[int(np.argmax(p))], *(f"{v:.6f}" for v in p)] for p in probabilities]
        label_stats = {"trainCounts": [int((labels[train] == name).sum()) for name in classes]}
    held_out = [[f"{labels[i]:.6g}" if classes is None else labels[i]] for i in test]
    identifier = "sample" if kind == "multiclass" else None            # --id: first in predictions.csv
    schema = {"label": {"name": "target", "classes": classes, **label_stats}, "problem": kind,
              "features": [{"name": name, "type": "numeric"} for name in names], "id": identifier,
              "ignored": [{"name": "row_id", "reason": "an identifier: every value differs"}],
              "rows": {"train": len(train), "validation": len(validation), "test": len(test)}}
    evaluation = evaluate(schema, predicted, held_out)
    predictions = folder / "predictions.csv"
    with open(predictions, "w", newline="") as file:
        ids = [[f"s{index}"] if identifier else [] for index in test]
        csv.writer(file).writerows([[*([identifier] if identifier else []), "target", "predicted",
                                     *(f"P({name})" for name in classes or [])],
                                    *([*id_, label, *row] for id_, (label,), row in zip(ids, held_out, predicted))])
    main = state_order(definition)
    threshold = 80.0 if kind == "regression" else 0.5
    training = {"name": f"sagestep-dev--{kind}-train-0", "instanceType": "ml.m5.xlarge", "instanceCount": 1,
                "console": "https://console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs/x"}
    tuning = tuned_record(kind) if kind == "regression" else None      # one tuned run among the three
    return {
        "name": f"local-{kind}", "executionArn": f"arn:aws:states:us-east-1:123456789012:execution:p:local-{kind}",
        "status": "SUCCEEDED", "startDate": "2026-11-27T14:56:28+00:00", "stopDate": "2026-11-27T14:56:41+00:00",
        "region": "us-east-1", "local": kind != "regression", "definition": definition,
        "states": [{"name": name, "status": "SUCCEEDED", "seconds": 0.5 + index / 10}
                   for index, name in enumerate(main)],
        "error": None, "cause": None, "failedState": None,
        "dataset": f"s3://sagestep-dev-data/datasets/{kind}.csv", "rows": schema["rows"],
        "metrics": {f"validation:{metric}": history["validation"][metric][-1],
                    **{f"test:{name}": value for name, value in evaluation["metrics"].items() if value is not None}},
        "curves": {f"{split}:{metric}": history[split][metric] for split in ("train", "validation")},
        "evaluation": evaluation, "schema": schema, "predictions": str(predictions),
        "model": str(_model_tar(booster, folder / "model.tar.gz")),
        **({"tuning": tuning} if tuning else {}),
        "jobs": {**({"tuning": {"name": tuning["job"], "console": training["console"].replace(
                     "/jobs/x", "/hyper-tuning-jobs/x")}} if tuning else {}),
                 "training": training, "transform": {**training, "name": f"sagestep-dev--{kind}-predict-0",
                                                     "instanceType": "ml.m5.large"},
                 "model": {"name": f"sagestep-dev--{kind}-model", "console": None}},
        "registered": {"group": "sagestep-dev-models", "version": 3, "status": "PendingManualApproval",
                       "arn": "arn:aws:sagemaker:us-east-1:123456789012:model-package/sagestep-dev-models/3",
                       "console": "https://console.aws.amazon.com/sagemaker/home?region=us-east-1"
                                  "#/model-registry/sagestep-dev-models"},
        "gate": {"metric": f"validation:{metric}", "threshold": threshold, "comparison": "<=",
                 "value": history["validation"][metric][-1], "passed": history["validation"][metric][-1] <= threshold},
        "hyperparameters": {**{name: {"value": str(value), "from": "run"} for name, value in params.items()
                               if name not in ("objective", "eval_metric", "num_class")},
                            **{name: {"value": str(params[name]), "from": "problem"}
                               for name in ("objective", "eval_metric", "num_class") if name in params},
                            "num_round": {"value": "300", "from": "default"}},
        "cost": {"usd": 0.0123, "estimate": True, "prices": {"source": "AWS price list", "date": "2026-11-01"},
                 "items": [{"item": "training", "detail": "ml.m5.xlarge, 13 s", "usd": 0.0083},
                           {"item": "batch transform", "detail": "ml.m5.large, 10 s", "usd": 0.004},
                           {"item": "Step Functions", "detail": "12 transitions", "usd": None}],
                 "notes": ["the embedded engine ran it: what the same run would cost on AWS"]},
    }


def failed_record(definition: dict) -> dict:
    """A run whose training job failed: no model, no curves, no evaluation; the job's last log lines."""
    job = "sagestep-dev--local-failed-1a2b3c-train-0"
    return {"name": "local-failed", "status": "FAILED", "local": True, "definition": definition,
            "states": [{"name": "Start", "status": "SUCCEEDED", "seconds": 0.01},
                       {"name": "Preprocess", "status": "SUCCEEDED", "seconds": 0.33},
                       {"name": "Train", "status": "FAILED", "seconds": 4.2},
                       {"name": "TrainFailureCause", "status": "SUCCEEDED", "seconds": 0.0},
                       {"name": "TrainFailed", "status": "FAILED", "seconds": 0.0}],
            "error": "States.TaskFailed", "failedState": "Train",
            "cause": 'AlgorithmError: ExecuteUserScriptError: Command "/usr/bin/python3 -m train"',
            "failedJob": {"name": job, "logGroup": "/aws/sagemaker/TrainingJobs", "console": None,
                          "logTail": ["train: XGBoost rejected the training: Invalid Parameter max_depth = -3"]},
            "dataset": "s3://sagestep-dev-data/datasets/iris.csv", "gate": None, "cost": None}


def open_report(browser: Browser | None, path: Path) -> dict:
    """Loads the report as a person would (a file, offline) and returns what a person would notice."""
    if browser is None:
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)", pytrace=False)
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    errors, requests = [], []
    page.on("console", lambda message: message.type in ("error", "assert") and errors.append(message.text))
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("request", lambda request: requests.append(request.url))
    page.goto(path.as_uri(), wait_until="load")
    charts = page.evaluate("""() => [...document.querySelectorAll('.plotly-graph-div')].map(div => {
        const svg = div.querySelector('.main-svg'), box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
        return {id: div.id, traces: (div._fullData || []).length, width: box.width, height: box.height,
                text: div.textContent, fills: (div.layout.shapes || []).map(shape => shape.fillcolor)};
    })""")
    seen = {"errors": errors, "requests": requests, "charts": {chart["id"]: chart for chart in charts},
            "text": page.inner_text("body"), "links": page.eval_on_selector_all("a", "links => links.map(a => a.href)"),
            "pwned": page.evaluate("window.pwned"), "png": page.screenshot(full_page=True)}
    page.close()
    return seen


def assert_renders(seen: dict, path: Path, charts: set[str]) -> None:
    assert seen["errors"] == []
    assert seen["requests"] == [path.as_uri()], "the report must need nothing but itself"
    image = Image.open(io.BytesIO(seen["png"])).convert("RGB")
    pixels = np.asarray(image).reshape(-1, 3)
    assert len(image.getcolors(maxcolors=1 << 24)) > 500
    assert (pixels.min(axis=1) < 235).mean() > 0.02, "the screenshot is almost blank"
    assert charts <= set(seen["charts"])
    for chart in charts:
        drawn = seen["charts"][chart]
        assert drawn["traces"] > 0 and drawn["width"] > 100 and drawn["height"] > 100, drawn


COMMON = {"chart-states", "chart-curve-0", "chart-importance"}


@pytest.mark.parametrize("kind, charts", [
    ("binary", COMMON | {"chart-confusion", "chart-roc"}),
    ("multiclass", COMMON | {"chart-confusion", "chart-roc"}),
    ("regression", COMMON | {"chart-versus", "chart-residuals", "chart-tuning"}),
])
def test_a_run_report_renders_every_chart_in_chromium(browser, definition, tmp_path, kind, charts):
    record = run_record(kind, definition, tmp_path)
    path = write_report(record, tmp_path / "report")
    seen = open_report(browser, path)
    assert_renders(seen, path, charts)
    assert all(name in seen["charts"]["chart-states"]["text"] for name in definition["States"])
    assert "beats the baseline" in seen["text"] and "estimate" in seen["text"]
    assert f"objective\t{OBJECTIVES[kind][0]}\tproblem" in seen["text"] and "num_round\t300\tdefault" in seen["text"]
    gate = record["gate"]
    assert f"quality gate passed: {gate['metric']} {gate['value']:.4f}, needs ≤ {gate['threshold']}" in seen["text"]
    assert "row_id: an identifier" in seen["text"]
    assert "not in this record" not in seen["text"]
    # Console links on AWS only: the embedded engine has no console.
    pages = [record["jobs"][kind]["console"] for kind in ("tuning", "training", "transform") if kind in record["jobs"]]
    assert seen["links"] == ([] if record["local"] else [*pages, record["registered"]["console"]])
    assert "sagestep-dev-models version 3 (PendingManualApproval)" in seen["text"]
    tuning = record.get("tuning")
    if tuning:       # the trials' table and chart, the best marked; a failed trial listed, not plotted
        assert f"{tuning['best']}\t3.1000\tCompleted\teta=0.1, max_depth=3\tbest" in seen["text"]
        assert f"{tuning['trials'][2]['name']}\tn/a\tFailed" in seen["text"]
        assert "validation:rmse by trial (Minimize)" in seen["charts"]["chart-tuning"]["text"]
        assert seen["charts"]["chart-tuning"]["traces"] == 2
    # The binary run's class name is markup: shown as text in the page and in plotly's labels, never run.
    assert seen["pwned"] is None
    if kind == "binary":
        assert HOSTILE in seen["text"] and HOSTILE[:18] in seen["charts"]["chart-confusion"]["text"]


def test_a_failed_run_renders_and_says_what_it_lacks(browser, definition, tmp_path):
    path = write_report(failed_record(definition), tmp_path)
    seen = open_report(browser, path)
    assert_renders(seen, path, {"chart-states"})
    assert set(seen["charts"]) == {"chart-states"}
    assert "ExecuteUserScriptError" in seen["text"] and "Invalid Parameter max_depth = -3" in seen["text"]
    for missing in ("The evaluation", "The learning curves", "The model (for the feature importance)", "The cost"):
        assert f"{missing}: not in this record (the run failed at Train)" in seen["text"]
    # Train and the Fail state its Catch led to failed; the states after them were never entered.
    fills = seen["charts"]["chart-states"]["fills"]
    assert (fills.count(STATUS_STYLE["FAILED"][0]), fills.count(NOT_ENTERED[0])) == (2, len(definition["States"]) - 5)


def test_predictions_are_read_from_the_end_of_the_header(tmp_path):
    """The id and the label are named by the dataset: a label called "predicted" is still the label."""
    path = tmp_path / "predictions.csv"
    path.write_text("id,predicted,predicted,P(no),P(yes)\n7,yes,yes,0.2,0.8\n8,no,yes,0.4,0.6\n")
    predictions = read_predictions(path, None)
    assert (predictions.actual, predictions.predicted) == (["yes", "no"], ["yes", "yes"])
    assert predictions.classes == ["no", "yes"]
    assert predictions.probabilities.tolist() == [[0.2, 0.8], [0.4, 0.6]]


def test_the_roc_curve_is_scikit_learn_s():
    from sklearn.metrics import roc_curve as sklearn_roc

    rng = np.random.default_rng(1)
    positive = rng.random(400) < 0.3
    scores = np.round(rng.random(400) * 0.6 + positive * 0.3, 2)         # ties, as probabilities have
    false_rate, true_rate = roc_curve(positive, scores)
    expected_false, expected_true, _ = sklearn_roc(positive, scores, drop_intermediate=False)
    assert np.allclose(false_rate, expected_false) and np.allclose(true_rate, expected_true)
    assert roc_curve(np.ones(3, bool), np.array([0.1, 0.2, 0.3])) is None


def test_a_record_of_nothing_but_name_status_and_states_says_what_it_lacks(tmp_path):
    record = {"name": "local-early", "status": "RUNNING", "states": [{"name": "Start", "status": "RUNNING",
                                                                         "seconds": None}]}
    page = write_report(record, tmp_path).read_text()
    for missing in ("The state machine definition", "The evaluation", "The learning curves", "The cost"):
        assert f"{missing}: not in this record (the run is still running)" in page
