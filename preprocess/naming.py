"""The run name every SageMaker job and model of an execution starts with.

Execution names may be 80 characters with "_" and capitals; SageMaker names allow 63 of
[a-zA-Z0-9-]. The state machine appends "-<kind>-<retry>" (at most 10 characters).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

RUN_NAME_MAX = 52
# CreateHyperParameterTuningJob's name is at most 32 characters (botocore's model); the state machine appends
# "-<retry>", and SageMaker names the trials "<tuning name>-<NNN>-<8 hex>" (at most 45).
TUNING_NAME_MAX = 30
# Between the stack's prefix and the rest. A stack prefix never holds "--" (its slug collapses
# runs of other characters into one "-"), so "<prefix>--*" matches this stack's names only,
# not those of a stack whose name merely starts the same ("dev" and "dev-2").
SEPARATOR = "--"


def slug(text: str) -> str:
    """Lowercase runs of [a-z0-9], joined by single "-" (SageMaker names allow [a-zA-Z0-9-]; IAM
    patterns are case-sensitive, so every name is lowercase)."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def owned_by(prefix: str) -> str:
    """The name pattern of everything this stack creates in SageMaker (for IAM)."""
    return f"{prefix}{SEPARATOR}*"


def run_name(prefix: str, execution_name: str, execution_arn: str) -> str:
    """`<prefix>--<readable slug of the execution>-<8 hex of the execution ARN>`, lowercase.

    The hash keeps names unique when two execution names slug the same or are cut short.
    """
    return _short_name(prefix, execution_name, execution_arn, RUN_NAME_MAX)


def tuning_name(prefix: str, execution_name: str, execution_arn: str) -> str:
    """run_name in TUNING_NAME_MAX characters: as much of the execution's slug as fits, and at least 4 hex of the
    execution ARN's hash (the longest stack prefix, 24 characters, leaves room for 4 and no slug)."""
    return _short_name(prefix, execution_name, execution_arn, TUNING_NAME_MAX)


def _short_name(prefix: str, execution_name: str, execution_arn: str, limit: int) -> str:
    room = limit - len(prefix) - len(SEPARATOR)
    digest = hashlib.sha256(execution_arn.encode()).hexdigest()[:min(8, room)]
    readable = slug(execution_name)[:max(room - len(digest) - 1, 0)].strip("-")
    return prefix + SEPARATOR + "-".join(part for part in (readable, digest) if part)


# SageMaker's TagValue: ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$, at most 256 characters.
TAG_VALUE_MAX = 256
_TAG_PUNCTUATION = frozenset("_.:/=+-@")


def tag_value(text: str) -> str:
    """text with every character SageMaker refuses in a tag value replaced by "_" (execution names
    may hold "(", ")", "!" or "'", which would fail CreateTrainingJob)."""
    def allowed(character: str) -> bool:
        return character in _TAG_PUNCTUATION or unicodedata.category(character)[0] in "LZN"
    return "".join(c if allowed(c) else "_" for c in text)[:TAG_VALUE_MAX]
