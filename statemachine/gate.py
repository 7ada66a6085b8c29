"""QualityGate: after Train, no model is made from a model that is not good enough. No Lambda: states only.

The preprocess step resolves the gate for the run ($.run.gate: metric, threshold, maximize, comparison)
from the stack's qualityMetric / qualityThreshold and the execution input, and refuses a metric this run's
objective never produces. Picking one metric by name out of FinalMetricDataList needs a comparison of two
values (the item's name and the wanted one), which a Choice rule can do (StringEqualsPath) and a path
cannot (statelint refuses filter expressions); so a Map over the list keeps the value of the matching
item only, "$[*].value" collects it (an empty list when none matched), and a Choice compares it with the
threshold in the metric's own direction.
"""
from __future__ import annotations

from .refs import Refs
from .settings import PipelineSettings
from .step import Step, then

NAME = "QualityGate"
NO_GATE = "NoQualityGate"
FIND = "FindGateMetric"
VERDICT = "GateVerdict"
PASSED = "GatePassed"
MISSED = "GateMissed"
UNSCRAPED = "GateMetricUnscraped"
FAILED = "QualityGateFailed"
GATE = "$.run.gate"
VALUE = "$.gate.values[0]"


def _below(comparison: str, maximize: bool) -> dict:
    """The rule that fails the gate: a score under the threshold, or a loss over it."""
    return {"And": [{"Variable": f"{GATE}.maximize", "BooleanEquals": maximize},
                    {"Variable": VALUE, comparison: f"{GATE}.threshold"}], "Next": MISSED}


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    return {
        NAME: {
            "Type": "Choice",
            "Comment": "A run without a quality metric skips the gate.",
            "Choices": [{"Variable": f"{GATE}.metric", "StringEquals": "", "Next": NO_GATE}],
            "Default": FIND,
        },
        NO_GATE: {"Type": "Pass", "Result": {"metric": None, "passed": None}, "ResultPath": "$.gate",
                  **then(next_state)},
        FIND: {
            "Type": "Map",
            "Comment": "Keeps the value of the final metric the gate names (the job lists them in no fixed order).",
            "ItemsPath": "$.training.finalMetrics",
            "ItemSelector": {"name.$": "$$.Map.Item.Value.MetricName", "value.$": "$$.Map.Item.Value.Value",
                             "wanted.$": f"{GATE}.metric"},
            "ItemProcessor": {
                "ProcessorConfig": {"Mode": "INLINE"},
                "StartAt": "IsGateMetric",
                "States": {
                    "IsGateMetric": {"Type": "Choice",
                                     "Choices": [{"Variable": "$.name", "StringEqualsPath": "$.wanted",
                                                  "Next": "GateMetric"}],
                                     "Default": "OtherMetric"},
                    "GateMetric": {"Type": "Pass", "Parameters": {"value.$": "$.value"}, "End": True},
                    "OtherMetric": {"Type": "Pass", "Result": {}, "End": True},
                },
            },
            "ResultSelector": {"values.$": "$[*].value"},
            "ResultPath": "$.gate",
            "Next": VERDICT,
        },
        VERDICT: {
            "Type": "Choice",
            "Comment": "A score must reach the threshold from above, a loss from below.",
            "Choices": [
                {"Not": {"Variable": VALUE, "IsPresent": True}, "Next": UNSCRAPED},
                _below("NumericLessThanPath", True),
                _below("NumericGreaterThanPath", False),
            ],
            "Default": PASSED,
        },
        PASSED: {
            "Type": "Pass",
            "Parameters": {"metric.$": f"{GATE}.metric", "threshold.$": f"{GATE}.threshold",
                           "comparison.$": f"{GATE}.comparison", "value.$": VALUE, "passed": True},
            "ResultPath": "$.gate",
            **then(next_state),
        },
        MISSED: {
            "Type": "Pass",
            "Parameters": {"cause.$": f"States.Format('{{}} = {{}}, needs {{}} {{}}', {GATE}.metric, {VALUE}, "
                                      f"{GATE}.comparison, {GATE}.threshold)"},
            "ResultPath": "$.gate",
            "Next": FAILED,
        },
        UNSCRAPED: {
            "Type": "Pass",
            "Parameters": {"cause.$": f"States.Format('{{}} was not scraped from the training log, so it cannot be "
                                      f"shown to be {{}} {{}}', {GATE}.metric, {GATE}.comparison, {GATE}.threshold)"},
            "ResultPath": "$.gate",
            "Next": FAILED,
        },
        FAILED: {"Type": "Fail", "Error": FAILED, "CausePath": "$.gate.cause"},
    }


def summary(rendered: dict[str, dict]) -> list[str]:
    return ["quality gate: the stack's qualityMetric / qualityThreshold, or the execution input's; "
            "a run that misses it ends at QualityGateFailed before any model is made"]


STEP = Step(NAME, states, summary=summary, outputs={"gate.$": "$.gate"})
