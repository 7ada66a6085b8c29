"""The whole stack: buckets, code bundles, the steps' job roles, the preprocess Lambda, the state machine."""
from __future__ import annotations

import json
import shlex
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

import statemachine
from preprocess import layout
from statemachine import framework
from statemachine.console import console_url

from . import bundles, policies
from .function import PreprocessFunction, PreprocessFunctionArgs
from .image import image_uri
from .notifications import Notifications, NotificationsArgs
from .settings import Settings
from .storage import ExpiringPrefix, SecureBucket, SecureBucketArgs

CODE_BUNDLES = ("training", "inference")


@dataclass
class PipelineArgs:
    settings: Settings


def start_execution_command(state_machine_arn: str, dataset_uri: str) -> str:
    """The AWS CLI line that starts a run, quoted for a POSIX shell."""
    return shlex.join(["aws", "stepfunctions", "start-execution", "--state-machine-arn", state_machine_arn,
                       "--input", json.dumps({"datasetUri": dataset_uri})])


class Pipeline(pulumi.ComponentResource):
    """Outputs (what `pulumi stack output` shows) are typed attributes, registered once."""
    state_machine_arn: pulumi.Output[str]
    data_bucket: pulumi.Output[str]
    artifacts_bucket: pulumi.Output[str]
    preprocess_function: pulumi.Output[str]
    training_image: pulumi.Output[str]

    def __init__(self, name: str, args: PipelineArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sagestep:index:Pipeline", name, None, opts)
        self.settings = settings = args.settings
        self.prefix = settings.name_prefix
        self.region = aws.get_region_output().region
        partition = aws.get_partition_output().partition
        account = aws.get_caller_identity_output().account_id
        self.training_image = self.region.apply(lambda r: image_uri(settings.xgboost_version, r, "training"))
        serving_image = self.region.apply(lambda r: image_uri(settings.xgboost_version, r, "serving"))

        kms = settings.pipeline.kms_key_arn
        self.data = SecureBucket(f"{self.prefix}-data", SecureBucketArgs(
            kms_key_arn=kms, expiring=[ExpiringPrefix(layout.RUNS_PREFIX, settings.run_data_expiration_days)]),
            opts=self._child())
        retention = settings.model_retention_days
        self.artifacts = SecureBucket(f"{self.prefix}-artifacts", SecureBucketArgs(
            kms_key_arn=kms, force_destroy=True,
            expiring=[ExpiringPrefix(layout.MODELS_PREFIX, retention)] if retention else []), opts=self._child())
        self.data_bucket = self.data.bucket.bucket
        self.artifacts_bucket = self.artifacts.bucket.bucket
        code_uris = self._code_bundles()
        self.model_group = self._model_group() if settings.pipeline.register_models else None

        refs = pulumi.Output.all(
            partition=partition, region=self.region, account_id=account,
            data_bucket=self.data_bucket, artifacts_bucket=self.artifacts_bucket,
            training_image=self.training_image, serving_image=serving_image,
            training_code_uri=code_uris["training"], inference_code_uri=code_uris["inference"],
            **({"model_package_group": self.model_group.model_package_group_name} if self.model_group else {}),
        ).apply(lambda v: statemachine.Refs(name_prefix=self.prefix, stack=settings.stack, **v))
        self.job_roles = self._job_roles(refs)
        self.preprocess = PreprocessFunction(f"{self.prefix}-preprocess", PreprocessFunctionArgs(
            function_name=f"{self.prefix}-preprocess",
            refs=refs,
            dataset_buckets=settings.dataset_buckets,
            kms_key_arn=kms,
            memory_mb=settings.preprocess_memory_mb,
            timeout_seconds=settings.preprocess_timeout_seconds,
            log_retention_days=settings.log_retention_days,
            environment={
                "DATA_BUCKET": self.data_bucket,
                "JOB_NAME_PREFIX": self.prefix,
                "HYPERPARAMETERS": json.dumps(settings.hyperparameters, sort_keys=True),
                "OBJECTIVES": json.dumps(framework.OBJECTIVES, sort_keys=True),
                "QUALITY_GATE": json.dumps(framework.quality_gate(settings.quality_metric, settings.quality_threshold)),
                # The split writes one train object per training host and one test object per transform instance.
                "TRAINING_HOSTS": str(settings.pipeline.training_instance_count),
                "TRANSFORM_INSTANCES": str(settings.pipeline.transform_instance_count),
                # sagestep:tuning, when set: an execution's tuning is checked over it, and the run's resolved.
                **({"TUNING": json.dumps(settings.pipeline.tuning, sort_keys=True)} if settings.pipeline.tuning else {}),
            }), opts=self._child())
        self.preprocess_function = self.preprocess.function.name
        role_arns = pulumi.Output.all(**{key: role.arn for key, (role, _) in self.job_roles.items()})
        complete = pulumi.Output.all(refs, self.preprocess.function.arn, role_arns).apply(
            lambda a: a[0].with_arns(function_arn=a[1], role_arns=a[2]))
        self.state_machine = self._state_machine(complete, partition, account)
        self.state_machine_arn = self.state_machine.arn
        self.notifications = Notifications(f"{self.prefix}-notify", NotificationsArgs(
            stack=settings.stack, region=self.region, state_machine_arn=self.state_machine_arn,
            emails=settings.notify_emails, statuses=settings.notify_on, kms_key_arn=kms),
            opts=self._child()) if settings.notify_emails else None
        self.outputs = self._outputs()
        self.register_outputs(self.outputs)

    def _child(self) -> pulumi.ResourceOptions:
        return pulumi.ResourceOptions(parent=self)

    def _code_bundles(self) -> dict[str, pulumi.Output[str]]:
        """Each bundle under its content hash. A code change is a new key; the earlier object is kept
        (retain_on_delete), because executions started before the deploy still run with it; `pulumi
        destroy` empties the bucket."""
        kms = self.settings.pipeline.kms_key_arn
        uris = {}
        for name in CODE_BUNDLES:
            bundle = bundles.build(name, bundles.ROOT / name)
            aws.s3.BucketObjectv2(
                f"{self.prefix}-{name}-code", bucket=self.artifacts.bucket.id, key=bundle.key,
                source=pulumi.FileAsset(str(bundle.path)), content_type="application/gzip",
                server_side_encryption="aws:kms" if kms else "AES256", kms_key_id=kms,
                opts=pulumi.ResourceOptions(parent=self, retain_on_delete=True))
            uris[name] = pulumi.Output.format("s3://{0}/{1}", self.artifacts_bucket, bundle.key)
        return uris

    def _model_group(self) -> aws.sagemaker.ModelPackageGroup:
        """The model registry's group (registerModels): each run's Register step adds a version to it."""
        name = statemachine.register.group_name(self.prefix)
        return aws.sagemaker.ModelPackageGroup(
            name, model_package_group_name=name,
            model_package_group_description=f"sagestep stack {self.settings.stack}: one version per evaluated run",
            tags={"sagestep:stack": self.settings.stack}, opts=self._child())

    def _role(self, name: str, description: str, trust: pulumi.Input[str],
              policy: pulumi.Input[str]) -> tuple[aws.iam.Role, aws.iam.RolePolicy]:
        role = aws.iam.Role(name, description=description, assume_role_policy=trust, opts=self._child())
        return role, aws.iam.RolePolicy(f"{name}-policy", role=role.id, policy=policy, opts=self._child())

    def _job_roles(self, refs: pulumi.Output) -> dict[str, tuple[aws.iam.Role, aws.iam.RolePolicy]]:
        """One role per JobRole of the pipeline's steps, with the trust and policy the step writes."""
        pipeline = self.settings.pipeline
        return {job.key: self._role(
            f"{self.prefix}-{job.key}", job.description,
            refs.apply(lambda r, job=job: json.dumps(job.trust(r))),
            refs.apply(lambda r, job=job: json.dumps(job.policy(r, pipeline))))
            for job in statemachine.job_roles()}

    def _state_machine(self, refs: pulumi.Output, partition, account) -> aws.sfn.StateMachine:
        name = statemachine.refs.state_machine_name(self.prefix)
        kms = self.settings.pipeline.kms_key_arn
        arn = pulumi.Output.format("arn:{0}:states:{1}:{2}:stateMachine:{3}", partition, self.region, account, name)
        role, policy = self._role(
            f"{self.prefix}-states", "sagestep state machine: invoke the preprocess Lambda, run SageMaker jobs",
            pulumi.Output.all(refs, arn).apply(lambda a: json.dumps(policies.state_machine_trust(a[0], a[1]))),
            refs.apply(lambda r: json.dumps(statemachine.role_policy(r, kms_key_arn=kms, settings=self.settings.pipeline))))
        log_group = aws.cloudwatch.LogGroup(
            f"{self.prefix}-states-logs", name=f"/aws/vendedlogs/states/{name}",
            retention_in_days=self.settings.log_retention_days, opts=self._child())
        self.definition = refs.apply(lambda r: json.dumps(
            statemachine.build_definition(r, self.settings.pipeline), indent=2))
        return aws.sfn.StateMachine(
            name,
            name=name,
            type="STANDARD",
            role_arn=role.arn,
            definition=self.definition,
            logging_configuration=aws.sfn.StateMachineLoggingConfigurationArgs(
                level="ERROR", include_execution_data=True,
                log_destination=log_group.arn.apply(lambda log_arn: f"{log_arn}:*")),
            tracing_configuration=aws.sfn.StateMachineTracingConfigurationArgs(enabled=True),
            tags={"sagestep:stack": self.settings.stack},
            opts=pulumi.ResourceOptions(parent=self, depends_on=[policy]))

    def _outputs(self) -> dict[str, pulumi.Output[str]]:
        return {
            "stateMachineArn": self.state_machine_arn,
            "dataBucket": self.data_bucket,
            "artifactsBucket": self.artifacts_bucket,
            "preprocessFunction": self.preprocess_function,
            "trainingImage": self.training_image,
            "stateMachineConsoleUrl": pulumi.Output.all(self.region, self.state_machine_arn).apply(
                lambda a: console_url(a[0], "states", f"/statemachines/view/{a[1]}")),
            "trainingJobsConsoleUrl": self.region.apply(lambda r: console_url(r, "sagemaker", "/jobs")),
            "startExecutionCommand": pulumi.Output.all(self.state_machine_arn, self.data_bucket).apply(
                lambda a: start_execution_command(a[0], f"s3://{a[1]}/{layout.DATASETS_PREFIX}data.csv")),
            **({"notificationTopicArn": self.notifications.topic.arn} if self.notifications else {}),
            **({"modelPackageGroup": self.model_group.model_package_group_name,
                "modelPackageGroupArn": self.model_group.arn} if self.model_group else {}),
        }
