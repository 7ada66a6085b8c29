"""Test-set metrics: the batch predictions against the held-out labels, and a baseline beside them.

Pure: rows in, numbers out. Both files are read in step (one prediction line per held-out label, in
order); what is kept is the confusion matrix, running sums, and, for AUC, one score per row and class.
The baseline is what a model that learnt nothing would score, measured by the same code: the train
split's majority class with its class frequencies as probabilities, or the train split's mean.
"""
from __future__ import annotations

import math
from array import array
from itertools import groupby, zip_longest
from typing import Callable, Iterable

from .errors import PreprocessError

EPSILON = 1e-15                  # probabilities are clipped to [EPSILON, 1 - EPSILON] for log loss
MAX_SCORES = 25_000_000          # rows x classes kept for AUC (4 bytes each); beyond, AUC is left out
# The direction of each metric: True when higher is better.
HIGHER_IS_BETTER = {"accuracy": True, "balancedAccuracy": True, "f1": True, "auc": True, "logLoss": False,
                    "rmse": False, "mae": False, "r2": True}


class MisalignedPredictions(PreprocessError):
    """The predictions and the held-out labels do not pair up line by line."""


def auc(scores: Iterable[float], positives: Iterable[bool]) -> float | None:
    """Area under the ROC curve: the chance that a positive row scores above a negative one, ties
    counting half (the Mann-Whitney statistic). None when one side has no row."""
    pairs = sorted(zip(scores, positives))
    area, negatives_below, total_positive, total_negative = 0.0, 0, 0, 0
    for _, group in groupby(pairs, key=lambda pair: pair[0]):
        positive = negative = 0
        for _, is_positive in group:
            if is_positive:
                positive += 1
            else:
                negative += 1
        area += positive * negatives_below + 0.5 * positive * negative
        negatives_below += negative
        total_positive += positive
        total_negative += negative
    if not total_positive or not total_negative:
        return None
    return area / (total_positive * total_negative)


class Classification:
    """Running metrics of class predictions with a probability for every class."""

    def __init__(self, classes: list[str], keep_scores: bool = True):
        self.classes = classes
        self.index = {name: code for code, name in enumerate(classes)}
        size = len(classes)
        self.confusion = [[0] * size for _ in range(size)]     # rows: actual, columns: predicted
        self.log_loss = 0.0
        self.rows = 0
        self.truth = array("H" if size < 1 << 16 else "I")
        self.scores: list[array] | None = [array("f") for _ in range(size if size > 2 else 1)] if keep_scores else None

    def add(self, actual: str, predicted: str, probabilities: list[float], where: str) -> None:
        truth, guess = self.index.get(actual), self.index.get(predicted)
        if truth is None or guess is None or len(probabilities) != len(self.classes):
            raise MisalignedPredictions(
                f"{where}: actual {actual!r}, predicted {predicted!r} with {len(probabilities)} probabilities; "
                f"the model's classes are {', '.join(self.classes)}")
        self.confusion[truth][guess] += 1
        self.log_loss -= math.log(min(max(probabilities[truth], EPSILON), 1 - EPSILON))
        self.rows += 1
        if self.scores is not None:
            if self.rows * len(self.classes) > MAX_SCORES:
                self.scores = None
                return
            self.truth.append(truth)
            if len(self.scores) == 1:
                self.scores[0].append(probabilities[1])
            else:
                for scores, probability in zip(self.scores, probabilities):
                    scores.append(probability)

    def metrics(self) -> dict[str, float | None]:
        size, rows = len(self.classes), max(self.rows, 1)
        support = [sum(row) for row in self.confusion]
        predicted = [sum(self.confusion[actual][guess] for actual in range(size)) for guess in range(size)]
        correct = [self.confusion[code][code] for code in range(size)]

        def f1(code: int) -> float:
            total = support[code] + predicted[code]
            return 2 * correct[code] / total if total else 0.0

        present = [code for code in range(size) if support[code]]
        either = [code for code in range(size) if support[code] or predicted[code]]
        return {
            "accuracy": sum(correct) / rows,
            "balancedAccuracy": sum(correct[code] / support[code] for code in present) / max(len(present), 1),
            # binary: F1 of the second class (the positive one: 1, yes, true sort last); multiclass: macro F1
            "f1": f1(1) if size == 2 else sum(map(f1, either)) / max(len(either), 1),
            "auc": self._auc(),
            "logLoss": self.log_loss / rows,
        }

    def _auc(self) -> float | None:
        """Binary: AUC of the positive class's probability. Multiclass: the mean one-vs-rest AUC over the
        classes that have both positive and negative rows."""
        if self.scores is None:
            return None
        if len(self.scores) == 1:
            return auc(self.scores[0], (truth == 1 for truth in self.truth))
        areas = [auc(scores, (truth == code for truth in self.truth)) for code, scores in enumerate(self.scores)]
        known = [area for area in areas if area is not None]
        return sum(known) / len(known) if known else None


class Regression:
    """Running RMSE, MAE and R² (Welford's update for the labels' spread: one pass, stable)."""

    def __init__(self):
        self.rows, self.squared, self.absolute = 0, 0.0, 0.0
        self.mean, self.spread = 0.0, 0.0

    def add(self, actual: float, predicted: float) -> None:
        error = predicted - actual
        self.squared += error * error
        self.absolute += abs(error)
        self.rows += 1
        delta = actual - self.mean
        self.mean += delta / self.rows
        self.spread += delta * (actual - self.mean)

    def metrics(self) -> dict[str, float | None]:
        rows = max(self.rows, 1)
        return {"rmse": math.sqrt(self.squared / rows), "mae": self.absolute / rows,
                "r2": 1 - self.squared / self.spread if self.spread else None}


def _number(text: str, what: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise MisalignedPredictions(f"{where}: the {what} {text[:40]!r} is not a number") from None
    return value


def evaluate(schema: dict, predictions: Iterable[list[str]], labels: Iterable[list[str]],
             on_row: Callable[[list[str], list[str]], None] = lambda prediction, held_out: None) -> dict:
    """predictions: inference's output rows ("<class>", "<p0>", …) or ("<value>",); labels: the held-out
    rows ("<label>",) or ("<id>", "<label>"), after their header. on_row sees each pair (to write them joined).
    Returns the metrics, the baseline's, the confusion matrix and which metrics do not beat the baseline."""
    problem, classes, label = schema["problem"], schema["label"]["classes"], schema["label"]
    model, baseline = (Regression(), Regression()) if problem == "regression" else (
        Classification(classes), Classification(classes, keep_scores=False))
    if problem == "regression":
        mean = label["trainMean"]
        baseline_name = f"the train split's mean ({mean:.6g})"
    else:
        counts = label["trainCounts"]
        total = sum(counts) or 1
        prior = [count / total for count in counts]
        majority = classes[counts.index(max(counts))]
        baseline_name = f"the majority class {majority!r} ({max(counts) / total:.1%} of the train split)"
    line = 0
    for line, (prediction, held_out) in enumerate(zip_longest(predictions, labels), start=1):
        where = f"prediction {line}"
        if prediction is None or held_out is None:
            ended = "predictions" if prediction is None else "held-out labels"
            raise MisalignedPredictions(f"the {ended} end after {line - 1} rows, before the others")
        actual = held_out[-1]
        if problem == "regression":
            if len(prediction) != 1:
                raise MisalignedPredictions(f"{where}: expected one value, found {len(prediction)} fields")
            truth = _number(actual, "held-out label", where)
            model.add(truth, _number(prediction[0], "prediction", where))
            baseline.add(truth, mean)
        else:
            probabilities = [_number(text, "probability", where) for text in prediction[1:]]
            model.add(actual, prediction[0], probabilities, where)
            baseline.add(actual, majority, prior, where)
        on_row(prediction, held_out)
    if line != schema["rows"]["test"]:
        raise MisalignedPredictions(f"{line} predictions were paired with held-out labels; the test split has "
                                    f"{schema['rows']['test']} rows")
    metrics, baseline_metrics = model.metrics(), baseline.metrics()
    if problem != "regression":
        baseline_metrics["auc"] = 0.5                                # one score for every row ranks nothing
    behind = [name for name, value in metrics.items()
              if value is not None and baseline_metrics.get(name) is not None
              and not (value > baseline_metrics[name] if HIGHER_IS_BETTER[name] else value < baseline_metrics[name])]
    result = {"problem": problem, "rows": line, "metrics": metrics,
              "baseline": {"name": baseline_name, "metrics": baseline_metrics},
              "beatsBaseline": not behind, "behindBaseline": behind}
    if problem != "regression":
        result["confusionMatrix"] = {"classes": classes, "actualByPredicted": model.confusion}
    return result
