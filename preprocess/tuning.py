"""The tuning config (sagestep:tuning, and an execution's "tuning" over it), checked in pure Python so the stack
(at synth) and the preprocess Lambda (per run, before any work) refuse the same things with the same words, and
rendered as CreateHyperParameterTuningJob's ParameterRanges and ResourceLimits.

Sources (botocore's sagemaker service model; aws/sagemaker-xgboost-container v3.0-5; the SageMaker developer guide,
automatic-model-tuning-define-ranges.md and xgboost-tuning.md): see docs/training.md, "Tuning".
"""
from __future__ import annotations

import json
import math

from . import hyperparameters

STRATEGIES = ("Bayesian", "Random", "Grid", "Hyperband")
SCALINGS = ("Auto", "Linear", "Logarithmic", "ReverseLogarithmic")
# The hyperparameters the image's spec marks tunable (algorithm_mode/hyperparameter_validation.py): a range on any
# other name is refused by SageMaker for the first-party XGBoost image, even in script mode.
TUNABLE = ("alpha", "colsample_bylevel", "colsample_bynode", "colsample_bytree", "eta", "gamma", "lambda",
           "max_delta_step", "max_depth", "min_child_weight", "num_round", "subsample")
MAX_RANGES = 30          # "up to 30 hyperparameters to search" (automatic-model-tuning-define-ranges.md)
MAX_VALUES = 30          # ParameterValues: 1 to 30 values per categorical range (botocore)
DEFAULTS = {"strategy": "Bayesian", "maxJobs": 10, "maxParallelJobs": 2}
STACK_KEYS = ("strategy", "maxJobs", "maxParallelJobs", "objective", "ranges")
RUN_KEYS = ("maxJobs", "maxParallelJobs", "ranges")     # what an execution may set over the stack's
HYPERBAND = ("Hyperband needs a static hyperparameter named epochs (or num_epochs, n_epochs) for its MaxResource, "
             "which train.py does not take (it counts num_round): use Bayesian, Random or Grid")


def _whole(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _text(value: object) -> str:
    return str(value) if not isinstance(value, float) or not value.is_integer() else repr(value)


def range_refusal(name: str, spec: object) -> str | None:
    """Why SageMaker, XGBoost or train.py refuses this range, or None."""
    where = f"ranges.{name}"
    if name not in TUNABLE:
        return f"{where}: {name} is not tunable with the SageMaker XGBoost image (tunable: {', '.join(TUNABLE)})"
    if isinstance(spec, list):
        if not 1 <= len(spec) <= MAX_VALUES or any(isinstance(v, (bool, dict, list)) or v is None for v in spec):
            return f"{where}: a categorical range is a list of 1 to {MAX_VALUES} numbers or strings"
        if len(set(map(str, spec))) != len(spec):
            return f"{where}: a categorical range lists each value once"
        refused = next(filter(None, (hyperparameters.check_one(name, str(v)) for v in spec)), None)
        return f"{where}: {refused}" if refused else None
    if not isinstance(spec, dict) or not {"min", "max"} <= set(spec) <= {"min", "max", "scaling"}:
        return f"{where}: a range is {{min, max, scaling?}} or a list of values"
    low, high, scaling = spec["min"], spec["max"], spec.get("scaling", "Auto")
    if not (_number(low) and _number(high)):
        return f"{where}: min and max must be numbers"
    if low >= high:
        return f"{where}: min {low} must be below max {high}"
    if scaling not in SCALINGS:
        return f"{where}: scaling {scaling!r} is not one of {', '.join(SCALINGS)}"
    integer = _whole(low) and _whole(high)
    rule = hyperparameters.RULES[name]
    if getattr(rule, "whole", False) and not integer:
        return f"{where}: {name} takes whole numbers; give min and max as integers (an integer range)"
    if scaling == "Logarithmic" and low <= 0:
        return f"{where}: Logarithmic scaling needs min > 0, got {low}"
    if scaling == "ReverseLogarithmic" and (integer or not 0 <= low < high < 1):
        return f"{where}: ReverseLogarithmic scaling is for continuous ranges within [0, 1)"
    refused = hyperparameters.check_one(name, _text(low)) or hyperparameters.check_one(name, _text(high))
    return f"{where}: {refused}" if refused else None


def _count(config: dict, key: str) -> object:
    return config.get(key, DEFAULTS[key])


def refusal(config: dict) -> str | None:
    """Why this tuning config (its keys in STACK_KEYS, defaults filled in or not) cannot run, or None."""
    unknown = sorted(set(config) - set(STACK_KEYS))
    if unknown:
        return f"{unknown[0]} is not a tuning key ({', '.join(STACK_KEYS)})"
    strategy = config.get("strategy", DEFAULTS["strategy"])
    if strategy not in STRATEGIES:
        return f"strategy {strategy!r} is not one of {', '.join(STRATEGIES)}"
    if strategy == "Hyperband":
        return HYPERBAND
    ranges = config.get("ranges")
    if not isinstance(ranges, dict) or not ranges:
        return "ranges must name at least one hyperparameter to tune"
    if len(ranges) > MAX_RANGES:
        return f"ranges names {len(ranges)} hyperparameters; SageMaker tunes at most {MAX_RANGES}"
    refused = next(filter(None, (range_refusal(name, spec) for name, spec in ranges.items())), None)
    if refused:
        return refused
    for key in ("maxJobs", "maxParallelJobs"):
        if key in config and not (_whole(config[key]) and config[key] >= 1):
            return f"{key} must be a whole number ≥ 1, got {json.dumps(config[key])}"
    max_parallel = _count(config, "maxParallelJobs")
    if strategy == "Grid":
        if any(not isinstance(spec, list) for spec in ranges.values()):
            return "Grid searches categorical ranges only (lists of values)"
        combinations = math.prod(len(spec) for spec in ranges.values())
        if config.get("maxJobs", combinations) != combinations:
            return f"Grid runs every combination: maxJobs must be {combinations} (or left out), got {config['maxJobs']}"
        max_jobs = combinations
    else:
        max_jobs = _count(config, "maxJobs")
    if max_parallel > max_jobs:
        return f"maxParallelJobs {max_parallel} is more than maxJobs {max_jobs}"
    objective = config.get("objective")
    if objective is not None and (not isinstance(objective, str) or not objective.startswith("validation:")
                                  or objective.removeprefix("validation:") not in hyperparameters.EVAL_METRICS):
        return (f"objective {json.dumps(objective)} is not validation:<metric> of the metrics a run can report "
                f"({', '.join(hyperparameters.EVAL_METRICS)})")
    return None


def effective(stack: dict, run: dict | None) -> dict:
    """The stack's config with the execution's maxJobs, maxParallelJobs and ranges over it, defaults filled in
    (a Grid's maxJobs is its number of combinations). Check it with refusal() first."""
    merged = {**DEFAULTS, **stack, **(run or {})}
    if merged["strategy"] == "Grid" and "maxJobs" not in {**stack, **(run or {})}:
        merged["maxJobs"] = math.prod(len(spec) for spec in merged["ranges"].values())
    return merged


def parameter_ranges(ranges: dict) -> dict:
    """ParameterRanges: integer ranges for whole-number bounds, continuous ones for the others, categorical for
    lists; every value a string, as the API takes them."""
    rendered: dict[str, list] = {"IntegerParameterRanges": [], "ContinuousParameterRanges": [],
                                 "CategoricalParameterRanges": []}
    for name, spec in ranges.items():
        if isinstance(spec, list):
            rendered["CategoricalParameterRanges"].append({"Name": name, "Values": [str(v) for v in spec]})
            continue
        kind = "Integer" if _whole(spec["min"]) and _whole(spec["max"]) else "Continuous"
        rendered[f"{kind}ParameterRanges"].append({"Name": name, "MinValue": _text(spec["min"]),
                                                   "MaxValue": _text(spec["max"]),
                                                   "ScalingType": spec.get("scaling", "Auto")})
    return rendered


def resource_limits(config: dict) -> dict:
    return {"MaxNumberOfTrainingJobs": config["maxJobs"], "MaxParallelTrainingJobs": config["maxParallelJobs"]}
