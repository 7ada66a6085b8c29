"""AWS's server-side request rules that botocore's validator leaves out, enforced on what moto receives.

botocore checks types, required members and `min`; AWS also checks `max`, `pattern` and `enum` of
every input member, plus rules written only in its documentation. Each rule below names its source,
the error code and message AWS answers with, and how much of that wording was seen in a real answer.
`enforced()` checks every SageMaker and Step Functions request before moto handles it, in-process
under `mock_aws` and through `ThreadedMotoServer` alike, and refuses a breach as AWS does: HTTP 400
with `{"__type": code, "message": message}`.
"""
from __future__ import annotations

import json
import re
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Callable, Iterator

import botocore.session
import regex
from botocore.model import Shape

from infra.catalogue import algorithm_repositories
from statemachine.check import sagemaker_model
from statemachine.instances import has_local_storage
from statemachine.refs import image_repository

from . import moto_adapter

VALIDATION = "ValidationException"
_CONTAINERS = ("structure", "list", "map")
_NUMBERS = ("integer", "long", "float", "double")

# Java's POSIX classes and \w \d \s are ASCII-only (no UNICODE_CHARACTER_CLASS); Python's are not.
_JAVA_CLASSES = {
    r"\p{Lower}": "a-z", r"\p{Upper}": "A-Z", r"\p{ASCII}": r"\x00-\x7F", r"\p{Alpha}": "a-zA-Z",
    r"\p{Digit}": "0-9", r"\p{Alnum}": "a-zA-Z0-9", r"\p{Punct}": r"!-/:-@\[-`{-~", r"\p{Graph}": r"\x21-\x7E",
    r"\p{Print}": r"\x20-\x7E", r"\p{Blank}": r" \t", r"\p{Cntrl}": r"\x00-\x1F\x7F", r"\p{XDigit}": "0-9a-fA-F",
    r"\p{Space}": r" \t\n\x0B\f\r", r"\w": "a-zA-Z0-9_", r"\d": "0-9", r"\s": r" \t\n\x0B\f\r",
}
_JAVA_TOKEN = re.compile(r"\\u[dD][89abAB][0-9a-fA-F]{2}\\u[dD][c-fC-F][0-9a-fA-F]{2}|\\p\{\w+\}|\\.|\[\^?|.", re.S)

# ---------------------------------------------------------------- service-model constraints

@lru_cache(maxsize=None)
def service_model(service: str):
    """botocore's model of a service, loaded once (SageMaker's is shared with statemachine.check)."""
    return sagemaker_model() if service == "sagemaker" else botocore.session.get_session().get_service_model(service)


def java_to_python(pattern: str) -> str:
    """A botocore (Java) pattern for the `regex` package: surrogate pairs become one code point and
    Java's ASCII-only classes become explicit ranges (bracketed outside a character class)."""
    out, in_class = [], False
    for token in _JAVA_TOKEN.findall(pattern):
        if token.startswith(r"\u") and len(token) == 12:
            high, low = int(token[2:6], 16), int(token[8:12], 16)
            out.append(rf"\U{0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00):08X}")
        elif token in _JAVA_CLASSES:
            out.append(_JAVA_CLASSES[token] if in_class else f"[{_JAVA_CLASSES[token]}]")
        else:
            if token.startswith("[") and not in_class:
                in_class = True
            elif token == "]" and in_class:
                in_class = False
            out.append(token)
    return "".join(out)


@lru_cache(maxsize=None)
def compiled(pattern: str) -> regex.Pattern:
    return regex.compile(java_to_python(pattern))


def _number(value: Any) -> int | float | None:
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _measure(value: Any, shape: Shape) -> int | float | None:
    """What min and max bound: a number's value, a string's, list's or map's length."""
    if shape.type_name in _NUMBERS:
        return _number(value)
    return len(value) if shape.type_name in ("string", "list", "map") and isinstance(value, (str, list, dict)) else None


@lru_cache(maxsize=None)
def _described(shape: Shape) -> tuple[tuple[str, str], ...]:
    """(kind, text) of each constraint of a shape, as AWS words it, in the order AWS lists them."""
    meta, noun = shape.metadata, "value" if shape.type_name in _NUMBERS else "length"
    enum = meta.get("enum", [])
    texts = [("max", f"Member must have {noun} less than or equal to {meta.get('max')}"),
             ("min", f"Member must have {noun} greater than or equal to {meta.get('min')}"),
             ("pattern", f"Member must satisfy regular expression pattern: {meta.get('pattern')}"),
             ("enum", f"Member must satisfy enum value set: [{', '.join(enum)}]")]
    return tuple((kind, text) for kind, text in texts if kind in meta)


def described(shape: Shape) -> list[str]:
    """Every constraint of a shape, as listed inside 'Member must satisfy constraint: [...]'."""
    return [text for _, text in _described(shape)]


def failed(value: Any, shape: Shape) -> list[str]:
    """The constraints of this shape that this value breaks (sizes of lists and maps included)."""
    meta, size, is_text = shape.metadata, _measure(value, shape), isinstance(value, str)
    broken = {
        "max": size is not None and size > meta.get("max", size),
        "min": size is not None and size < meta.get("min", size),
        "pattern": is_text and "pattern" in meta and not compiled(meta["pattern"]).fullmatch(value),
        "enum": is_text and value not in meta.get("enum", ()),
    }
    return [text for kind, text in _described(shape) if broken[kind]]


def java_text(value: Any, shape: Shape) -> str | None:
    """The value as AWS's Java validator prints it; None where it does not print it (structures,
    and anything holding one)."""
    if shape.type_name == "structure":
        return None
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, (str, int, float)):
        return str(value)
    if isinstance(value, list):
        items = [java_text(item, shape.member) for item in value]
        return None if None in items else f"[{', '.join(items)}]"
    if isinstance(value, dict):
        pairs = [(java_text(k, shape.key), java_text(v, shape.value)) for k, v in value.items()]
        return None if any(None in pair for pair in pairs) else "{" + ", ".join(f"{k}={v}" for k, v in pairs) + "}"
    return None


def _subject(value: Any, shape: Shape) -> str:
    """'Value 'x'', or a bare 'Value' for sensitive members and values AWS does not print."""
    text = None if shape.metadata.get("sensitive") else java_text(value, shape)
    return "Value" if text is None else f"Value '{text}'"


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


def violations(value: Any, shape: Shape, path: str) -> Iterator[str]:
    """Each breach as AWS words one: "Value 'v' at 'a.1.member.b' failed to satisfy constraint: ...";
    members in model order, list indexes 1-based, a list's or map's scalar items judged together."""
    def breach(constraint: str) -> str:
        return f"{_subject(value, shape)} at '{path}' failed to satisfy constraint: {constraint}"

    yield from map(breach, failed(value, shape))
    if shape.type_name == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if value.get(name) is not None:
                yield from violations(value[name], member, f"{path}.{_camel(name)}" if path else _camel(name))
    elif shape.type_name == "list" and isinstance(value, list):
        if shape.member.type_name in _CONTAINERS:
            for index, item in enumerate(value, 1):
                yield from violations(item, shape.member, f"{path}.{index}.member")
        elif any(failed(item, shape.member) for item in value):
            yield breach(f"Member must satisfy constraint: [{', '.join(described(shape.member))}]")
    elif shape.type_name == "map" and isinstance(value, dict):
        if any(failed(key, shape.key) for key in value):
            yield breach(f"Map keys must satisfy constraint: [{', '.join(described(shape.key))}]")
        if shape.value.type_name in _CONTAINERS:
            for key, item in value.items():
                yield from violations(item, shape.value, f"{path}.{key}.member")
        elif any(failed(item, shape.value) for item in value.values()):
            yield breach(f"Map value must satisfy constraint: [{', '.join(described(shape.value))}]")


def validation_message(breaches: list[str]) -> str:
    count = len(breaches)
    return f"{count} validation error{'' if count == 1 else 's'} detected: " + "; ".join(breaches)


def model_refusal(service: str, operation: str, params: dict) -> str | None:
    """The message AWS gives a request that breaks its service model's constraints, or None."""
    breaches = list(violations(params, service_model(service).operation_model(operation).input_shape, ""))
    return validation_message(breaches) if breaches else None


# ---------------------------------------------------------------- rules from the documentation

def _member(params: dict, name: str) -> dict:
    """A structure member, or {} where it is absent or not an object (the model rule judges types)."""
    value = params.get(name)
    return value if isinstance(value, dict) else {}


def _overrides_algorithm_metrics(params: dict) -> bool:
    spec = _member(params, "AlgorithmSpecification")
    image = str(spec.get("TrainingImage", ""))
    return bool(spec.get("MetricDefinitions")) and image_repository(image) in algorithm_repositories()


def _volume_key_on_local_storage(params: dict) -> bool:
    """ResourceConfig (training) or TransformResources (transform) with a key and an NVMe instance type."""
    return any(bool(resources.get("VolumeKmsKeyId")) and has_local_storage(str(resources.get("InstanceType", "")))
               for resources in (_member(params, "ResourceConfig"), _member(params, "TransformResources")))


def _spot(params: dict) -> tuple[bool, int | float | None, int | float | None]:
    """(managed spot?, MaxWaitTimeInSeconds, MaxRuntimeInSeconds)."""
    stopping = _member(params, "StoppingCondition")
    return (params.get("EnableManagedSpotTraining") is True, _number(stopping.get("MaxWaitTimeInSeconds")),
            _number(stopping.get("MaxRuntimeInSeconds")))


def _spot_without_max_wait(params: dict) -> bool:
    spot, wait, _ = _spot(params)
    return spot and wait is None


def _max_wait_below_max_runtime(params: dict) -> bool:
    spot, wait, runtime = _spot(params)
    return spot and wait is not None and runtime is not None and wait < runtime


def _max_wait_without_spot(params: dict) -> bool:
    spot, wait, _ = _spot(params)
    return not spot and wait is not None


def _payload_over_100(params: dict) -> bool:
    payload = _number(params.get("MaxPayloadInMB"))
    return payload is not None and payload > 100


def _payload_total_over_100(params: dict) -> bool:
    """Only when both are given: unset or 0 concurrency is the algorithm's to choose."""
    payload, concurrency = _number(params.get("MaxPayloadInMB")), _number(params.get("MaxConcurrentTransforms"))
    return bool(payload and concurrency) and payload * concurrency > 100


def _tuning_ranges(params: dict) -> dict:
    return _member(_member(params, "HyperParameterTuningJobConfig"), "ParameterRanges")


def _numeric_ranges(params: dict) -> list[tuple[str, dict]]:
    """(Integer | Continuous, range) of every numeric range that is an object."""
    ranges = _tuning_ranges(params)
    return [(kind, item) for kind in ("Integer", "Continuous")
            for item in (ranges.get(f"{kind}ParameterRanges") or []) if isinstance(item, dict)]


def _bounds(item: dict) -> tuple[float, float] | None:
    try:
        return float(item.get("MinValue")), float(item.get("MaxValue"))
    except (TypeError, ValueError):
        return None


def _logarithmic_not_positive(params: dict) -> bool:
    return any(item.get("ScalingType") == "Logarithmic" and (bounds := _bounds(item)) is not None and bounds[0] <= 0
               for _, item in _numeric_ranges(params))


def _reverse_logarithmic_outside_unit(params: dict) -> bool:
    return any(item.get("ScalingType") == "ReverseLogarithmic" and (
        kind == "Integer" or (bounds := _bounds(item)) is None or not 0 <= bounds[0] <= bounds[1] < 1)
        for kind, item in _numeric_ranges(params))


def _grid(params: dict) -> bool:
    return _member(params, "HyperParameterTuningJobConfig").get("Strategy") == "Grid"


def _grid_with_numeric_range(params: dict) -> bool:
    return _grid(params) and bool(_numeric_ranges(params))


def _grid_job_count_not_combinations(params: dict) -> bool:
    """MaxNumberOfTrainingJobs given and not the number of combinations of the categorical values."""
    limit = _number(_member(_member(params, "HyperParameterTuningJobConfig"), "ResourceLimits")
                    .get("MaxNumberOfTrainingJobs"))
    values = [item.get("Values") for item in (_tuning_ranges(params).get("CategoricalParameterRanges") or [])
              if isinstance(item, dict)]
    if not _grid(params) or limit is None or _numeric_ranges(params) or not all(isinstance(v, list) for v in values):
        return False
    combinations = 1
    for listed in values:
        combinations *= len(listed)
    return limit != combinations


# ---------------------------------------------------------------- the catalogue

@dataclass(frozen=True)
class Rule:
    """One server-side rule: where it is written, what AWS answers, how much of that answer was seen."""
    name: str
    service: str
    source: str
    code: str
    message: str      # the answer; for the model rules, its template
    wording: str      # what of the message is verified against real AWS answers, and where
    refusal: Callable[[str, dict], str | None]   # (operation, params) -> the message, or None


def _documented(name: str, operations: set[str], source: str, message: str, wording: str,
                breached: Callable[[dict], bool]) -> Rule:
    """A SageMaker rule with one fixed answer, for the operations it concerns."""
    return Rule(name, "sagemaker", source, VALIDATION, message, wording,
                lambda operation, params: message if operation in operations and breached(params) else None)


_MODEL_TEMPLATE = ("N validation error(s) detected: Value '<value>' at '<path>' failed to satisfy constraint: "
                   "<constraint>; ...")
_MODEL_WORDING = (
    "Verified from real AWS answers: 'N validation error(s) detected: ', breaches joined by '; ', "
    "\"Value '<v>' at '<path>' failed to satisfy constraint: Member must have length less than or equal to 63\" "
    "and '...Member must satisfy regular expression pattern: <pattern>' (SageMaker: "
    "https://github.com/aws-samples/sagemaker-ml-workflow-with-apache-airflow/issues/3, "
    "https://github.com/zenml-io/zenml/issues/1502, https://github.com/aws/sagemaker-python-sdk/issues/384), "
    "lowerCamelCase paths with 1-based 'tags.N.member.value' (https://github.com/SWO-GS/auto-tag/issues/90), "
    "'Member must have value greater than or equal to 1' (https://github.com/aws/aws-sdk-js/issues/2193), "
    "'Member must satisfy enum value set' "
    "(https://github.com/ministryofjustice/cloud-platform-infrastructure/pull/3651, list truncated there), "
    "'Map keys must satisfy constraint: [...]' listing all the key's constraints "
    "(https://github.com/boto/boto3/issues/2601), 'Map value must satisfy constraint: [...]' "
    "(https://github.com/awslabs/aws-service-catalog-factory/issues/279), 'Member must satisfy constraint: [...]' "
    "for a list of scalars (https://github.com/aws-actions/amazon-ecr-login/issues/225), a bare 'Value at' for "
    "sensitive members and lists of structures (https://github.com/trek10inc/serverless-secrets/issues/39, "
    "https://github.com/genkit-ai/aws-bedrock-js-plugin/issues/43). Not verified: the order of several breaches "
    "(AWS's order varies between answers; here members in model order, length/range before pattern before "
    "enum), the order of the enum set (model order), paths into maps of structures ('<map>.<key>.member'), "
    "and the pattern text printed (botocore's, which dropped the '^' older answers show).")

CATALOGUE: tuple[Rule, ...] = (
    Rule("sagemaker-model-constraints", "sagemaker",
         "botocore/data/sagemaker/2017-07-24/service-2.json: min, max, pattern and enum of every input member of "
         "every operation (includes R6, TagValue pattern ([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*), "
         "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_Tag.html)",
         VALIDATION, _MODEL_TEMPLATE, _MODEL_WORDING,
         lambda operation, params: model_refusal("sagemaker", operation, params)),
    Rule("stepfunctions-model-constraints", "stepfunctions",
         "botocore/data/stepfunctions/2016-11-23/service-2.json: min, max, pattern and enum of every input member "
         "(e.g. StartExecution name 1-80, input at most 262144 characters and sensitive, so printed as a bare "
         "'Value'), https://docs.aws.amazon.com/step-functions/latest/apireference/API_StartExecution.html",
         VALIDATION, _MODEL_TEMPLATE,
         "Verified for StartExecution: ValidationException \"1 validation error detected: Value '<name>' at 'name' "
         "failed to satisfy constraint: Member must have length less than or equal to 80\" "
         "(https://github.com/getmoto/moto/issues/6438, https://github.com/gchq/sleeper/issues/1869). The rest as "
         "for sagemaker-model-constraints; the answer to an oversized input is not verified (AWS may answer it "
         "with its own code).",
         lambda operation, params: model_refusal("stepfunctions", operation, params)),
    _documented(
        "R1-algorithm-metric-definitions", {"CreateTrainingJob"},
        "https://github.com/awslabs/mlspace/blob/main/backend/src/ml_space_lambda/training_job/lambda_functions.py "
        "(retries without MetricDefinitions on this message; its tests hold the whole answer); "
        "/work/shared/reference/xgboost-container.md R1; images: sagemaker-core "
        "sagemaker/core/image_uri_config/<algorithm>.json 'repository', kept in infra/catalogue.json",
        "You can't override the metric definitions for Amazon SageMaker algorithms. Please retry the request "
        "without specifying metric definitions.",
        "Verified: the whole message, from awslabs/mlspace's test fixture and public reports for "
        "sagemaker-xgboost script mode.",
        _overrides_algorithm_metrics),
    _documented(
        "R5-volume-kms-key-on-local-storage", {"CreateTrainingJob", "CreateTransformJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ResourceConfig.html and "
        "API_TransformResources.html (VolumeKmsKeyId); instance types: statemachine/instances.py",
        "You can't request a VolumeKmsKeyId when using an instance type with local storage.",
        "Not verified: the API reference's sentence (VolumeKmsKeyId of both), not seen in a real answer.",
        _volume_key_on_local_storage),
    _documented(
        "spot-without-max-wait", {"CreateTrainingJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/dg/model-managed-spot-training.html "
        "(\"Set EnableManagedSpotTraining to True and specify the MaxWaitTimeInSeconds\")",
        "Invalid MaxWaitTimeInSeconds. It is required when EnableManagedSpotTraining is set to true",
        "Not verified: written in the style of the verified max-wait-without-spot answer.",
        _spot_without_max_wait),
    _documented(
        "spot-max-wait-below-max-runtime", {"CreateTrainingJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_StoppingCondition.html "
        "(MaxWaitTimeInSeconds: \"It must be equal to or greater than MaxRuntimeInSeconds\"); checked only when "
        "both are given",
        "Invalid MaxWaitTimeInSeconds. It must be equal to or greater than MaxRuntimeInSeconds",
        "Not verified: the API reference's sentence in the style of the verified max-wait-without-spot answer.",
        _max_wait_below_max_runtime),
    _documented(
        "max-wait-without-spot", {"CreateTrainingJob"},
        "https://github.com/Kenza-AI/sagify/issues/111, https://github.com/aws/sagemaker-python-sdk/issues/4140",
        "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true",
        "Verified: the whole message, from real CreateTrainingJob answers in both issues.",
        _max_wait_without_spot),
    _documented(
        "transform-max-payload", {"CreateTransformJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html (MaxPayloadInMB: "
        "\"The value of MaxPayloadInMB cannot be greater than 100 MB\"; botocore's model has no max)",
        "The value of MaxPayloadInMB cannot be greater than 100 MB.",
        "Not verified: the API reference's sentence.",
        _payload_over_100),
    _documented(
        "transform-payload-total", {"CreateTransformJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTransformJob.html (MaxPayloadInMB: "
        "\"the value of (MaxConcurrentTransforms * MaxPayloadInMB) also cannot exceed 100 MB\"); checked only when "
        "both are given and MaxConcurrentTransforms is not 0",
        "The value of (MaxConcurrentTransforms * MaxPayloadInMB) cannot exceed 100 MB.",
        "Not verified: the API reference's sentence.",
        _payload_total_over_100),
    _documented(
        "tuning-logarithmic-positive", {"CreateHyperParameterTuningJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContinuousParameterRange.html and "
        "API_IntegerParameterRange.html (ScalingType Logarithmic: \"Logarithmic scaling works only for ranges that "
        "have only values greater than 0\"; the same text in botocore's model)",
        "Logarithmic scaling works only for ranges that have only values greater than 0.",
        "Not verified: the API reference's sentence, not seen in a real answer.",
        _logarithmic_not_positive),
    _documented(
        "tuning-reverse-logarithmic-unit-range", {"CreateHyperParameterTuningJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_ContinuousParameterRange.html (ScalingType "
        "ReverseLogarithmic: \"Reverse logarithmic scaling works only for ranges that are entirely within the range "
        "0<=x<1.0\"); continuous ranges only: "
        "https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-define-ranges.html",
        "Reverse logarithmic scaling works only for continuous ranges that are entirely within the range 0<=x<1.0.",
        "Not verified: the API reference's sentence, not seen in a real answer.",
        _reverse_logarithmic_outside_unit),
    _documented(
        "tuning-grid-categorical-only", {"CreateHyperParameterTuningJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html (grid search: "
        "categorical hyperparameters only; as read for /work/shared/reference/tuning-registry.md §1.4, the archived "
        "guide of June 2023 predates Grid)",
        "The Grid search strategy supports only categorical parameter ranges.",
        "Not verified: written from the developer guide, not seen in a real answer.",
        _grid_with_numeric_range),
    _documented(
        "tuning-grid-job-count", {"CreateHyperParameterTuningJob"},
        "https://docs.aws.amazon.com/sagemaker/latest/dg/automatic-model-tuning-how-it-works.html and "
        "automatic-model-tuning-define-ranges.html (with Grid, MaxNumberOfTrainingJobs is left out or equals the "
        "number of combinations of the categorical values; /work/shared/reference/tuning-registry.md §1.4)",
        "With the Grid search strategy, MaxNumberOfTrainingJobs must be omitted or equal to the number of "
        "combinations of the categorical parameter values.",
        "Not verified: written from the developer guide, not seen in a real answer.",
        _grid_job_count_not_combinations),
)


def refusal(service: str, operation: str, params: dict) -> tuple[str, str] | None:
    """(code, message) of the first rule the request breaks, model constraints first, as AWS
    validates the shape before anything else; None when AWS would accept it."""
    if operation not in service_model(service).operation_names:
        return None
    for rule in CATALOGUE:
        if rule.service == service and (message := rule.refusal(operation, params)):
            return rule.code, message
    return None


# ---------------------------------------------------------------- enforcement on moto's dispatch

def answer(service: str, operation: str, params: dict) -> tuple[int, dict, str] | None:
    """AWS's JSON-protocol answer to a request the catalogue refuses (HTTP 400, __type and message)."""
    refused = refusal(service, operation, params)
    if refused is None:
        return None
    code, message = refused
    content_type = f"application/x-amz-json-{service_model(service).metadata['jsonVersion']}"
    return 400, {"Content-Type": content_type}, json.dumps({"__type": code, "message": message})


def enforce(stack: ExitStack) -> None:
    """Until stack closes, every SageMaker and Step Functions request moto dispatches is checked first.
    The models and the image catalogue load here, so that a request costs only its own check."""
    algorithm_repositories()
    moto_adapter.intercept_requests(stack, answer)


@contextmanager
def enforced() -> Iterator[None]:
    with ExitStack() as stack:
        enforce(stack)
        yield
