"""IAM statement helpers shared by the step modules."""
from __future__ import annotations

from .refs import Refs

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"


def allow(sid: str, actions: list[str], resources: list[str], condition: dict | None = None) -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def pass_role(sid: str, role_arn: str) -> dict:
    """PassRole on exactly one role, and only to SageMaker."""
    return allow(sid, ["iam:PassRole"], [role_arn],
                 {"StringEquals": {"iam:PassedToService": SAGEMAKER_SERVICE}})


def sync_rule(refs: Refs, sid: str, rule: str) -> dict:
    """The managed EventBridge rule a .sync integration uses to learn that a job ended."""
    return allow(sid, ["events:DescribeRule", "events:PutRule", "events:PutTargets"],
                 [refs.arn("events", f"rule/{rule}")])


def list_tags() -> dict:
    """ListTags has no resource type: it can only be granted on "*"."""
    return allow("SageMakerListTags", ["sagemaker:ListTags"], ["*"])


def merge_statements(groups: list[list[dict]]) -> list[dict]:
    """The union of the steps' statements; identical statements (e.g. ListTags) appear once."""
    merged: list[dict] = []
    for group in groups:
        for statement in group:
            if statement not in merged:
                merged.append(statement)
    sids = [s["Sid"] for s in merged]
    duplicates = {sid for sid in sids if sids.count(sid) > 1}
    if duplicates:
        raise ValueError(f"two different IAM statements share the Sid {sorted(duplicates)}")
    return merged
