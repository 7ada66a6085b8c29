"""Register (optional, `sagestep:registerModels`): the evaluated model becomes a new version of the stack's
model package group, with its container, its evaluation and where it came from.

A request-response aws-sdk call (there is no optimized integration for CreateModelPackage). Facts, from
botocore's model and the SageMaker Developer Guide (model-registry-version.md, api-permissions-reference.md):
a versioned package names ModelPackageGroupName, not ModelPackageName; CustomerMetadataProperties values
are 1–256 characters of [\\p{L}\\p{Z}\\p{N}_.:/=+\\-@] (no JSON, so the metrics travel in the statistics file);
MetadataProperties.GeneratedBy takes any text up to 1024; ClientToken (≤36 of [a-zA-Z0-9-]) makes a
retry return the version already created; the answer is {ModelPackageArn: …:model-package/<group>/<version>}.
"""
from __future__ import annotations

from . import errors
from .console import console_url
from .create_model import container
from .iam import allow
from .naming import tags
from .refs import Refs
from .settings import PipelineSettings
from .step import Step, then

NAME = "Register"
STATISTICS_CONTENT_TYPE = "application/json"
CONTENT_TYPE = "text/csv"        # what inference/ reads and writes
# Unmodeled SageMaker errors (throttling among them) reach aws-sdk Tasks under this name
# (SFN Developer Guide, supported-services-awssdk.md: ServiceName.ErrorName; reference/tuning-registry.md §19 ⚠).
SAGEMAKER_SDK_ERROR = "SageMaker.SageMakerException"
# The SageMaker console's page of a model group. AWS documents the registry's pages only in Studio, whose
# address names a Studio domain (SMDG model-registry-view.md); this route is the one public scripts print for the
# classic console, unverified (docs/aws.md says so). `sagestep models` is the sure way to see the versions.
CONSOLE = "/model-registry/"


def group_console(region: str, group: str) -> str:
    """The model group's page in the SageMaker console (CONSOLE's route, unverified)."""
    return console_url(region, "sagemaker", f"{CONSOLE}{group}")


def group_name(name_prefix: str) -> str:
    """The stack's model package group: 1–63 of [a-zA-Z0-9-], no "--" (the prefix has none), and lowercase,
    as SageMaker writes it in ARNs."""
    return f"{name_prefix}-models"


def version_of(arn_path: str) -> str:
    """The intrinsic that reads the version from …:model-package/<group>/<version> (a number)."""
    return f"States.StringToJson(States.ArrayGetItem(States.StringSplit({arn_path}, '/'), 2))"


def group_of(refs: Refs) -> str:
    if not refs.model_package_group:
        raise ValueError("registerModels is on but the refs name no model package group: does the stack create it?")
    return refs.model_package_group


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    group = group_of(refs)
    return {
        NAME: {
            "Type": "Task",
            "Comment": "Registers the evaluated model as a new version of the stack's model package group.",
            "Resource": refs.integration("aws-sdk:sagemaker:createModelPackage"),
            "Parameters": {
                "ModelPackageGroupName": group,
                "ModelPackageDescription.$": "States.Format('Trained by {} on {}', $.training.jobName, $.datasetUri)",
                "InferenceSpecification": {
                    "Containers": [container(refs)],
                    "SupportedContentTypes": [CONTENT_TYPE],
                    "SupportedResponseMIMETypes": [CONTENT_TYPE],
                    "SupportedTransformInstanceTypes": [settings.transform_instance_type],
                },
                "ModelApprovalStatus": settings.model_approval_status,
                "ModelMetrics": {"ModelQuality": {"Statistics": {
                    "ContentType": STATISTICS_CONTENT_TYPE, "S3Uri.$": "$.evaluation.evaluationFile"}}},
                "MetadataProperties": {"GeneratedBy.$": "$$.Execution.Id"},
                # The execution tag is the execution's name in these characters (the Lambda writes it).
                "CustomerMetadataProperties": {
                    "sagestep:stack": refs.stack, "sagestep:execution.$": "$.run.executionTag",
                    "trainingJobName.$": "$.training.jobName"},
                "ClientToken.$": "States.Hash($$.Execution.Id, 'MD5')",
                "Tags": tags(refs),
            },
            "Retry": [{"ErrorEquals": [SAGEMAKER_SDK_ERROR], "IntervalSeconds": 5, "MaxAttempts": 2,
                       "BackoffRate": 2.0}],
            "Catch": errors.catch_all(NAME),
            "ResultSelector": {
                "group": group,
                "arn.$": "$.ModelPackageArn",
                "version.$": version_of("$.ModelPackageArn"),
                "status": settings.model_approval_status,
            },
            "ResultPath": "$.registered",
            **then(next_state),
        },
        **errors.fail_state(NAME),
    }


def statements(refs: Refs) -> list[dict]:
    """CreateModelPackage is checked on the new version and on its group (SMDG model-registry-version.md grants
    it on model-package/<group>/*; reference/tuning-registry.md §20 ⚠); the tags need AddTags on the version."""
    group = group_of(refs)
    return [
        allow("RegisterModelVersions", ["sagemaker:AddTags", "sagemaker:CreateModelPackage"],
              [refs.arn("sagemaker", f"model-package/{group}/*")]),
        allow("RegisterInModelGroup", ["sagemaker:CreateModelPackage"],
              [refs.arn("sagemaker", f"model-package-group/{group}")]),
    ]


def summary(states: dict[str, dict]) -> list[str]:
    parameters = states[NAME]["Parameters"]
    return [f"model registry: each evaluated model becomes a version of {parameters['ModelPackageGroupName']}, "
            f"{parameters['ModelApprovalStatus']}"]


STEP = Step(NAME, states, statements, outputs={"registered.$": "$.registered"}, summary=summary,
            when=lambda settings: settings.register_models)
