"""The framework's images, resolved by the SageMaker Python SDK's offline catalogue (no network)."""
from __future__ import annotations

from statemachine import framework

from .settings import ConfigError


def image_uri(version: str, region: str, use: str) -> str:
    """The image for "training" or "serving" (framework.IMAGE_SCOPES says which catalogue scope)."""
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve(framework.FRAMEWORK, region=region, version=version,
                                   image_scope=framework.IMAGE_SCOPES[use])
    except ValueError as error:
        raise ConfigError("xgboostVersion", version, f"a version published in region {region}: {error}") from None
