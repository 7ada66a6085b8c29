"""IAM documents of the roles that belong to no step: the preprocess Lambda's (every action of it,
Preprocess and Evaluate) and the state machine's trust. (Each job role is its step's: statemachine/train.py, statemachine/create_model.py.)"""
from __future__ import annotations

from preprocess import layout
from statemachine.iam import allow, document, key_use, trust
from statemachine.refs import Refs


def lambda_trust() -> dict:
    """Lambda sets no aws:SourceArn when it assumes an execution role, so no condition can apply."""
    return trust("lambda.amazonaws.com")


def state_machine_trust(refs: Refs, state_machine_arn: str) -> dict:
    return trust("states.amazonaws.com", {
        "StringEquals": {"aws:SourceAccount": refs.account_id},
        "ArnLike": {"aws:SourceArn": state_machine_arn},
    })


def preprocess_policy(refs: Refs, dataset_buckets: tuple[str, ...], log_group_name: str,
                      kms_key_arn: str | None) -> dict:
    readable = [refs.data_bucket, *dataset_buckets]
    return document([
        allow("ReadDatasets", ["s3:GetObject"],
              [refs.s3(refs.data_bucket, f"{layout.DATASETS_PREFIX}*")]
              + [refs.s3(bucket, "*") for bucket in dataset_buckets]),
        # Without ListBucket a missing key answers 403, and the Lambda could not say "not found".
        allow("ListDatasetBuckets", ["s3:ListBucket"], [refs.s3(bucket) for bucket in readable]),
        # The actions read back what the run wrote: the preprocess records (items, profiles, plan, results),
        # and for evaluate the predictions, held-out labels and schema.
        allow("ReadRunResults", ["s3:GetObject"],
              [refs.s3(refs.data_bucket, f"{layout.RUNS_PREFIX}*/{path}")
               for path in (f"{layout.WORK_DIR}*", f"{layout.PREDICTIONS_DIR}*", f"{layout.TEST_LABELS_DIR}*",
                            layout.SCHEMA)]),
        allow("WriteRunData", ["s3:AbortMultipartUpload", "s3:PutObject"],
              [refs.s3(refs.data_bucket, f"{layout.RUNS_PREFIX}*")]),
        # A preprocess that failed deletes what its items wrote (the discard action).
        allow("DiscardRunData", ["s3:DeleteObject"], [refs.s3(refs.data_bucket, f"{layout.RUNS_PREFIX}*")]),
        allow("OwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], refs.log_group(log_group_name)[1:]),
        *key_use(kms_key_arn),
    ])
