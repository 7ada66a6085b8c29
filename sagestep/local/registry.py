"""The model registry as AWS keeps it, where moto differs in a way the user sees (reference/tuning-registry.md §4).

moto's UpdateModelPackage sets ModelApprovalStatus, ApprovalDescription and CustomerMetadataProperties to
what the request sends, None for a field left out: `sagestep models approve` would wipe the version's
metadata. AWS changes only what is sent: "CustomerMetadataProperties: The metadata properties associated
with the model package versions" to add or update, and CustomerMetadataPropertiesToRemove to remove
(SageMaker API reference, UpdateModelPackage).
"""
from __future__ import annotations

import json
from typing import Callable

from moto.sagemaker.exceptions import ValidationError

from .moto_adapter import sagemaker_jobs

Answer = tuple[int, dict, str]


def keep_what_is_not_sent(region: str) -> Callable[[str, str, dict], Answer | None]:
    """A request check (moto_adapter.intercept_requests) that answers UpdateModelPackage itself, with the
    fields the request leaves out kept as they are; an unknown package is left to moto's own error."""
    def check(service: str, operation: str, params: dict) -> Answer | None:
        if (service, operation) != ("sagemaker", "UpdateModelPackage"):
            return None
        backend = sagemaker_jobs(region)
        try:
            package = backend.describe_model_package(params.get("ModelPackageArn", ""))
        except ValidationError:
            return None
        properties = {**(package.customer_metadata_properties or {}), **params.get("CustomerMetadataProperties", {})}
        for key in params.get("CustomerMetadataPropertiesToRemove", []):
            properties.pop(key, None)
        arn = backend.update_model_package(
            model_package_arn=params["ModelPackageArn"],
            model_approval_status=params.get("ModelApprovalStatus", package.model_approval_status),
            approval_description=params.get("ApprovalDescription", package.approval_description),
            customer_metadata_properties=properties or None,
            customer_metadata_properties_to_remove=[],
            additional_inference_specifications_to_add=params.get("AdditionalInferenceSpecificationsToAdd"))
        return 200, {"Content-Type": "application/x-amz-json-1.1"}, json.dumps({"ModelPackageArn": arn})
    return check
