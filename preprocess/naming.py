"""The run name every SageMaker job and model of an execution starts with.

Execution names may be 80 characters with "_" and capitals; SageMaker names allow 63 of
[a-zA-Z0-9-]. The state machine appends "-<kind>-<retry>" (at most 10 characters).
"""
from __future__ import annotations

import hashlib
import re
import unicodedata

RUN_NAME_MAX = 52
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
    digest = hashlib.sha256(execution_arn.encode()).hexdigest()[:8]
    room = RUN_NAME_MAX - len(prefix) - len(SEPARATOR) - len(digest) - 1
    readable = slug(execution_name)[:max(room, 0)].strip("-")
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
