"""Stack settings: read once from `sagestep:*` config, validated before any resource exists.

Defaults and descriptions live in Pulumi.yaml only. Under `pulumi up` the CLI passes a key's
project default when the stack sets none; under the mocks (`sagestep synth`, the tests) no CLI runs,
so this module reads the same defaults from Pulumi.yaml for a key that is absent.
"""
from __future__ import annotations

import difflib
import json
import math
import os
import re
from dataclasses import dataclass, replace
from functools import lru_cache
from pathlib import Path
from typing import Callable, Iterable

import pulumi
import pulumi.runtime.config
import yaml

from infra.notifications import STATUSES
from preprocess import hyperparameters as hyperparameter_rules
from preprocess import tuning as tuning_rules
from statemachine import PipelineSettings
from statemachine.naming import PROJECT, name_prefix

from .catalogue import SUPPORTED_XGBOOST, instance_types, known_versions
from .prices import BudgetTooSmall, NoPrice, budget_caps

PROJECT_FILE = Path(__file__).resolve().parent.parent / "Pulumi.yaml"

# training/train.py trains one model across the instances (XGBoost's collective). The API sets no maximum;
# AWS's Service Quotas do, per account: 20 instances per training job is a common default (adjustable).
MAX_TRAINING_INSTANCES = 20
LOG_RETENTION_DAYS = (1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827,
                      2192, 2557, 2922, 3288, 3653)
INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
BUCKET_NAME = re.compile(r"^(?!xn--)(?!.*\.\.)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
KMS_KEY_ARN = re.compile(r"^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key/[A-Za-z0-9-]+$")
EMAIL = re.compile(r"^[^@\s,;]+@[^@\s,;]+\.[^@\s,;]+$")
HYPERPARAMETER_KEY = re.compile(r"^[A-Za-z0-9_.:-]{1,256}$")
APPROVAL_STATUSES = ("PendingManualApproval", "Approved")   # what a new registered version may start as


class ConfigError(pulumi.RunError):
    """One line naming the key, the value and what is allowed (RunError: Pulumi prints no traceback)."""

    def __init__(self, key: str, value: object, allowed: str, namespace: str = PROJECT):
        self.key, self.value, self.allowed = f"{namespace}:{key}", value, allowed
        shown = value if isinstance(value, str) else json.dumps(value)
        super().__init__(f"invalid config {self.key} = {shown}; allowed: {allowed}")


@dataclass(frozen=True)
class Settings:
    stack: str
    name_prefix: str
    pipeline: PipelineSettings
    xgboost_version: str
    hyperparameters: dict[str, str]
    preprocess_memory_mb: int
    preprocess_timeout_seconds: int
    dataset_buckets: tuple[str, ...]
    log_retention_days: int
    run_data_expiration_days: int
    model_retention_days: int = 0
    notify_emails: tuple[str, ...] = ()
    notify_on: tuple[str, ...] = ("FAILED", "TIMED_OUT", "ABORTED")
    quality_metric: str = ""
    quality_threshold: float | None = None


@lru_cache(maxsize=1)
def project_defaults() -> dict[str, object]:
    declared = yaml.safe_load(PROJECT_FILE.read_text())["config"]
    return {key.split(":", 1)[1]: spec["default"] for key, spec in declared.items()}


class _Reader:
    """Typed access to raw config strings with one-line errors."""

    def __init__(self, lookup: Callable[[str], str | None]):
        self._lookup = lookup
        self._defaults = project_defaults()

    def raw(self, key: str) -> object:
        text = self._lookup(key)
        return self._defaults[key] if text is None else text

    def string(self, key: str) -> str:
        value = self.raw(key)
        return value if isinstance(value, str) else json.dumps(value)

    def integer(self, key: str, low: int, high: int, why: str = "") -> int:
        value = self.raw(key)
        try:
            number = value if isinstance(value, int) and not isinstance(value, bool) else int(str(value).strip())
        except ValueError:
            number = None
        if number is None or not low <= number <= high:
            raise ConfigError(key, value, f"an integer from {low} to {high}{why}")
        return number

    def boolean(self, key: str) -> bool:
        value = self.raw(key)
        if isinstance(value, bool):
            return value
        if str(value).strip().lower() in ("true", "false"):
            return str(value).strip().lower() == "true"
        raise ConfigError(key, value, "true or false")

    def structured(self, key: str, kind: type) -> object:
        original = value = self.raw(key)
        if isinstance(value, str):
            try:
                value = json.loads(value)
            except json.JSONDecodeError:
                raise ConfigError(key, original, f"a JSON {kind.__name__}") from None
        if not isinstance(value, kind):
            raise ConfigError(key, original, f"a {'list' if kind is list else 'map'}")
        return value

    def instance_type(self, key: str, shape: str) -> str:
        value = self.string(key)
        if not INSTANCE_TYPE.match(value):
            raise ConfigError(key, value, "an instance type of the form ml.<family>.<size>, e.g. ml.m5.xlarge")
        if value not in instance_types(shape):
            raise ConfigError(key, value, f"a SageMaker {shape} known to botocore (e.g. ml.m5.xlarge, ml.g5.xlarge)")
        return value


def _hyperparameters(reader: _Reader) -> dict[str, str]:
    """Strings, as SageMaker passes them; the sagemaker_* keys belong to the stack."""
    raw = reader.structured("hyperparameters", dict)
    allowed = "a map of at most 100 XGBoost hyperparameters to numbers or strings, not sagemaker_*"
    if len(raw) > 100:
        raise ConfigError("hyperparameters", raw, allowed)
    result = {}
    for key, value in raw.items():
        if (not HYPERPARAMETER_KEY.match(key) or key.startswith("sagemaker_")
                or isinstance(value, (dict, list)) or value is None):
            raise ConfigError("hyperparameters", raw, allowed)
        text = json.dumps(value) if isinstance(value, bool) else str(value)
        if len(text) > 2500:
            raise ConfigError("hyperparameters", raw, allowed)
        result[key] = text
    refused = hyperparameter_rules.check(result)
    if refused:
        raise ConfigError("hyperparameters", raw, f"hyperparameters XGBoost takes ({refused})")
    return result


def _quality_gate(reader: _Reader, hyperparameters: dict[str, str]) -> tuple[str, float | None]:
    """qualityMetric must be a validation metric the image scrapes that a run of this stack can report (the
    preprocess step adds it to eval_metric); a number as qualityThreshold."""
    metric = reader.string("qualityMetric").strip()
    if not metric:
        return "", None
    name = metric.removeprefix("validation:")
    if not metric.startswith("validation:") or name not in hyperparameter_rules.EVAL_METRICS:
        raise ConfigError("qualityMetric", metric, "empty, or validation:<metric> of the metrics a run can report ("
                          f"{', '.join(hyperparameter_rules.EVAL_METRICS)})")
    objective = hyperparameters.get("objective")
    problems = [problem for problem, objectives in hyperparameter_rules.OBJECTIVES_BY_PROBLEM.items()
                if objective in objectives] if objective else list(hyperparameter_rules.METRICS_BY_PROBLEM)
    if not any(name in hyperparameter_rules.gate_metrics(problem, objective or "") for problem in problems):
        raise ConfigError("qualityMetric", metric, f"a metric objective {objective} reports (" + ", ".join(
            hyperparameter_rules.gate_metrics(problems[0], objective)) + ")")
    raw = reader.raw("qualityThreshold")
    try:
        threshold = float(str(raw).strip())
    except ValueError:
        threshold = math.nan
    if not math.isfinite(threshold):
        raise ConfigError("qualityThreshold", raw, f"a number, the value {metric} must reach")
    return metric, threshold


def _tuning(reader: _Reader, hyperparameters: dict[str, str]) -> dict:
    """sagestep:tuning as the preprocess step checks an execution's over it (preprocess/tuning.py), with its strategy
    filled in; an objective must be one the stack's objective reports. {} when the stack does not tune."""
    raw = reader.structured("tuning", dict)
    if not raw:
        return {}
    refused = tuning_rules.refusal(raw)
    objective = raw.get("objective")
    if not refused and objective and hyperparameters.get("objective"):
        problem = next(problem for problem, objectives in hyperparameter_rules.OBJECTIVES_BY_PROBLEM.items()
                       if hyperparameters["objective"] in objectives)
        reportable = hyperparameter_rules.gate_metrics(problem, hyperparameters["objective"])
        if objective.removeprefix("validation:") not in reportable:
            refused = (f"objective {objective} is not a metric objective {hyperparameters['objective']} reports "
                       f"(validation:<{', '.join(reportable)}>)")
    if refused:
        raise ConfigError("tuning", raw, f"a tuning config SageMaker and XGBoost take ({refused})")
    return {"strategy": tuning_rules.DEFAULTS["strategy"], **raw}


def _notifications(reader: _Reader) -> tuple[tuple[str, ...], tuple[str, ...]]:
    emails = reader.structured("notifyEmails", list)
    if not all(isinstance(email, str) and EMAIL.match(email) for email in emails):
        raise ConfigError("notifyEmails", emails, "a list of e-mail addresses")
    statuses = reader.structured("notifyOn", list)
    if not statuses or not set(statuses) <= set(STATUSES) or len(set(statuses)) != len(statuses):
        raise ConfigError("notifyOn", statuses, f"a list of distinct statuses among {', '.join(STATUSES)}")
    return tuple(emails), tuple(statuses)


def _xgboost_version(reader: _Reader) -> str:
    value = reader.string("xgboostVersion")
    known = known_versions()
    supported = sorted(v for v in SUPPORTED_XGBOOST if v in known)
    if value not in supported:
        raise ConfigError("xgboostVersion", value,
                          f"one of {', '.join(supported)} (the SageMaker SDK knows {', '.join(known)}; "
                          "the training code supports the listed ones)")
    return value


def _approval_status(reader: _Reader) -> str:
    """Rejected makes no sense for a version nobody has looked at yet."""
    value = reader.string("modelApprovalStatus")
    if value not in APPROVAL_STATUSES:
        raise ConfigError("modelApprovalStatus", value, " or ".join(APPROVAL_STATUSES))
    return value


def _known_keys(given: Iterable[str], lookup: Callable[[str], str | None]) -> None:
    """A key Pulumi.yaml does not declare is a typo (trainingInstanceTyp), not a setting to ignore."""
    declared = project_defaults()
    for key in sorted(given):
        if key not in declared:
            close = difflib.get_close_matches(key, declared, n=1)
            hint = f"did you mean {PROJECT}:{close[0]}? " if close else ""
            raise ConfigError(key, lookup(key), f"{hint}a key Pulumi.yaml declares (Pulumi.example.yaml lists them)")


def _budget(reader: _Reader, pipeline: PipelineSettings, region: str | None) -> PipelineSettings:
    """maxRunCostUsd caps the training runtime and batch prediction's time so that no run's SageMaker
    instances can cost more at on-demand prices (infra/prices.py budget_caps)."""
    raw = reader.raw("maxRunCostUsd")
    if raw in ("", None):
        return pipeline
    try:
        budget = float(str(raw).strip())
    except ValueError:
        budget = math.nan
    if not (math.isfinite(budget) and budget > 0):
        raise ConfigError("maxRunCostUsd", raw, "empty, or a number of US dollars above 0")
    if not region:
        raise ConfigError("maxRunCostUsd", raw, "a budget with aws:region set (prices are per region)")
    try:
        training, transform = budget_caps(budget, pipeline.training_instance_type, pipeline.training_instance_count,
                                          pipeline.transform_instance_type, pipeline.transform_instance_count, region)
    except BudgetTooSmall as error:
        raise ConfigError("maxRunCostUsd", raw, f"a budget that pays for a useful run ({error})") from None
    except NoPrice as error:
        raise ConfigError("maxRunCostUsd", raw, f"a budget for instance types with a known price ({error})") from None
    runtime = min(pipeline.training_max_runtime_seconds, training)
    return replace(pipeline, training_max_runtime_seconds=runtime, transform_timeout_seconds=transform,
                   spot_max_wait_seconds=max(runtime, pipeline.spot_max_wait_seconds))


def read_settings(lookup: Callable[[str], str | None], stack: str, given: Iterable[str] = (),
                  region: str | None = None) -> Settings:
    """Validate every key (given: the sagestep: keys the stack sets); the first bad one stops the
    program with its one-line message."""
    _known_keys(given, lookup)
    reader = _Reader(lookup)
    max_runtime = reader.integer("trainingMaxRuntimeSeconds", 1, 28 * 24 * 3600)
    use_spot = reader.boolean("useSpotTraining")
    kms_key_arn = reader.string("kmsKeyArn").strip()
    if kms_key_arn and not KMS_KEY_ARN.match(kms_key_arn):
        raise ConfigError("kmsKeyArn", kms_key_arn, "empty, or a KMS key ARN arn:aws:kms:<region>:<account>:key/<id>")
    pipeline = PipelineSettings(
        training_instance_type=reader.instance_type("trainingInstanceType", "TrainingInstanceType"),
        training_instance_count=reader.integer(
            "trainingInstanceCount", 1, MAX_TRAINING_INSTANCES, " (a common default quota per training job)"),
        training_volume_size_gb=reader.integer("trainingVolumeSizeGb", 1, 16384),
        training_max_runtime_seconds=max_runtime,
        use_spot_training=use_spot,
        # Only spot training waits; without it, the key is not used and a short default must not refuse a
        # long trainingMaxRuntimeSeconds.
        spot_max_wait_seconds=reader.integer(
            "spotMaxWaitSeconds", max_runtime if use_spot else 1, 28 * 24 * 3600,
            " (at least trainingMaxRuntimeSeconds)" if use_spot else ""),
        transform_instance_type=reader.instance_type("transformInstanceType", "TransformInstanceType"),
        transform_instance_count=reader.integer("transformInstanceCount", 1, 100),
        preprocess_concurrency=reader.integer("preprocessConcurrency", 1, 1000),
        kms_key_arn=kms_key_arn or None,
        register_models=reader.boolean("registerModels"),
        model_approval_status=_approval_status(reader),
    )
    pipeline = _budget(reader, pipeline, region)
    hyperparameters = _hyperparameters(reader)
    pipeline = replace(pipeline, tuning=_tuning(reader, hyperparameters))
    buckets = reader.structured("datasetBuckets", list)
    for bucket in buckets:
        if not isinstance(bucket, str) or not BUCKET_NAME.match(bucket):
            raise ConfigError("datasetBuckets", buckets, "a list of S3 bucket names (not ARNs or URIs)")
    retention = reader.integer("logRetentionDays", 1, 3653)
    if retention not in LOG_RETENTION_DAYS:
        raise ConfigError("logRetentionDays", retention, f"one of {', '.join(map(str, LOG_RETENTION_DAYS))}")
    quality_metric, quality_threshold = _quality_gate(reader, hyperparameters)
    notify_emails, notify_on = _notifications(reader)
    return Settings(
        stack=stack,
        name_prefix=name_prefix(stack),
        pipeline=pipeline,
        xgboost_version=_xgboost_version(reader),
        hyperparameters=hyperparameters,
        notify_emails=notify_emails,
        notify_on=notify_on,
        quality_metric=quality_metric,
        quality_threshold=quality_threshold,
        preprocess_memory_mb=reader.integer("preprocessMemoryMb", 128, 10240),
        preprocess_timeout_seconds=reader.integer("preprocessTimeoutSeconds", 1, 900),
        dataset_buckets=tuple(buckets),
        log_retention_days=retention,
        run_data_expiration_days=reader.integer("runDataExpirationDays", 1, 3650),
        model_retention_days=reader.integer("modelRetentionDays", 0, 3650, " (0 keeps models)"),
    )


def load() -> Settings:
    """Read the current stack's settings through pulumi.Config."""
    config = pulumi.Config(PROJECT)
    given = {**pulumi.runtime.config.get_config_env(), **pulumi.runtime.config.CONFIG.get()}
    keys = [key.split(":", 1)[1] for key in given if key.startswith(f"{PROJECT}:")]
    region = pulumi.Config("aws").get("region") or os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
    return read_settings(config.get, pulumi.get_stack(), keys, region)
