"""infra/catalogue.json is what the SDKs say: the image URIs the SageMaker Python SDK resolves, the instance
types botocore accepts, the built-in algorithms' repositories (regenerate: python -m infra.catalogue)."""
from infra import catalogue


def test_the_catalogue_file_is_what_the_installed_sdks_give():
    assert catalogue.catalogue() == catalogue.build(), "stale: run python -m infra.catalogue"


def test_the_stack_reads_images_and_instance_types_from_it():
    from infra.image import image_uri
    assert image_uri("3.0-5", "eu-west-1", "training") == (
        "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5")
    assert image_uri("3.0-5", "cn-north-1", "serving").endswith(".amazonaws.com.cn/sagemaker-xgboost:3.0-5")
    assert "ml.g5.xlarge" in catalogue.instance_types("TrainingInstanceType")
    assert "sagemaker-xgboost" in catalogue.algorithm_repositories()
