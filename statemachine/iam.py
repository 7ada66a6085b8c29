"""IAM documents and statement helpers shared by the step modules and the stack's other roles."""
from __future__ import annotations

from preprocess import layout

from .refs import Refs

SAGEMAKER_SERVICE = "sagemaker.amazonaws.com"
RUN_OBJECTS = f"{layout.RUNS_PREFIX}*/"
# A SageMaker job with an output KmsKeyId encrypts its output itself (Encrypt, DescribeKey) and grants
# its instances the volume key (CreateGrant).
JOB_KMS_ACTIONS = ("kms:CreateGrant", "kms:DescribeKey", "kms:Encrypt")


def allow(sid: str, actions: list[str], resources: list[str], condition: dict | None = None) -> dict:
    statement = {"Sid": sid, "Effect": "Allow", "Action": sorted(actions), "Resource": resources}
    if condition:
        statement["Condition"] = condition
    return statement


def document(statements: list[dict]) -> dict:
    return {"Version": "2012-10-17", "Statement": statements}


def trust(service: str, condition: dict | None = None) -> dict:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return document([statement])


def sagemaker_trust(refs: Refs, source_arn: str) -> dict:
    """SageMaker may assume the role only for this account, from source_arn (confused deputy)."""
    return trust(SAGEMAKER_SERVICE, {"StringEquals": {"aws:SourceAccount": refs.account_id},
                                     "ArnLike": {"aws:SourceArn": source_arn}})


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


def key_use(kms_key_arn: str | None, extra: tuple[str, ...] = ()) -> list[dict]:
    """The stack's KMS key, when there is one: read and write SSE-KMS objects (plus extra)."""
    if not kms_key_arn:
        return []
    return [allow("UseStackKey", ["kms:Decrypt", "kms:GenerateDataKey", *extra], [kms_key_arn])]


def list_run_data(refs: Refs) -> dict:
    """S3Prefix inputs are listed; only under runs/."""
    return allow("ListRunData", ["s3:ListBucket"], [refs.s3(refs.data_bucket)],
                 {"StringLike": {"s3:prefix": [f"{layout.RUNS_PREFIX}*"]}})


def job_common(refs: Refs, kms_key_arn: str | None, log_group: str, image_uri: str) -> list[dict]:
    """What every SageMaker job role needs: its log group, metrics, pulling its image, the stack's key."""
    return [
        allow("JobLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
                          "logs:PutLogEvents"], refs.log_group(log_group)),
        # PutMetricData and GetAuthorizationToken have no resource type.
        allow("JobMetrics", ["cloudwatch:PutMetricData"], ["*"]),
        allow("EcrAuth", ["ecr:GetAuthorizationToken"], ["*"]),
        allow("PullFrameworkImage", ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                     "ecr:GetDownloadUrlForLayer"], [refs.image_repository_arn(image_uri)]),
        *key_use(kms_key_arn, JOB_KMS_ACTIONS),
    ]


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
