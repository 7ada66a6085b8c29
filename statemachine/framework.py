"""The framework in one place: the SageMaker XGBoost image (3.0-5), what it defines for itself, and
what the rest of sagestep must agree with it on. Swapping the framework starts here.

- the image: its ECR repository and the scope used for training and for serving;
- the objective and evaluation metric per problem type (the preprocess Lambda receives them in its
  environment, OBJECTIVES, and picks one by the labels it finds);
- the image's own metric definitions, names and directions, which SageMaker applies to the job's log
  as CloudWatch stores it (a tab reads "#011"); CreateTrainingJob refuses custom MetricDefinitions for
  this first-party algorithm image. Source: aws/sagemaker-xgboost-container v3.0-5,
  src/sagemaker_xgboost_container/algorithm_mode/metrics.py and constants/xgb_constants.py;
- which metrics a quality gate may name, and in which direction each is better.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

FRAMEWORK = "xgboost"                  # the SageMaker SDK's image catalogue name
REPOSITORY = "sagemaker-xgboost"
IMAGE_SCOPES = {"training": "training", "serving": "inference"}
CLOUDWATCH_TAB = "#011"
CLASS_COUNT = "{classes}"              # replaced by the number of classes in OBJECTIVES' values

# Per problem type: the hyperparameters the preprocess step adds; eval_metric names the image's
# validation:<eval_metric> that the console plots and FinalMetricDataList reports.
OBJECTIVES = {
    "binary": {"objective": "binary:logistic", "eval_metric": "logloss"},
    "multiclass": {"objective": "multi:softprob", "num_class": CLASS_COUNT, "eval_metric": "mlogloss"},
    "regression": {"objective": "reg:squarederror", "eval_metric": "rmse"},
}

MAXIMIZE_METRICS = (
    "accuracy", "auc", "aucpr", "balanced_accuracy", "f1", "f1_binary", "f1_macro", "map", "ndcg",
    "precision", "r2", "recall", "precision_macro", "precision_micro", "recall_macro", "recall_micro",
)
MINIMIZE_METRICS = (
    "aft-nloglik", "cox-nloglik", "error", "gamma-deviance", "gamma-nloglik", "interval-regression-accuracy",
    "logloss", "mae", "mape", "merror", "mlogloss", "mphe", "mse", "poisson-nloglik", "rmse", "rmsle",
    "tweedie-nloglik",
)


def quality_gate(metric: str, threshold: float | None) -> dict:
    """The stack's gate as the preprocess Lambda receives it (QUALITY_GATE), with the image's metric
    names by direction, so it can check and orient a metric an execution names."""
    return {"metric": metric, "threshold": threshold,
            "maximize": list(MAXIMIZE_METRICS), "minimize": list(MINIMIZE_METRICS)}


@dataclass(frozen=True)
class MetricDefinition:
    name: str          # validation:<metric>
    regex: str         # exactly as the image declares it
    maximize: bool


def metric_definitions(split: str = "validation") -> tuple[MetricDefinition, ...]:
    r"""The image's own list, in its order (maximize first). split "train" gives ours for the train-<metric>
    values on the same lines (the report's learning curves): a train value is followed by "#011validation-…",
    so its capture stops at "#", where the image's "(\S+)" would run on."""
    value = r"(\S+)" if split == "validation" else r"([^#\s]+)"
    return tuple(
        MetricDefinition(f"{split}:{metric}", rf".*\[[0-9]+\].*#011{split}-{metric}:{value}", maximize)
        for metrics, maximize in ((MAXIMIZE_METRICS, True), (MINIMIZE_METRICS, False))
        for metric in metrics)


def as_cloudwatch_stores_it(line: str) -> str:
    """A log line as CloudWatch Logs keeps a SageMaker job's output: tabs escaped as #011."""
    return line.replace("\t", CLOUDWATCH_TAB)


def scrape_series(lines, definitions=None) -> dict[str, list[float]]:
    """Every value of each metric whose regex matches, in log order, as SageMaker scrapes a job's log
    for the console's curves; a capture that is not a number is no data point."""
    compiled = [(d.name, re.compile(d.regex)) for d in (definitions or metric_definitions())]
    found: dict[str, list[float]] = {}
    for line in lines:
        for name, pattern in compiled:
            match = pattern.search(line)
            if match:
                try:
                    found.setdefault(name, []).append(float(match.group(1)))
                except ValueError:
                    continue
    return found


def scrape(lines, definitions=None) -> dict[str, float]:
    """The last value of each metric (what FinalMetricDataList reports)."""
    return {name: series[-1] for name, series in scrape_series(lines, definitions).items()}
