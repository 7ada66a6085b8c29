"""IAM documents for the roles the jobs and the Lambda assume: pure functions of plain strings.

Each role may do exactly what its step does; the tests pin every action and resource.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from preprocess import layout
from preprocess.naming import owned_by
from statemachine.iam import allow

RUN_OBJECTS = f"{layout.RUNS_PREFIX}*/"
# <registry>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>
IMAGE_URI = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")


@dataclass(frozen=True)
class Scope:
    partition: str
    region: str
    account_id: str
    name_prefix: str
    data_bucket: str
    artifacts_bucket: str
    image_uri: str                 # <registry>.dkr.ecr.<region>.amazonaws.com/<repository>:<tag>
    kms_key_arn: str | None = None

    def s3(self, bucket: str, key: str | None = None) -> str:
        return f"arn:{self.partition}:s3:::{bucket}" + ("" if key is None else f"/{key}")

    def log_group(self, name: str) -> list[str]:
        base = f"arn:{self.partition}:logs:{self.region}:{self.account_id}:log-group:{name}"
        return [base, f"{base}:*"]

    def image_repository_arn(self) -> str:
        match = IMAGE_URI.match(self.image_uri)
        if not match:
            raise ValueError(f"not an ECR image URI: {self.image_uri}")
        registry, region, repository = match.groups()
        return f"arn:{self.partition}:ecr:{region}:{registry}:repository/{repository}"


def document(statements: list[dict]) -> dict:
    return {"Version": "2012-10-17", "Statement": statements}


def trust(service: str, condition: dict | None = None) -> dict:
    statement = {"Effect": "Allow", "Principal": {"Service": service}, "Action": "sts:AssumeRole"}
    if condition:
        statement["Condition"] = condition
    return document([statement])


def lambda_trust() -> dict:
    """Lambda sets no aws:SourceArn when it assumes an execution role, so no condition can apply."""
    return trust("lambda.amazonaws.com")


def training_trust(scope: Scope) -> dict:
    return trust("sagemaker.amazonaws.com", {
        "StringEquals": {"aws:SourceAccount": scope.account_id},
        "ArnLike": {"aws:SourceArn": f"arn:{scope.partition}:sagemaker:{scope.region}:{scope.account_id}"
                                     f":training-job/{owned_by(scope.name_prefix)}"},
    })


def model_trust(scope: Scope) -> dict:
    """SageMaker's confused-deputy guide asks for the account-wide SageMaker ARN on model roles."""
    return trust("sagemaker.amazonaws.com", {
        "StringEquals": {"aws:SourceAccount": scope.account_id},
        "ArnLike": {"aws:SourceArn": f"arn:{scope.partition}:sagemaker:{scope.region}:{scope.account_id}:*"},
    })


def state_machine_trust(scope: Scope, state_machine_arn: str) -> dict:
    return trust("states.amazonaws.com", {
        "StringEquals": {"aws:SourceAccount": scope.account_id},
        "ArnLike": {"aws:SourceArn": state_machine_arn},
    })


def _kms(scope: Scope, extra: tuple[str, ...] = ()) -> list[dict]:
    if not scope.kms_key_arn:
        return []
    return [allow("UseStackKey", ["kms:Decrypt", "kms:GenerateDataKey", *extra], [scope.kms_key_arn])]


# A SageMaker job with OutputDataConfig.KmsKeyId encrypts its output itself (Encrypt, DescribeKey) and
# grants its instances the volume key (CreateGrant).
JOB_KMS_ACTIONS = ("kms:CreateGrant", "kms:DescribeKey", "kms:Encrypt")


def _job_common(scope: Scope, log_group: str) -> list[dict]:
    """What every SageMaker job role needs: its log group, metrics, and pulling the framework image."""
    return [
        allow("JobLogs", ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams",
                          "logs:PutLogEvents"], scope.log_group(log_group)),
        # PutMetricData and GetAuthorizationToken have no resource type.
        allow("JobMetrics", ["cloudwatch:PutMetricData"], ["*"]),
        allow("EcrAuth", ["ecr:GetAuthorizationToken"], ["*"]),
        allow("PullFrameworkImage", ["ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage",
                                     "ecr:GetDownloadUrlForLayer"], [scope.image_repository_arn()]),
    ]


def _list_run_data(scope: Scope) -> dict:
    """S3Prefix inputs are listed; only under runs/."""
    return allow("ListRunData", ["s3:ListBucket"], [scope.s3(scope.data_bucket)],
                 {"StringLike": {"s3:prefix": [f"{layout.RUNS_PREFIX}*"]}})


def preprocess_policy(scope: Scope, dataset_buckets: tuple[str, ...], log_group_name: str) -> dict:
    readable = [scope.data_bucket, *dataset_buckets]
    return document([
        allow("ReadDatasets", ["s3:GetObject"],
              [scope.s3(scope.data_bucket, f"{layout.DATASETS_PREFIX}*")]
              + [scope.s3(bucket, "*") for bucket in dataset_buckets]),
        # Without ListBucket a missing key answers 403, and the Lambda could not say "not found".
        allow("ListDatasetBuckets", ["s3:ListBucket"], [scope.s3(bucket) for bucket in readable]),
        allow("WriteRunData", ["s3:AbortMultipartUpload", "s3:PutObject"],
              [scope.s3(scope.data_bucket, f"{layout.RUNS_PREFIX}*")]),
        allow("OwnLogs", ["logs:CreateLogStream", "logs:PutLogEvents"], scope.log_group(log_group_name)[1:]),
        *_kms(scope),
    ])


def training_policy(scope: Scope, training_code_keys: str, use_spot: bool) -> dict:
    """training_code_keys matches every training bundle the stack has uploaded, so an execution that
    started before a deploy still reads its own (earlier) bundle."""
    statements = [
        allow("ReadTrainingChannels", ["s3:GetObject"],
              [scope.s3(scope.data_bucket, f"{RUN_OBJECTS}{layout.TRAIN_DIR}*"),
               scope.s3(scope.data_bucket, f"{RUN_OBJECTS}{layout.VALIDATION_DIR}*")]),
        _list_run_data(scope),
        allow("ReadTrainingCode", ["s3:GetObject"], [scope.s3(scope.artifacts_bucket, training_code_keys)]),
        allow("WriteModelArtifacts", ["s3:AbortMultipartUpload", "s3:PutObject"],
              [scope.s3(scope.artifacts_bucket, "models/*")]),
    ]
    if use_spot:
        statements.append(allow("Checkpoints", ["s3:GetObject", "s3:PutObject"],
                                [scope.s3(scope.data_bucket, f"{RUN_OBJECTS}{layout.CHECKPOINTS_DIR}*")]))
    return document(statements + _job_common(scope, "/aws/sagemaker/TrainingJobs")
                    + _kms(scope, JOB_KMS_ACTIONS))


def model_policy(scope: Scope, inference_code_keys: str) -> dict:
    """CreateModel's role, which the batch transform job also runs under; inference_code_keys matches
    every inference bundle, as for training."""
    return document([
        allow("ReadModelArtifacts", ["s3:GetObject"], [scope.s3(scope.artifacts_bucket, "models/*")]),
        allow("ReadInferenceCode", ["s3:GetObject"], [scope.s3(scope.artifacts_bucket, inference_code_keys)]),
        allow("ReadTransformInput", ["s3:GetObject"],
              [scope.s3(scope.data_bucket, f"{RUN_OBJECTS}{layout.TEST_FEATURES_DIR}*")]),
        _list_run_data(scope),
        allow("WritePredictions", ["s3:AbortMultipartUpload", "s3:PutObject"],
              [scope.s3(scope.data_bucket, f"{RUN_OBJECTS}{layout.PREDICTIONS_DIR}*")]),
        *_job_common(scope, "/aws/sagemaker/TransformJobs"),
        *_kms(scope, JOB_KMS_ACTIONS),
    ])
