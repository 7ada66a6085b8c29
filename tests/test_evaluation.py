"""The Evaluate step's metrics, checked against scikit-learn's on the same rows, and its named errors."""
import random

import pytest
from sklearn import metrics as sk

from preprocess.evaluation import MisalignedPredictions, auc, evaluate


def schema(problem, classes=None, rows=0, **label):
    return {"problem": problem, "label": {"name": "y", "classes": classes, **label}, "rows": {"test": rows}}


def classification_rows(classes, rows, seed=3):
    """Noisy but informative probabilities: the true class usually gets the most."""
    rng = random.Random(seed)
    truth, probabilities = [], []
    for _ in range(rows):
        actual = rng.choices(range(len(classes)), weights=range(len(classes), 0, -1))[0]
        raw = [rng.random() + (1.5 if code == actual and rng.random() < 0.8 else 0) for code in range(len(classes))]
        total = sum(raw)
        probabilities.append([round(value / total, 6) for value in raw])
        truth.append(actual)
    predictions = [[classes[max(range(len(p)), key=p.__getitem__)], *map(str, p)] for p in probabilities]
    return truth, probabilities, predictions


@pytest.mark.parametrize("classes", [["no", "yes"], ["setosa", "versicolor", "virginica", "other"]])
def test_classification_metrics_match_scikit_learn(classes):
    truth, probabilities, predictions = classification_rows(classes, 500)
    counts = [300, 150, 40, 10][:len(classes)]
    result = evaluate(schema("binary" if len(classes) == 2 else "multiclass", classes, 500, trainCounts=counts),
                      predictions, [[classes[t]] for t in truth])
    predicted = [classes.index(row[0]) for row in predictions]
    binary = len(classes) == 2
    expected = {
        "accuracy": sk.accuracy_score(truth, predicted),
        "balancedAccuracy": sk.balanced_accuracy_score(truth, predicted),
        "f1": sk.f1_score(truth, predicted, average="binary" if binary else "macro"),
        "auc": sk.roc_auc_score(truth, [p[1] for p in probabilities]) if binary else
        sk.roc_auc_score(truth, probabilities, multi_class="ovr", average="macro"),
        "logLoss": sk.log_loss(truth, probabilities, labels=range(len(classes))),
    }
    assert result["metrics"] == pytest.approx(expected, rel=1e-5)
    assert result["confusionMatrix"]["actualByPredicted"] == sk.confusion_matrix(truth, predicted).tolist()
    # The baseline: always the train split's majority class, with its class frequencies as probabilities.
    prior = [count / sum(counts) for count in counts]
    assert result["baseline"]["metrics"] == pytest.approx({
        "accuracy": sk.accuracy_score(truth, [0] * 500),
        "balancedAccuracy": sk.balanced_accuracy_score(truth, [0] * 500),
        "f1": sk.f1_score(truth, [0] * 500, average="binary" if binary else "macro", zero_division=0),
        "auc": 0.5, "logLoss": sk.log_loss(truth, [prior] * 500, labels=range(len(classes)))}, rel=1e-6)
    assert result["baseline"]["name"].startswith(f"the majority class {classes[0]!r}")
    assert result["beatsBaseline"] and result["behindBaseline"] == []


def test_regression_metrics_match_scikit_learn():
    rng = random.Random(5)
    truth = [rng.uniform(0, 100) for _ in range(400)]
    predicted = [value + rng.gauss(0, 8) for value in truth]
    result = evaluate(schema("regression", rows=400, trainMean=52.0), [[f"{p:.6f}"] for p in predicted],
                      [[f"{t:.6f}"] for t in truth])
    rounded = [float(f"{p:.6f}") for p in predicted]
    exact = [float(f"{t:.6f}") for t in truth]
    assert result["metrics"] == pytest.approx({
        "rmse": sk.root_mean_squared_error(exact, rounded), "mae": sk.mean_absolute_error(exact, rounded),
        "r2": sk.r2_score(exact, rounded)}, rel=1e-9)
    assert result["baseline"]["metrics"] == pytest.approx({
        "rmse": sk.root_mean_squared_error(exact, [52.0] * 400), "mae": sk.mean_absolute_error(exact, [52.0] * 400),
        "r2": sk.r2_score(exact, [52.0] * 400)}, rel=1e-9)
    assert result["beatsBaseline"] and "confusionMatrix" not in result


def test_a_model_that_learnt_nothing_is_flagged_with_the_metrics_it_loses_on():
    classes = ["rare", "common"]
    truth = ["common"] * 90 + ["rare"] * 10
    # A model that says "rare" half the time at random: worse than always saying "common".
    predictions = [["rare" if i % 2 else "common", "0.5", "0.5"] for i in range(100)]
    result = evaluate(schema("binary", classes, 100, trainCounts=[10, 90]), predictions, [[t] for t in truth])
    assert not result["beatsBaseline"]
    assert {"accuracy", "logLoss", "auc"} <= set(result["behindBaseline"])
    # What the CLI prints of it (local, start --wait): the warning line names the metrics it loses on.
    from io import StringIO

    from rich.console import Console

    from sagestep.report import print_evaluation
    printed = Console(file=StringIO(), width=300)
    print_evaluation(result, printed)
    warning = printed.file.getvalue().split("⚠ the model does not beat the baseline on ")[1]
    assert "logLoss" in warning.split(":")[0] and "learnt no more than the label's distribution" in warning


def test_ids_ride_along_and_each_pair_is_seen():
    seen = []
    evaluate(schema("regression", rows=2, trainMean=0.0), [["1.5"], ["2.5"]], [["a", "1"], ["b", "2"]],
             on_row=lambda prediction, held_out: seen.append(held_out + prediction))
    assert seen == [["a", "1", "1.5"], ["b", "2", "2.5"]]


@pytest.mark.parametrize("predictions, labels, message", [
    ([["1.0"]], [["1"], ["2"]], "the predictions end after 1 rows"),
    ([["1.0"], ["2.0"], ["3.0"]], [["1"], ["2"]], "the held-out labels end after 2 rows"),
    ([["abc"], ["2.0"]], [["1"], ["2"]], "prediction 1: the prediction 'abc' is not a number"),
    ([["1.0", "2.0"], ["2.0"]], [["1"], ["2"]], "prediction 1: expected one value, found 2 fields"),
])
def test_misaligned_regression_files_are_named(predictions, labels, message):
    with pytest.raises(MisalignedPredictions, match=message):
        evaluate(schema("regression", rows=2, trainMean=0.0), predictions, labels)


def test_a_class_the_model_does_not_know_is_named():
    with pytest.raises(MisalignedPredictions, match="prediction 1: actual 'maybe', predicted 'yes' with 2 "
                                                    "probabilities; the model's classes are no, yes"):
        evaluate(schema("binary", ["no", "yes"], 1, trainCounts=[1, 1]), [["yes", "0.2", "0.8"]], [["maybe"]])


def test_auc_counts_ties_as_half_and_needs_both_sides():
    assert auc([0.1, 0.4, 0.35, 0.8], [False, False, True, True]) == 0.75
    assert auc([0.5, 0.5], [False, True]) == 0.5
    assert auc([0.2, 0.3], [True, True]) is None
