"""Names and tags of what the state machine creates in SageMaker.

The preprocess Lambda derives runName ("<prefix>--<execution slug>-<hash>", at most
preprocess.naming.RUN_NAME_MAX characters of [a-z0-9-]) and executionTag (the execution name in
SageMaker's tag value characters) from the execution; each job appends its Job's infix and the retry count. A tuning job's
name allows only 32 characters, so the Lambda derives a shorter tuningName for it (preprocess.naming.tuning_name).
"""
from __future__ import annotations

import hashlib

from preprocess.naming import RUN_NAME_MAX, TUNING_NAME_MAX, slug

from .refs import Refs
from .step import Job

PROJECT = "sagestep"          # the Pulumi project: the config namespace and every name's first word
RETRY_DIGITS = 1             # every Retry keeps RetryCount below 10
BASE_MAX = {"runName": RUN_NAME_MAX, "tuningName": TUNING_NAME_MAX}     # what the Lambda returns, at most


def name_prefix(stack: str) -> str:
    """Lowercase `sagestep-<stack>`, at most 24 characters of [a-z0-9-] and never "--", for every
    SageMaker name; a long stack name is cut and keeps 4 hex of its hash, so prefixes stay distinct."""
    prefix = f"{PROJECT}-{slug(stack) or 'stack'}"
    if len(prefix) > 24:
        prefix = f"{prefix[:19].rstrip('-')}-{hashlib.sha256(stack.encode()).hexdigest()[:4]}"
    return prefix


def job_name(job: Job, attempt: str = "$$.State.RetryCount") -> str:
    """A States.Format expression: unique per execution and per attempt. A state other than the job's
    own passes the attempt as a literal (the context object's RetryCount is the Task's only)."""
    return f"States.Format('{{}}{job.infix}{{}}', $.run.{job.base}, {attempt})"


def longest_name(job: Job) -> int:
    """The most characters its name can have: the Lambda's longest base, the infix, the retry digits (each Job's
    limit must hold it; tests/test_tune.py checks every kind)."""
    return BASE_MAX[job.base] + len(job.infix) + RETRY_DIGITS


def tags(refs: Refs) -> list[dict]:
    """The execution tag comes from the Lambda: execution names may hold characters ("(", "!")
    that SageMaker refuses in tag values."""
    return [
        {"Key": "sagestep:stack", "Value": refs.stack},
        {"Key": "sagestep:execution", "Value.$": "$.run.executionTag"},
    ]
