"""The framework's images, resolved by the SageMaker Python SDK's offline catalogue (no network)."""
from __future__ import annotations

from statemachine import framework

from .settings import ConfigError


def image_uri(version: str, region: str, use: str) -> str:
    """The image for "training" or "serving" (framework.IMAGE_SCOPES says which catalogue scope); a
    region where SageMaker does not publish it is the region's error, named as such."""
    from sagemaker.core import image_uris

    scope = framework.IMAGE_SCOPES[use]
    regions = image_uris.config_for_framework(framework.FRAMEWORK)[scope]["versions"].get(version, {}).get(
        "registries", {})
    if regions and region not in regions:
        raise ConfigError("region", region, f"an AWS region where SageMaker publishes the {framework.FRAMEWORK} "
                          f"{version} image ({len(regions)} regions, e.g. us-east-1, eu-west-1, ap-southeast-2)",
                          namespace="aws")
    try:
        return image_uris.retrieve(framework.FRAMEWORK, region=region, version=version,
                                   image_scope=framework.IMAGE_SCOPES[use])
    except ValueError as error:
        raise ConfigError("xgboostVersion", version, f"a version published in region {region}: {error}") from None
