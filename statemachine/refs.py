"""What the definition needs to know about the deployed resources.

Pulumi fills these with resolved Output values; tests and the local engine pass plain strings.
"""
from __future__ import annotations

from dataclasses import dataclass

from preprocess.naming import owned_by


@dataclass(frozen=True)
class Refs:
    partition: str
    region: str
    account_id: str
    name_prefix: str           # lowercase; every SageMaker job and model name starts with "<prefix>--"
    stack: str
    function_arn: str          # the preprocess Lambda
    training_role_arn: str
    model_role_arn: str
    data_bucket: str
    artifacts_bucket: str
    training_image: str        # the SageMaker XGBoost framework image, for training and serving
    training_code_uri: str     # s3://…/code/training-<sha>.tar.gz (script mode sourcedir)
    inference_code_uri: str    # s3://…/code/inference-<sha>.tar.gz

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

    @property
    def models_s3_uri(self) -> str:
        return f"s3://{self.artifacts_bucket}/models/"
