"""A private S3 bucket: encrypted, no public access, owner-enforced, TLS only, with lifecycle rules."""
from __future__ import annotations

import json
from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws

from statemachine.iam import document


@dataclass(frozen=True)
class ExpiringPrefix:
    prefix: str
    days: int


@dataclass
class SecureBucketArgs:
    kms_key_arn: str | None = None
    expiring: list[ExpiringPrefix] = field(default_factory=list)
    force_destroy: bool = False
    abort_incomplete_uploads_days: int = 1


def tls_only_policy(bucket_arn: str) -> str:
    """Deny every request that does not use TLS."""
    return json.dumps(document([{
        "Sid": "DenyInsecureTransport",
        "Effect": "Deny",
        "Principal": "*",
        "Action": "s3:*",
        "Resource": [bucket_arn, f"{bucket_arn}/*"],
        "Condition": {"Bool": {"aws:SecureTransport": "false"}},
    }]))


class SecureBucket(pulumi.ComponentResource):
    def __init__(self, name: str, args: SecureBucketArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sagestep:storage:SecureBucket", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        self.bucket = aws.s3.Bucket(name, force_destroy=args.force_destroy, opts=child)
        self.public_access_block = aws.s3.BucketPublicAccessBlock(
            f"{name}-public-access", bucket=self.bucket.id,
            block_public_acls=True, block_public_policy=True,
            ignore_public_acls=True, restrict_public_buckets=True, opts=child)
        aws.s3.BucketOwnershipControls(
            f"{name}-ownership", bucket=self.bucket.id,
            rule=aws.s3.BucketOwnershipControlsRuleArgs(object_ownership="BucketOwnerEnforced"), opts=child)
        by_default = aws.s3.BucketServerSideEncryptionConfigurationRuleApplyServerSideEncryptionByDefaultArgs(
            sse_algorithm="aws:kms" if args.kms_key_arn else "AES256",
            kms_master_key_id=args.kms_key_arn)
        aws.s3.BucketServerSideEncryptionConfiguration(
            f"{name}-encryption", bucket=self.bucket.id,
            rules=[aws.s3.BucketServerSideEncryptionConfigurationRuleArgs(
                apply_server_side_encryption_by_default=by_default,
                bucket_key_enabled=bool(args.kms_key_arn))], opts=child)
        aws.s3.BucketPolicy(
            f"{name}-tls-only", bucket=self.bucket.id, policy=self.bucket.arn.apply(tls_only_policy),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.public_access_block]))
        rules = [aws.s3.BucketLifecycleConfigurationRuleArgs(
            id="abort-incomplete-multipart-uploads", status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=""),
            abort_incomplete_multipart_upload=aws.s3.BucketLifecycleConfigurationRuleAbortIncompleteMultipartUploadArgs(
                days_after_initiation=args.abort_incomplete_uploads_days))]
        rules += [aws.s3.BucketLifecycleConfigurationRuleArgs(
            id=f"expire-{rule.prefix.strip('/')}", status="Enabled",
            filter=aws.s3.BucketLifecycleConfigurationRuleFilterArgs(prefix=rule.prefix),
            expiration=aws.s3.BucketLifecycleConfigurationRuleExpirationArgs(days=rule.days))
            for rule in args.expiring]
        aws.s3.BucketLifecycleConfiguration(f"{name}-lifecycle", bucket=self.bucket.id, rules=rules, opts=child)
        self.register_outputs({"bucket": self.bucket.bucket, "arn": self.bucket.arn})
