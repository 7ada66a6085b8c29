"""What the stack looks up in AWS's SDKs, kept as one JSON file beside this module (catalogue.json).

`pulumi up` needs three facts that live in large SDKs: the XGBoost image URI per region (the SageMaker
Python SDK's offline catalogue), the instance types SageMaker accepts (botocore's service model) and the
ECR repositories of SageMaker's built-in algorithms (the same catalogue; the local engine's AWS rules use
them). Reading them from a 50 KB file keeps the deploy closure to pulumi, pulumi-aws and PyYAML and costs
no SDK import at run time. `python -m infra.catalogue` regenerates it from the SDKs (the `test` extra holds
them) and tests/test_catalogue.py fails when the file and the SDKs disagree.
"""
from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path
from typing import Any

from statemachine import framework

FILE = Path(__file__).resolve().parent / "catalogue.json"
# Container versions whose XGBoost release the training and inference code is written and tested for
# (container "3.0-5" ships xgboost 3.0.5; the lock pins the same release).
SUPPORTED_XGBOOST = {"3.0-5": "3.0.5"}
INSTANCE_SHAPES = ("TrainingInstanceType", "TransformInstanceType")
# SageMaker's built-in algorithms, as the SDK's image catalogue names them (SageMaker docs,
# "Built-in algorithms and pretrained models"); their ECR repositories are read from that catalogue.
BUILT_IN_ALGORITHMS = (
    "blazingtext", "factorization-machines", "forecasting-deepar", "image-classification", "ipinsights", "kmeans",
    "knn", "lda", "linear-learner", "ntm", "object-detection", "object2vec", "pca", "randomcutforest",
    "semantic-segmentation", "seq2seq", "xgboost",
)


@lru_cache(maxsize=1)
def catalogue() -> dict[str, Any]:
    return json.loads(FILE.read_text())


def known_versions() -> list[str]:
    """Every XGBoost image version the SDK's catalogue lists (for an error that names them)."""
    return catalogue()["knownVersions"]


def image_regions(version: str, use: str) -> dict[str, str]:
    """Region -> image URI for "training" or "serving"; empty for a version this file does not hold."""
    return catalogue()["images"].get(version, {}).get(use, {})


def instance_types(shape: str) -> frozenset[str]:
    """The instance types botocore's SageMaker model accepts for a shape (e.g. TrainingInstanceType)."""
    return frozenset(catalogue()["instanceTypes"][shape])


def algorithm_repositories() -> frozenset[str]:
    return frozenset(catalogue()["algorithmRepositories"])


def build() -> dict[str, Any]:
    """The catalogue as the installed SDKs give it (sagemaker-core and botocore: the `test` extra)."""
    import botocore.session
    from sagemaker.core import image_uris

    config = image_uris.config_for_framework(framework.FRAMEWORK)
    images: dict[str, dict[str, dict[str, str]]] = {}
    for version in SUPPORTED_XGBOOST:
        for use, scope in framework.IMAGE_SCOPES.items():
            regions = config[scope]["versions"].get(version, {}).get("registries", {})
            images.setdefault(version, {})[use] = {
                region: image_uris.retrieve(framework.FRAMEWORK, region=region, version=version, image_scope=scope)
                for region in sorted(regions)}
    model = botocore.session.get_session().get_service_model("sagemaker")
    return {
        "source": "sagemaker-core's image_uri_config and botocore's SageMaker model; python -m infra.catalogue",
        "knownVersions": list(config["training"]["versions"]),
        "images": images,
        "instanceTypes": {shape: sorted(model.shape_for(shape).enum) for shape in INSTANCE_SHAPES},
        "algorithmRepositories": sorted(_repositories(image_uris)),
    }


def _repositories(image_uris) -> set[str]:
    found: set[str] = set()

    def collect(node: Any) -> None:
        if isinstance(node, dict):
            found.update(v for k, v in node.items() if k == "repository" and isinstance(v, str))
            nodes = node.values()
        else:
            nodes = node if isinstance(node, list) else []
        for child in nodes:
            collect(child)

    for name in BUILT_IN_ALGORITHMS:
        collect(image_uris.config_for_framework(name))
    return found


def render(data: dict[str, Any]) -> str:
    return json.dumps(data, indent=1, sort_keys=True) + "\n"


if __name__ == "__main__":
    FILE.write_text(render(build()))
    print(f"wrote {FILE}")
