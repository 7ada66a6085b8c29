"""What the sagemaker-xgboost image (3.0-5) defines for itself, which SageMaker applies to its logs.

The image is a first-party algorithm: CreateTrainingJob refuses custom MetricDefinitions, and the
console's metrics come from these definitions, matched against the log as CloudWatch stores it
(a tab reads "#011"). Source: aws/sagemaker-xgboost-container v3.0-5,
src/sagemaker_xgboost_container/algorithm_mode/metrics.py and constants/xgb_constants.py.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

REPOSITORY = "sagemaker-xgboost"
CLOUDWATCH_TAB = "#011"

MAXIMIZE_METRICS = (
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg",
    "precision", "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro",
)
MINIMIZE_METRICS = (
    "aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik", "interval-regression-accuracy",
    "logloss", "mae", "mape", "merror", "mlogloss", "mphe", "mse", "poisson-nloglik", "rmse", "rmsle",
    "tweedie-nloglik",
)


@dataclass(frozen=True)
class MetricDefinition:
    name: str          # validation:<metric>
    regex: str         # exactly as the image declares it
    maximize: bool


def metric_definitions() -> tuple[MetricDefinition, ...]:
    """The image's own list, in its order (maximize first)."""
    return tuple(
        MetricDefinition(f"validation:{metric}", rf".*\[[0-9]+\].*#011validation-{metric}:(\S+)", maximize)
        for metrics, maximize in ((MAXIMIZE_METRICS, True), (MINIMIZE_METRICS, False))
        for metric in metrics)


def as_cloudwatch_stores_it(line: str) -> str:
    """A log line as CloudWatch Logs keeps a SageMaker job's output: tabs escaped as #011."""
    return line.replace("\t", CLOUDWATCH_TAB)


def scrape(lines, definitions=None) -> dict[str, float]:
    """The last value of each metric whose regex matches, as SageMaker scrapes a job's log; a capture
    that is not a number is no data point."""
    compiled = [(d.name, re.compile(d.regex)) for d in (definitions or metric_definitions())]
    found: dict[str, float] = {}
    for line in lines:
        for name, pattern in compiled:
            match = pattern.search(line)
            if match:
                try:
                    found[name] = float(match.group(1))
                except ValueError:
                    continue
    return found
