"""The SageMaker XGBoost framework image, resolved by the SageMaker Python SDK (offline lookup)."""
from __future__ import annotations

from .settings import ConfigError


def xgboost_image_uri(version: str, region: str) -> str:
    from sagemaker.core import image_uris

    try:
        return image_uris.retrieve("xgboost", region=region, version=version, image_scope="training")
    except ValueError as error:
        raise ConfigError("xgboostVersion", version, f"a version published in region {region}: {error}") from None
