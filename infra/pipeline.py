"""The whole stack: buckets, roles, the preprocess Lambda, code bundles and the state machine."""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

import statemachine
from preprocess import layout

from . import bundles, policies
from .function import PreprocessFunction, PreprocessFunctionArgs
from .image import xgboost_image_uri
from .settings import Settings
from .storage import ExpiringPrefix, SecureBucket, SecureBucketArgs


@dataclass
class PipelineArgs:
    settings: Settings


def _role(name: str, description: str, trust: pulumi.Input[str], policy: pulumi.Input[str],
          parent: pulumi.Resource) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
    child = pulumi.ResourceOptions(parent=parent)
    role = aws.iam.Role(name, description=description, assume_role_policy=trust, opts=child)
    return role, aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=child)


def console_url(region: str, fragment: str, service: str) -> str:
    return f"https://{region}.console.aws.amazon.com/{service}/home?region={region}#{fragment}"


class Pipeline(pulumi.ComponentResource):
    def __init__(self, name: str, args: PipelineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sagestep:index:Pipeline", name, None, opts)
        settings = args.settings
        prefix = settings.name_prefix
        child = pulumi.ResourceOptions(parent=self)
        kms = settings.pipeline.kms_key_arn

        partition = aws.get_partition_output().partition
        region = aws.get_region_output().region
        account = aws.get_caller_identity_output().account_id
        self.image_uri = region.apply(lambda r: xgboost_image_uri(settings.xgboost_version, r))

        self.data = SecureBucket(f"{prefix}-data", SecureBucketArgs(
            kms_key_arn=kms,
            expiring=[ExpiringPrefix(layout.RUNS_PREFIX, settings.run_data_expiration_days)]), opts=child)
        self.artifacts = SecureBucket(f"{prefix}-artifacts", SecureBucketArgs(
            kms_key_arn=kms, force_destroy=True), opts=child)

        scope = pulumi.Output.all(
            partition=partition, region=region, account_id=account,
            data_bucket=self.data.bucket.bucket, artifacts_bucket=self.artifacts.bucket.bucket,
            image_uri=self.image_uri,
        ).apply(lambda v: policies.Scope(name_prefix=prefix, kms_key_arn=kms, **v))

        self.code = {}
        for bundle_name in ("training", "inference"):
            bundle = bundles.build(bundle_name, bundles.ROOT / bundle_name)
            # A code change is a new key; the earlier object is kept (retain_on_delete) because
            # executions started before the deploy still run with it. `pulumi destroy` empties the bucket.
            obj = aws.s3.BucketObjectv2(
                f"{prefix}-{bundle_name}-code", bucket=self.artifacts.bucket.id, key=bundle.key,
                source=pulumi.FileAsset(str(bundle.path)), content_type="application/gzip",
                server_side_encryption="aws:kms" if kms else "AES256", kms_key_id=kms,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
            self.code[bundle_name] = (bundle, obj)
        training_bundle, inference_bundle = self.code["training"][0], self.code["inference"][0]

        self.training_role, self.training_policy = _role(
            f"{prefix}-training", "sagestep training jobs: read train/validation and code, write models",
            scope.apply(lambda s: json.dumps(policies.training_trust(s))),
            scope.apply(lambda s: json.dumps(policies.training_policy(
                s, f"{bundles.key_prefix('training')}*", settings.pipeline.use_spot_training))), self)
        self.model_role, self.model_policy = _role(
            f"{prefix}-model", "sagestep models and batch transform: read model and test features, write predictions",
            scope.apply(lambda s: json.dumps(policies.model_trust(s))),
            scope.apply(lambda s: json.dumps(policies.model_policy(s, f"{bundles.key_prefix('inference')}*"))), self)

        self.preprocess = PreprocessFunction(f"{prefix}-preprocess", PreprocessFunctionArgs(
            function_name=f"{prefix}-preprocess",
            scope=scope,
            dataset_buckets=settings.dataset_buckets,
            memory_mb=settings.preprocess_memory_mb,
            timeout_seconds=settings.preprocess_timeout_seconds,
            log_retention_days=settings.log_retention_days,
            environment={
                "DATA_BUCKET": self.data.bucket.bucket,
                "JOB_NAME_PREFIX": prefix,
                "HYPERPARAMETERS": json.dumps(settings.hyperparameters, sort_keys=True),
            }), opts=child)

        state_machine_name = f"{prefix}-pipeline"
        state_machine_arn = pulumi.Output.format(
            "arn:{0}:states:{1}:{2}:stateMachine:{3}", partition, region, account, state_machine_name)
        refs = pulumi.Output.all(
            partition=partition, region=region, account_id=account,
            function_arn=self.preprocess.function.arn,
            training_role_arn=self.training_role.arn, model_role_arn=self.model_role.arn,
            data_bucket=self.data.bucket.bucket, artifacts_bucket=self.artifacts.bucket.bucket,
            training_image=self.image_uri,
            training_code_uri=pulumi.Output.format("s3://{0}/{1}", self.artifacts.bucket.bucket, training_bundle.key),
            inference_code_uri=pulumi.Output.format("s3://{0}/{1}", self.artifacts.bucket.bucket, inference_bundle.key),
        ).apply(lambda v: statemachine.Refs(name_prefix=prefix, stack=settings.stack, **v))

        self.state_machine_role, self.state_machine_policy = _role(
            f"{prefix}-states", "sagestep state machine: invoke the preprocess Lambda, run SageMaker jobs",
            pulumi.Output.all(scope, state_machine_arn).apply(
                lambda a: json.dumps(policies.state_machine_trust(a[0], a[1]))),
            refs.apply(lambda r: json.dumps(statemachine.role_policy(r))), self)

        self.log_group = aws.cloudwatch.LogGroup(
            f"{prefix}-states-logs", name=f"/aws/vendedlogs/states/{state_machine_name}",
            retention_in_days=settings.log_retention_days, opts=child)
        self.definition = refs.apply(lambda r: json.dumps(
            statemachine.build_definition(r, settings.pipeline), indent=2))
        self.state_machine = aws.sfn.StateMachine(
            state_machine_name,
            name=state_machine_name,
            type="STANDARD",
            role_arn=self.state_machine_role.arn,
            definition=self.definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ERROR", include_execution_data=True,
                log_destination=self.log_group.arn.apply(lambda arn: f"{arn}:*")),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            tags={"sagestep:stack": settings.stack},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.state_machine_policy]))

        self.outputs = {
            "stateMachineArn": self.state_machine.arn,
            "dataBucket": self.data.bucket.bucket,
            "artifactsBucket": self.artifacts.bucket.bucket,
            "preprocessFunction": self.preprocess.function.name,
            "trainingImage": self.image_uri,
            "stateMachineConsoleUrl": pulumi.Output.all(region, self.state_machine.arn).apply(
                lambda a: console_url(a[0], f"/statemachines/view/{a[1]}", "states")),
            "trainingJobsConsoleUrl": region.apply(lambda r: console_url(r, "/jobs", "sagemaker")),
            "startExecutionCommand": pulumi.Output.all(self.state_machine.arn, self.data.bucket.bucket).apply(
                lambda a: "aws stepfunctions start-execution --state-machine-arn " + a[0] + " --input "
                + "'" + json.dumps({"datasetUri": f"s3://{a[1]}/{layout.DATASETS_PREFIX}data.csv"}) + "'"),
        }
        self.register_outputs(self.outputs)
