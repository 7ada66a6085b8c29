"""The resolved references to the deployed resources: what the definition and every policy need.

Pulumi fills them with resolved Output values (in two passes: the roles' policies are written before
the roles exist, so `role_arns` and `function_arn` come second, through `with_arns`); tests and the
local engine pass plain strings.
"""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from preprocess import layout
from preprocess.naming import owned_by

# <registry>.dkr.ecr.<region>.amazonaws.com[.cn]/<repository>:<tag>
IMAGE_URI = re.compile(r"^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([^:@]+)")


def image_repository(image_uri: str) -> str:
    """'683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5' -> 'sagemaker-xgboost';
    '' for an image not in ECR."""
    match = IMAGE_URI.match(image_uri)
    return match.group(3) if match else ""


def state_machine_name(name_prefix: str) -> str:
    return f"{name_prefix}-pipeline"


@dataclass(frozen=True)
class Refs:
    partition: str
    region: str
    account_id: str
    name_prefix: str           # lowercase; every SageMaker job and model name starts with "<prefix>--"
    stack: str
    data_bucket: str
    artifacts_bucket: str
    training_image: str        # the framework image for training ...
    serving_image: str         # ... and for batch transform (framework.py says which scope each uses)
    training_code_uri: str     # s3://…/code/training-<sha>.tar.gz (script mode sourcedir)
    inference_code_uri: str    # s3://…/code/inference-<sha>.tar.gz
    function_arn: str = ""     # the preprocess Lambda
    role_arns: dict[str, str] = field(default_factory=dict)   # job role key (JobRole.key) -> ARN
    model_package_group: str = ""   # the model registry's group (registerModels), "" when the stack has none

    def with_arns(self, function_arn: str, role_arns: dict[str, str]) -> "Refs":
        return dataclasses.replace(self, function_arn=function_arn, role_arns=dict(role_arns))

    @property
    def state_machine_name(self) -> str:
        return state_machine_name(self.name_prefix)

    def role_arn(self, key: str) -> str:
        if key not in self.role_arns:
            raise KeyError(f"no job role {key!r} among {sorted(self.role_arns)}: is its step in the pipeline?")
        return self.role_arns[key]

    def arn(self, service: str, resource: str, region: str | None = None, account: str | None = None) -> str:
        """An ARN in this stack's partition, region and account (override either for global services)."""
        region = self.region if region is None else region
        account = self.account_id if account is None else account
        return f"arn:{self.partition}:{service}:{region}:{account}:{resource}"

    def integration(self, api: str) -> str:
        """A Task's Resource for an optimized integration ("sagemaker:createModel"), in this partition
        (aws-cn and aws-us-gov state machines refuse arn:aws:states)."""
        return f"arn:{self.partition}:states:::{api}"

    def sagemaker_arn(self, resource_type: str) -> str:
        """The ARN pattern of every SageMaker resource of this type that this stack may create."""
        return self.arn("sagemaker", f"{resource_type}/{owned_by(self.name_prefix)}")

    def s3(self, bucket: str, key: str | None = None) -> str:
        return f"arn:{self.partition}:s3:::{bucket}" + ("" if key is None else f"/{key}")

    def log_group(self, name: str) -> list[str]:
        base = self.arn("logs", f"log-group:{name}")
        return [base, f"{base}:*"]

    def image_repository_arn(self, image_uri: str) -> str:
        match = IMAGE_URI.match(image_uri)
        if not match:
            raise ValueError(f"not an ECR image URI: {image_uri}")
        registry, region, repository = match.groups()
        return self.arn("ecr", f"repository/{repository}", region=region, account=registry)

    @property
    def models_s3_uri(self) -> str:
        return f"s3://{self.artifacts_bucket}/{layout.MODELS_PREFIX}"
