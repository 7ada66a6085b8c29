"""The stack's model package group as `sagestep models` and `sagestep prune` read it (AWS or `local serve`)."""
from __future__ import annotations

from botocore.exceptions import ClientError


def packages(sagemaker, group: str) -> list[dict] | None:
    """Every version of the group, described, newest first; None when the group does not exist
    (registerModels is off): SageMaker answers ValidationException "ModelPackageGroup … does not exist"."""
    try:
        sagemaker.describe_model_package_group(ModelPackageGroupName=group)
    except ClientError as error:
        if error.response["Error"]["Code"] == "ValidationException":
            return None
        raise
    summaries = [summary for page in sagemaker.get_paginator("list_model_packages").paginate(
        ModelPackageGroupName=group, SortBy="CreationTime", SortOrder="Descending")
        for summary in page["ModelPackageSummaryList"]]
    described = [sagemaker.describe_model_package(ModelPackageName=s["ModelPackageArn"]) for s in summaries]
    return sorted(described, key=lambda package: package["ModelPackageVersion"], reverse=True)


def artifacts(package: dict) -> list[str]:
    """The model artifacts (ModelDataUrl) the version's containers serve."""
    return [container["ModelDataUrl"] for container in package["InferenceSpecification"]["Containers"]
            if container.get("ModelDataUrl")]
