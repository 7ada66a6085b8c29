"""What a run says of itself, derived once for the CLI's summary, `--json` and the report: from a succeeded
execution's output, or, for a run that did not succeed, from its history as far as it got (the preprocess step's
plan, $.run, and the training job's result), in the output's shape."""
from __future__ import annotations

import json

from preprocess.hyperparameters import BOOSTER_DEFAULTS, TRAINING_DEFAULTS
from statemachine.framework import MAXIMIZE_METRICS

# The plan's fields ($.run, statemachine/preprocess.py PLAN_FIELDS) a succeeded output carries under the same names.
RUN_FIELDS = ("rows", "shards", "ignoredColumns", "schemaUri", "hyperparameters", "hyperparameterOrigins")
# Overrides first, the one that won over the others first among them; train.py's defaults last.
ORIGIN_ORDER = ("run", "stack", "gate", "problem", "default")


def json_object(text: str | None) -> dict:
    """A JSON object's text as a dict, or {} (no text, a truncated output, a cause that is plain text):
    e.g. the {Error, Cause, ...} a <Step>Failed state carries as its cause."""
    try:
        value = json.loads(text or "")
    except (json.JSONDecodeError, TypeError):
        return {}
    return value if isinstance(value, dict) else {}


def state_data(events: list[dict]) -> dict:
    """The last state data of the run that holds the plan ($.run): a state's output, or the input of the state the
    run ended in (a Fail state has no output). A Map's inner states see only their items, which hold no plan."""
    for event in reversed(events):
        details = event.get("stateExitedEventDetails") or event.get("stateEnteredEventDetails") or {}
        data = json_object(details.get("output") if "output" in details else details.get("input"))
        if isinstance(data.get("run"), dict):
            return data
    return {}


def output_so_far(events: list[dict]) -> dict:
    """A run that did not succeed, in its output's shape: the plan's fields, the training job's final metrics and
    name when it trained, and the quality gate as far as it got."""
    data = state_data(events)
    run, training = data.get("run") or {}, data.get("training")
    output = {field: run[field] for field in RUN_FIELDS if field in run}
    if isinstance(training, dict) and isinstance(training.get("finalMetrics"), list):
        output["metrics"], output["trainingJobName"] = training["finalMetrics"], training.get("jobName")
    if isinstance(run.get("gate"), dict):
        output["gate"] = gate_so_far(run["gate"], data.get("gate"), output.get("metrics") or [])
    return output


def gate_so_far(planned: dict, verdict: object, metrics: list[dict]) -> dict:
    """The gate as a succeeded output says it ({metric, threshold, comparison, value, passed}, or {metric: None,
    passed: None} without one): the verdict when the gate gave one (GatePassed, NoQualityGate), failed when it
    stopped the run (GateMissed and GateMetricUnscraped leave a cause), else not reached (passed None)."""
    if isinstance(verdict, dict) and "passed" in verdict:
        return verdict
    if not planned.get("metric"):
        return {"metric": None, "passed": None}
    value = next((m.get("Value") for m in metrics if isinstance(m, dict) and m.get("MetricName") == planned["metric"]),
                 None)
    failed = isinstance(verdict, dict) and "cause" in verdict
    return {"metric": planned["metric"], "threshold": planned.get("threshold"), "comparison": planned.get("comparison"),
            "value": value, "passed": False if failed else None}


def run_facts(output: dict) -> dict:
    """The result's fields drawn from a run's output (or output_so_far): the training job's final metrics and the
    test split's, the rows, shards, columns left out, gate, evaluation, hyperparameters and registered model version,
    each when known."""
    evaluation = output.get("evaluation") or {}
    metrics = {m["MetricName"]: m["Value"] for m in output.get("metrics") or [] if "MetricName" in m and "Value" in m}
    metrics.update({f"test:{name}": value for name, value in evaluation.get("metrics", {}).items()
                    if value is not None})
    kept = ("rows", "shards", "ignoredColumns", "gate", "registered")
    facts = {"metrics": metrics, **{field: output[field] for field in kept if field in output}}
    if "evaluation" in output:
        facts["evaluation"] = evaluation
    if isinstance(output.get("hyperparameters"), dict):
        facts["hyperparameters"] = hyperparameter_table(output["hyperparameters"],
                                                        output.get("hyperparameterOrigins") or {})
    return facts


def hyperparameter_table(values: dict[str, str], origins: dict[str, str]) -> dict[str, dict[str, str]]:
    """{name: {"value", "from"}} of every value the training job got: the overrides first (the run's, the stack's,
    the gate's eval_metric, the problem's), by name, then train.py's defaults in its own order."""
    rank = {origin: index for index, origin in enumerate(ORIGIN_ORDER)}
    defaults = [*TRAINING_DEFAULTS, *BOOSTER_DEFAULTS]
    names = sorted(values, key=lambda name: (rank.get(origins.get(name, ""), len(rank)),
                                             defaults.index(name) if origins.get(name) == "default" else 0, name))
    return {name: {"value": str(values[name]), "from": origins.get(name, "unknown")} for name in names}


def hyperparameter_lines(table: dict[str, dict[str, str]]) -> list[str]:
    """The CLI's lines: the values set for this run with where each came from, then train.py's defaults."""
    overrides = [f"{name}={entry['value']} ({entry['from']})" for name, entry in table.items()
                 if entry["from"] != "default"]
    defaults = [f"{name}={entry['value']}" for name, entry in table.items() if entry["from"] == "default"]
    return ([f"hyperparameters: {', '.join(overrides)}"] if overrides else []) + (
        [f"  defaults: {', '.join(defaults)}"] if defaults else [])


def round_cap_note(table: dict[str, dict[str, str]] | None, curves: dict | None) -> str | None:
    """A note when training ran every one of num_round rounds and the metric early stopping watches (the last of
    eval_metric, as XGBoost's EarlyStopping does) was still improving at the last: more rounds would likely help.
    The rounds are the curve's points: the first host alone prints one metric line per round (training/train.py)."""
    table, curves = table or {}, curves or {}
    try:
        rounds = int(float(table["num_round"]["value"]))
        metric = [name.strip() for name in table["eval_metric"]["value"].split(",") if name.strip()][-1]
    except (KeyError, ValueError, IndexError):
        return None
    series = curves.get(f"validation:{metric}")
    if not isinstance(series, list) or len(series) != rounds or rounds < 2:
        return None
    best_before = max(series[:-1]) if metric in MAXIMIZE_METRICS else min(series[:-1])
    improving = series[-1] > best_before if metric in MAXIMIZE_METRICS else series[-1] < best_before
    return (f"training stopped at the round cap (num_round={rounds}) while validation:{metric} was still improving: "
            "raise num_round") if improving else None
