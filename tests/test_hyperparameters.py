"""preprocess/hyperparameters.py against the XGBoost it describes: what the table takes, XGBoost takes; what it
refuses, XGBoost refuses (or train.py, or the evaluation, would fail on)."""
import math
import re
import warnings

import numpy as np
import pytest
import xgboost as xgb

from preprocess import hyperparameters as hp
from preprocess.errors import InvalidHyperparameter
from statemachine import framework

TRAINING = open("training/train.py").read()


def xgboost_refuses(params: dict[str, str], labels=(0.0, 1.0, 0.0, 1.0)) -> str | None:
    """XGBoost's own verdict: one round on a four-row matrix, an error or an "are not used" warning."""
    booster = {"objective": "reg:squarederror", "nthread": 1,
               **{k: v for k, v in params.items() if k not in hp.TRAINING_DEFAULTS}}
    matrix = xgb.DMatrix(np.array([[0.0], [1.0], [0.0], [1.0]]), label=np.array(labels))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            xgb.train(booster, matrix, num_boost_round=1, evals=[(matrix, "validation")], verbose_eval=False)
    except xgb.core.XGBoostError as error:
        return str(error).splitlines()[0]
    unused = [str(w.message) for w in caught if "are not used" in str(w.message)]
    return unused[0] if unused else None


def valid_value(name: str, rule) -> str:
    if isinstance(rule, hp.OneOf):
        return rule.values[-1]
    if isinstance(rule, hp.Number):
        low = 0 if rule.low == -math.inf else rule.low
        value = low + 0.5 if rule.low_open or rule.high_open else low
        return str(int(value)) if rule.whole else str(value)
    return {"updater": "grow_quantile_histmaker", "monotone_constraints": "(1)", "interaction_constraints": "[[0]]",
            "eval_metric": "rmse"}[name]


def invalid_values(rule) -> list[str]:
    if isinstance(rule, hp.OneOf):
        return ["bogus"]
    if isinstance(rule, hp.Number):
        values = ["abc"]
        if rule.low != -math.inf:
            values.append(str(rule.low) if rule.low_open else str(rule.low - 1))
        if rule.high != math.inf:
            values.append(str(rule.high + 1))
        if rule.whole:
            values.append(str((0 if rule.low == -math.inf else rule.low) + 1.5))
        return values
    return []


# Stricter than XGBoost 3.0.5's checks, as its documentation is: a share of 0 samples nothing, and
# validate_parameters is a boolean its Python layer reads loosely.
DOCUMENTED_STRICTER = {("subsample", "0"), ("colsample_bytree", "0"), ("colsample_bylevel", "0"),
                       ("colsample_bynode", "0"), ("validate_parameters", "bogus")}
BOOSTER_RULES = {name: rule for name, rule in hp.RULES.items()
                 if name not in hp.TRAINING_DEFAULTS and name not in ("objective",)}


def context_of(name: str) -> dict[str, str]:
    """What makes XGBoost read name at all: its booster, its updater or its objective."""
    if name in ("feature_selector", "top_k"):
        return {"booster": "gblinear", "updater": "coord_descent"}
    if name in ("sample_type", "normalize_type", "rate_drop", "one_drop", "skip_drop"):
        return {"booster": "dart"}
    return {"objective": {"tweedie_variance_power": "reg:tweedie",
                          "huber_slope": "reg:pseudohubererror"}.get(name, "reg:squarederror")}


@pytest.mark.parametrize("name", sorted(BOOSTER_RULES))
def test_what_the_table_takes_xgboost_takes(name):
    value = valid_value(name, BOOSTER_RULES[name])
    assert hp.check_one(name, value) is None
    context = context_of(name)
    if name == "sampling_method" and value == "gradient_based":
        value = "uniform"                              # XGBoost takes gradient_based on a GPU only
    if name == "process_type" and value == "update":
        value = "default"                              # update needs a model to update
    assert xgboost_refuses({**context, name: value}) is None


@pytest.mark.parametrize("name", sorted(name for name, rule in BOOSTER_RULES.items() if invalid_values(rule)))
def test_what_the_table_refuses_xgboost_refuses(name):
    context = context_of(name)
    for value in invalid_values(BOOSTER_RULES[name]):
        assert hp.check_one(name, value) is not None, value
        if (name, value) not in DOCUMENTED_STRICTER:
            assert xgboost_refuses({**context, name: value}) is not None, (name, value)


def test_every_objective_a_problem_takes_trains():
    for objective in hp.OBJECTIVES_BY_PROBLEM["binary"] + hp.OBJECTIVES_BY_PROBLEM["regression"]:
        assert xgboost_refuses({"objective": objective}, labels=(1.0, 2.0, 1.0, 2.0) if objective.startswith(
            "reg:") else (0.0, 1.0, 0.0, 1.0)) is None, objective


def test_unknown_names_are_refused_with_the_likely_one():
    assert hp.check_one("max_dept", "3") == "max_dept is not a hyperparameter XGBoost 3.0.5 or train.py knows " \
                                            "(did you mean max_depth?)"
    assert "did you mean" not in hp.check_one("foo_bar", "1")
    assert xgboost_refuses({"max_dept": "3"}) is not None


@pytest.mark.parametrize("params, reason", [
    ({"max_depth": "-3"}, "max_depth must be a whole number ≥ 0, got '-3'"),
    ({"eta": "abc"}, "eta must be a number ≥ 0, got 'abc'"),
    ({"learning_rate": "-1"}, "learning_rate must be a number ≥ 0, got '-1'"),
    ({"subsample": "0"}, "subsample must be a number in (0, 1], got '0'"),
    ({"num_round": "ten"}, "num_round must be a whole number ≥ 1, got 'ten'"),
    ({"num_class": "3"}, "num_class is not yours to set: the preprocess step sets it from the labels"),
    ({"objective": "multi:softmax"}, "objective multi:softmax cannot be used: it predicts a class index"),
    ({"eval_metric": "auc,accuracy"}, "eval_metric 'accuracy' is not one of"),
])
def test_a_refusal_says_why(params, reason):
    assert hp.check(params).startswith(reason)


def test_checked_names_where_the_values_came_from():
    with pytest.raises(InvalidHyperparameter, match=r"^the execution input's hyperparameters: eta must be"):
        hp.checked({"eta": "-1"}, "the execution input's hyperparameters")


def test_an_objective_must_fit_the_labels():
    assert hp.problem_refusal("binary", "reg:squarederror").startswith(
        "objective reg:squarederror does not fit a binary label; a binary label takes binary:logistic")
    assert hp.problem_refusal("regression", "reg:gamma") is None


def test_every_gate_metric_is_one_the_image_scrapes_and_xgboost_computes_for_its_problem():
    image = set(framework.MAXIMIZE_METRICS + framework.MINIMIZE_METRICS)
    assert set(hp.EVAL_METRICS) <= image
    labels = {"binary": np.array([0, 1, 0, 1, 1, 0.0]), "multiclass": np.array([0, 1, 2, 0, 1, 2.0]),
              "regression": np.array([1.5, 2, 3, 4, 5, 6.0])}
    for problem, objective in (("binary", "binary:logistic"), ("multiclass", "multi:softprob"),
                               ("regression", "reg:squarederror"), ("regression", "count:poisson"),
                               ("regression", "reg:gamma")):
        matrix = xgb.DMatrix(np.arange(12.0).reshape(6, 2), label=labels[problem])
        extra = {"num_class": 3} if problem == "multiclass" else {}
        for metric in hp.gate_metrics(problem, objective):
            result = {}
            xgb.train({"objective": objective, "eval_metric": metric, "nthread": 1, **extra}, matrix, 2,
                      evals=[(matrix, "validation")], evals_result=result, verbose_eval=False)
            assert math.isfinite(result["validation"][metric][-1]), (problem, metric)


def test_the_objectives_own_metric_comes_first_and_stays_last_in_eval_metric():
    for problem, objective in framework.OBJECTIVES.items():
        assert hp.gate_metrics(problem, objective["objective"])[0] == objective["eval_metric"]
    assert hp.with_metric(["logloss"], "auc") == ["auc", "logloss"]
    assert hp.with_metric(["error", "logloss"], "auc") == ["error", "auc", "logloss"]
    assert hp.with_metric(["auc", "logloss"], "auc") == ["auc", "logloss"]


def test_the_defaults_are_train_pys():
    """train.py runs without the step (its own defaults); the step passes the same values, so the console shows them."""
    for name, value in {**hp.TRAINING_DEFAULTS, **hp.BOOSTER_DEFAULTS}.items():
        assert re.search(rf'"{name}": "?{re.escape(value)}"?[,}}]', TRAINING), name
