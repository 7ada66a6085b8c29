"""The hyperparameters training/train.py takes, checked in pure Python, so the stack (at synth) and the preprocess
Lambda (per run, before any job) refuse the same things with the same words, without XGBoost installed.

The table is XGBoost 3.0.5's (the sagemaker-xgboost 3.0-5 image's release; https://xgboost.readthedocs.io/en/release_3.0.0/parameter.html)
plus train.py's own keys; tests/test_hyperparameters.py checks every entry against the XGBoost that is installed.
"""
from __future__ import annotations

import difflib
import math
from dataclasses import dataclass

from .errors import InvalidHyperparameter


@dataclass(frozen=True)
class Number:
    """A real number in [low, high] (an end is left out where open)."""
    low: float = -math.inf
    high: float = math.inf
    low_open: bool = False
    high_open: bool = False
    whole: bool = False

    def refuses(self, text: str) -> str | None:
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if (not math.isfinite(value) or (self.whole and not value.is_integer()) or value < self.low
                or value > self.high or (self.low_open and value == self.low) or (self.high_open and value == self.high)):
            return f"{'a whole number' if self.whole else 'a number'}{self._range()}"
        return None

    def _range(self) -> str:
        if self.high == math.inf:
            return "" if self.low == -math.inf else f" {'>' if self.low_open else '≥'} {self.low:g}"
        return f" in {'(' if self.low_open else '['}{self.low:g}, {self.high:g}{')' if self.high_open else ']'}"


@dataclass(frozen=True)
class OneOf:
    values: tuple[str, ...]

    def refuses(self, text: str) -> str | None:
        return None if text in self.values else f"one of {', '.join(self.values)}"


class Text:
    """Free text XGBoost parses itself (constraints, updater lists)."""

    @staticmethod
    def refuses(text: str) -> str | None:
        return None if text.strip() else "not empty"


NON_NEGATIVE = Number(0)
SHARE = Number(0, 1, low_open=True)            # a fraction of rows or columns: (0, 1], as documented (0 samples nothing)
PROBABILITY = Number(0, 1)
BOOLEAN = OneOf(("0", "1", "true", "false"))


def count(low: int) -> Number:
    return Number(low, whole=True)


# The objectives whose predictions inference/ and the evaluation read, by the problem the labels make:
# probabilities of the positive class, every class's probabilities, or values.
OBJECTIVES_BY_PROBLEM = {
    "binary": ("binary:logistic",),
    "multiclass": ("multi:softprob",),
    "regression": ("reg:squarederror", "reg:squaredlogerror", "reg:absoluteerror", "reg:pseudohubererror",
                   "reg:gamma", "reg:tweedie", "count:poisson"),
}
# XGBoost's other objectives, and why a run cannot use them.
OTHER_OBJECTIVES = {
    "binary:logitraw": "it predicts margins, not the probabilities the evaluation reads (use binary:logistic)",
    "binary:hinge": "it predicts 0 or 1, not the probabilities the evaluation reads (use binary:logistic)",
    "reg:logistic": "it predicts one value, not the class probabilities batch prediction writes (use binary:logistic)",
    "multi:softmax": "it predicts a class index, not the probabilities the evaluation reads (use multi:softprob)",
    "reg:quantileerror": "it predicts one value per quantile_alpha, which the evaluation does not pair with a label",
    "survival:cox": "survival labels are not what the preprocess step makes",
    "survival:aft": "survival labels are not what the preprocess step makes",
    "rank:ndcg": "ranking needs query groups, which the preprocess step does not make",
    "rank:map": "ranking needs query groups, which the preprocess step does not make",
    "rank:pairwise": "ranking needs query groups, which the preprocess step does not make",
}
# The validation metrics a run can gate on, by problem (and by objective where it has its own likelihood);
# each is one the image scrapes (statemachine/framework.py). The objective's own metric is the first.
METRICS_BY_PROBLEM = {
    "binary": ("logloss", "auc", "aucpr", "error", "map", "ndcg"),
    "multiclass": ("mlogloss", "merror", "auc", "aucpr"),
    "regression": ("rmse", "mae", "mape", "mphe", "rmsle"),
}
OBJECTIVE_METRICS = {"count:poisson": ("poisson-nloglik",), "reg:gamma": ("gamma-nloglik", "gamma-deviance")}
EVAL_METRICS = tuple(dict.fromkeys(
    [name for names in (*METRICS_BY_PROBLEM.values(), *OBJECTIVE_METRICS.values()) for name in names]))

# train.py's own keys (arguments of xgb.train) and their defaults; the booster defaults train.py sets.
TRAINING_DEFAULTS = {"num_round": "300", "early_stopping_rounds": "20", "checkpoint_interval": "10"}
BOOSTER_DEFAULTS = {"max_depth": "6", "eta": "0.1", "subsample": "1.0", "min_child_weight": "1", "tree_method": "hist"}
# Set by the stack or the step, never by a user: why.
RESERVED = {
    "num_class": "the preprocess step sets it from the labels",
    "device": "training sets it from the instance type (cuda on a GPU instance)",
}

ALIASES = {"learning_rate": "eta", "min_split_loss": "gamma", "reg_lambda": "lambda", "reg_alpha": "alpha",
           "random_state": "seed"}
RULES: dict[str, object] = {
    # train.py
    "num_round": count(1), "early_stopping_rounds": count(1), "checkpoint_interval": count(1),
    # general
    "booster": OneOf(("gbtree", "gblinear", "dart")), "verbosity": Number(0, 3, whole=True),
    "validate_parameters": BOOLEAN, "nthread": Number(whole=True), "disable_default_eval_metric": BOOLEAN,
    # tree booster
    "eta": NON_NEGATIVE, "gamma": NON_NEGATIVE, "max_depth": count(0), "min_child_weight": NON_NEGATIVE,
    "max_delta_step": NON_NEGATIVE, "subsample": SHARE, "sampling_method": OneOf(("uniform", "gradient_based")),
    "colsample_bytree": SHARE, "colsample_bylevel": SHARE, "colsample_bynode": SHARE,
    "lambda": NON_NEGATIVE, "alpha": NON_NEGATIVE, "tree_method": OneOf(("auto", "exact", "approx", "hist")),
    "scale_pos_weight": NON_NEGATIVE, "updater": Text(), "refresh_leaf": BOOLEAN,
    "process_type": OneOf(("default", "update")), "grow_policy": OneOf(("depthwise", "lossguide")),
    "max_leaves": count(0), "max_bin": count(2), "num_parallel_tree": count(1), "monotone_constraints": Text(),
    "interaction_constraints": Text(), "multi_strategy": OneOf(("one_output_per_tree", "multi_output_tree")),
    "max_cat_to_onehot": count(1), "max_cat_threshold": count(1),
    # dart booster
    "sample_type": OneOf(("uniform", "weighted")), "normalize_type": OneOf(("tree", "forest")),
    "rate_drop": PROBABILITY, "one_drop": BOOLEAN, "skip_drop": PROBABILITY,
    # linear booster
    "feature_selector": OneOf(("cyclic", "shuffle", "random", "greedy", "thrifty")), "top_k": count(0),
    # learning task
    "objective": OneOf(tuple(name for names in OBJECTIVES_BY_PROBLEM.values() for name in names)),
    "base_score": Number(), "eval_metric": Text(), "seed": Number(whole=True),
    "seed_per_iteration": BOOLEAN, "tweedie_variance_power": Number(1, 2),
    "huber_slope": Number(0, low_open=True),
}


def _closest(name: str) -> str:
    close = difflib.get_close_matches(name, [*RULES, *ALIASES], n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def check_one(name: str, value: str) -> str | None:
    """Why XGBoost or train.py refuses name=value, or None when they take it."""
    if name in RESERVED:
        return f"{name} is not yours to set: {RESERVED[name]}"
    rule = RULES.get(ALIASES.get(name, name))
    if rule is None:
        return f"{name} is not a hyperparameter XGBoost 3.0.5 or train.py knows{_closest(name)}"
    if ALIASES.get(name, name) == "objective" and value in OTHER_OBJECTIVES:
        return f"objective {value} cannot be used: {OTHER_OBJECTIVES[value]}"
    if ALIASES.get(name, name) == "eval_metric":
        unknown = [metric for metric in value.split(",") if metric.strip() not in EVAL_METRICS]
        return f"eval_metric {unknown[0].strip()!r} is not one of {', '.join(EVAL_METRICS)}" if unknown else None
    refused = rule.refuses(value)
    return f"{name} must be {refused}, got {value!r}" if refused else None


def check(hyperparameters: dict[str, str]) -> str | None:
    """The first refusal among the hyperparameters (in their order), or None."""
    for name, value in hyperparameters.items():
        refused = check_one(name, value)
        if refused:
            return refused
    return None


def problem_refusal(problem: str, objective: str) -> str | None:
    """Why this objective cannot train on labels that make this problem, or None."""
    if objective in OBJECTIVES_BY_PROBLEM[problem]:
        return None
    return (f"objective {objective} does not fit a {problem} label; a {problem} label takes "
            f"{', '.join(OBJECTIVES_BY_PROBLEM[problem])}")


def gate_metrics(problem: str, objective: str) -> tuple[str, ...]:
    """The validation metrics a run of this problem and objective reports when asked."""
    return METRICS_BY_PROBLEM[problem] + OBJECTIVE_METRICS.get(objective, ())


def with_metric(eval_metric: list[str], metric: str) -> list[str]:
    """eval_metric with metric added before the last one: XGBoost's early stopping watches the last."""
    return eval_metric if metric in eval_metric else [*eval_metric[:-1], metric, *eval_metric[-1:]]


def checked(hyperparameters: dict[str, str], where: str) -> dict[str, str]:
    """hyperparameters, or InvalidHyperparameter naming where they came from and the first refusal."""
    refused = check(hyperparameters)
    if refused:
        raise InvalidHyperparameter(f"{where}: {refused}")
    return hyperparameters
