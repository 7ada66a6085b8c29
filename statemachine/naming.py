"""Names and tags of what the state machine creates in SageMaker.

The preprocess Lambda derives runName ("<prefix>--<execution slug>-<hash>", at most
preprocess.naming.RUN_NAME_MAX characters of [a-z0-9-]) and executionTag (the execution name in
SageMaker's tag value characters) from the execution; each job appends its kind and the retry count. A tuning job's
name allows only 32 characters, so the Lambda derives a shorter tuningName for it (preprocess.naming.tuning_name).
"""
from __future__ import annotations

import hashlib

from preprocess.naming import RUN_NAME_MAX, TUNING_NAME_MAX, slug

from .refs import Refs

PROJECT = "sagestep"          # the Pulumi project: the config namespace and every name's first word
RETRY_DIGITS = 1             # every Retry keeps RetryCount below 10
# Each job kind: the $.run name its job's name starts with, the infix after it, and its API's name limit (botocore's
# sagemaker model: TrainingJobName, ModelName, TransformJobName 63; HyperParameterTuningJobName 32).
JOB_NAMES = {
    "train": ("runName", "-train-", 63),
    "model": ("runName", "-model-", 63),
    "predict": ("runName", "-predict-", 63),
    "tune": ("tuningName", "-", 32),
}
KINDS = tuple(JOB_NAMES)
BASE_MAX = {"runName": RUN_NAME_MAX, "tuningName": TUNING_NAME_MAX}     # what the Lambda returns, at most


def name_prefix(stack: str) -> str:
    """Lowercase `sagestep-<stack>`, at most 24 characters of [a-z0-9-] and never "--", for every
    SageMaker name; a long stack name is cut and keeps 4 hex of its hash, so prefixes stay distinct."""
    prefix = f"{PROJECT}-{slug(stack) or 'stack'}"
    if len(prefix) > 24:
        prefix = f"{prefix[:19].rstrip('-')}-{hashlib.sha256(stack.encode()).hexdigest()[:4]}"
    return prefix


def job_name(kind: str, attempt: str = "$$.State.RetryCount") -> str:
    """A States.Format expression: unique per execution and per attempt. A state other than the job's
    own passes the attempt as a literal (the context object's RetryCount is the Task's only)."""
    base, infix, _ = JOB_NAMES[kind]
    return f"States.Format('{{}}{infix}{{}}', $.run.{base}, {attempt})"


def tags(refs: Refs) -> list[dict]:
    """The execution tag comes from the Lambda: execution names may hold characters ("(", "!")
    that SageMaker refuses in tag values."""
    return [
        {"Key": "sagestep:stack", "Value": refs.stack},
        {"Key": "sagestep:execution", "Value.$": "$.run.executionTag"},
    ]
