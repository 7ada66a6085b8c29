"""The framework's images, from the stack's catalogue (the SageMaker Python SDK's, see catalogue.py)."""
from __future__ import annotations

from statemachine import framework

from .catalogue import image_regions
from .settings import ConfigError


def image_uri(version: str, region: str, use: str) -> str:
    """The image for "training" or "serving"; a region where SageMaker does not publish it is the region's
    error, named as such."""
    regions = image_regions(version, use)
    if region not in regions:
        raise ConfigError("region", region, f"an AWS region where SageMaker publishes the {framework.FRAMEWORK} "
                          f"{version} image ({len(regions)} regions, e.g. us-east-1, eu-west-1, ap-southeast-2)",
                          namespace="aws")
    return regions[region]
