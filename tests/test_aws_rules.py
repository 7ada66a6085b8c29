"""AWS's server-side rules (sagestep/local/aws_rules.py): moto answers a breach as AWS does."""
import json
import time

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws
from moto.server import ThreadedMotoServer

from sagestep.local import aws_rules
from sagestep.local.engine import LocalEngine

ROLE = "arn:aws:iam::123456789012:role/sagestep-dev-training"
KMS_KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TAG_PATTERN = r"([\p{L}\p{Z}\p{N}_.:/=+\-@]*)"
NAME_PATTERN = "[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}"


@pytest.fixture(scope="module")
def image(stack) -> str:
    """The image the stack trains with, as synthesized: the first-party sagemaker-xgboost."""
    return stack.outputs["trainingImage"]


@pytest.fixture(scope="class")
def aws():
    """boto3 clients against moto under mock_aws with the rules on (a client costs 0.2 s: one each)."""
    with mock_aws(), aws_rules.enforced():
        clients = {name: boto3.client(name, region_name="us-east-1") for name in ("sagemaker", "stepfunctions")}
        yield clients.__getitem__


def training_job(image: str, **members) -> dict:
    request = {"TrainingJobName": "sagestep-train-1", "RoleArn": ROLE,
               "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"},
               "OutputDataConfig": {"S3OutputPath": "s3://sagestep-artifacts/models/"},
               "ResourceConfig": {"InstanceType": "ml.m5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30},
               "StoppingCondition": {"MaxRuntimeInSeconds": 3600},
               "Tags": [{"Key": "sagestep:stack", "Value": "dev"}]}
    return {**request, **members}


def transform_job(**members) -> dict:
    request = {"TransformJobName": "sagestep-predict-1", "ModelName": "sagestep-model-1",
               "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix",
                                                                  "S3Uri": "s3://sagestep-data/test/"}}},
               "TransformOutput": {"S3OutputPath": "s3://sagestep-artifacts/predictions/"},
               "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": 1}}
    return {**request, **members}


def refused(call, **request) -> str:
    """The message of AWS's answer: HTTP 400, ValidationException."""
    with pytest.raises(ClientError) as caught:
        call(**request)
    response = caught.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    assert response["Error"]["Code"] == "ValidationException"
    return response["Error"]["Message"]


def test_catalogue_is_well_formed():
    names = [rule.name for rule in aws_rules.CATALOGUE]
    assert len(names) == len(set(names))
    for rule in aws_rules.CATALOGUE:
        assert rule.service in ("sagemaker", "stepfunctions"), rule.name
        assert "https://" in rule.source or "/" in rule.source.split()[0], rule.name
        assert rule.code == "ValidationException" and rule.message and rule.wording, rule.name
        assert rule.wording.startswith(("Verified", "Not verified")), rule.name


class TestAnsweredAsAws:
    """Each catalogue entry, through boto3 against moto under mock_aws."""

    def test_a_valid_request_passes_untouched(self, aws, image):
        sagemaker = aws("sagemaker")
        arn = sagemaker.create_training_job(**training_job(image))["TrainingJobArn"]
        assert arn.endswith(":training-job/sagestep-train-1")
        assert sagemaker.describe_training_job(TrainingJobName="sagestep-train-1")["RoleArn"] == ROLE

    def test_name_pattern(self, aws, image):
        message = refused(aws("sagemaker").create_training_job, **training_job(image, TrainingJobName="sagestep_train"))
        assert message == ("1 validation error detected: Value 'sagestep_train' at 'trainingJobName' failed to satisfy "
                           f"constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}")

    def test_max_length_and_pattern_together(self, aws, image):
        name = "a" * 64
        message = refused(aws("sagemaker").create_training_job, **training_job(image, TrainingJobName=name))
        assert message == (
            f"2 validation errors detected: Value '{name}' at 'trainingJobName' failed to satisfy constraint: "
            f"Member must have length less than or equal to 63; Value '{name}' at 'trainingJobName' failed to satisfy "
            f"constraint: Member must satisfy regular expression pattern: {NAME_PATTERN}")

    def test_enum(self, aws, image):
        request = training_job(image, AlgorithmSpecification={"TrainingImage": image, "TrainingInputMode": "Filez"})
        assert refused(aws("sagemaker").create_training_job, **request) == (
            "1 validation error detected: Value 'Filez' at 'algorithmSpecification.trainingInputMode' failed to "
            "satisfy constraint: Member must satisfy enum value set: [Pipe, File, FastFile]")

    def test_numeric_range(self, aws, image):
        request = training_job(image, RetryStrategy={"MaximumRetryAttempts": 31})
        assert refused(aws("sagemaker").create_training_job, **request) == (
            "1 validation error detected: Value '31' at 'retryStrategy.maximumRetryAttempts' failed to satisfy "
            "constraint: Member must have value less than or equal to 30")

    def test_r6_tag_value_pattern(self, aws, image):
        tags = [{"Key": "sagestep:stack", "Value": "dev"}, {"Key": "sagestep:execution", "Value": "retrain(v2)!"}]
        assert refused(aws("sagemaker").create_training_job, **training_job(image, Tags=tags)) == (
            "1 validation error detected: Value 'retrain(v2)!' at 'tags.2.member.value' failed to satisfy constraint: "
            f"Member must satisfy regular expression pattern: {TAG_PATTERN}")

    def test_r1_metric_definitions_on_the_first_party_xgboost_image(self, aws, image):
        assert image.endswith(".amazonaws.com/sagemaker-xgboost:3.0-5")
        metrics = [{"Name": "validation:rmse", "Regex": r"validation-rmse:(\S+)"}]
        spec = {"TrainingImage": image, "TrainingInputMode": "File", "MetricDefinitions": metrics}
        sagemaker = aws("sagemaker")
        assert refused(sagemaker.create_training_job, **training_job(image, AlgorithmSpecification=spec)) == (
            "You can't override the metric definitions for Amazon SageMaker algorithms. Please retry the request "
            "without specifying metric definitions.")
        own = "123456789012.dkr.ecr.us-east-1.amazonaws.com/my-xgboost:1"
        sagemaker.create_training_job(**training_job(own, TrainingJobName="sagestep-own-image",
                                                     AlgorithmSpecification={**spec, "TrainingImage": own}))

    def test_r5_volume_kms_key_on_an_instance_with_local_storage(self, aws, image):
        sagemaker = aws("sagemaker")
        message = "You can't request a VolumeKmsKeyId when using an instance type with local storage."
        gpu = {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeSizeInGB": 30, "VolumeKmsKeyId": KMS_KEY}
        assert refused(sagemaker.create_training_job, **training_job(image, ResourceConfig=gpu)) == message
        transform = {"InstanceType": "ml.g5.xlarge", "InstanceCount": 1, "VolumeKmsKeyId": KMS_KEY}
        assert refused(sagemaker.create_transform_job, **transform_job(TransformResources=transform)) == message
        sagemaker.create_training_job(**training_job(image, TrainingJobName="sagestep-kms",
                                                     ResourceConfig={**gpu, "InstanceType": "ml.m5.xlarge"}))

    @pytest.mark.parametrize("spot, stopping, message", [
        (True, {"MaxRuntimeInSeconds": 3600},
         "Invalid MaxWaitTimeInSeconds. It is required when EnableManagedSpotTraining is set to true"),
        (True, {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 1800},
         "Invalid MaxWaitTimeInSeconds. It must be equal to or greater than MaxRuntimeInSeconds"),
        (False, {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 7200},
         "Invalid MaxWaitTimeInSeconds. It is only supported when EnableManagedSpotTraining is set to true"),
    ], ids=["spot-without-max-wait", "spot-max-wait-below-max-runtime", "max-wait-without-spot"])
    def test_spot_stopping_condition(self, aws, image, spot, stopping, message):
        request = training_job(image, EnableManagedSpotTraining=spot, StoppingCondition=stopping)
        assert refused(aws("sagemaker").create_training_job, **request) == message

    def test_spot_with_enough_max_wait_passes(self, aws, image):
        stopping = {"MaxRuntimeInSeconds": 3600, "MaxWaitTimeInSeconds": 3600}
        aws("sagemaker").create_training_job(**training_job(image, TrainingJobName="sagestep-spot",
                                                            EnableManagedSpotTraining=True, StoppingCondition=stopping))

    @pytest.mark.parametrize("limits, message", [
        ({"MaxPayloadInMB": 101}, "The value of MaxPayloadInMB cannot be greater than 100 MB."),
        ({"MaxPayloadInMB": 6, "MaxConcurrentTransforms": 20},
         "The value of (MaxConcurrentTransforms * MaxPayloadInMB) cannot exceed 100 MB."),
    ], ids=["transform-max-payload", "transform-payload-total"])
    def test_transform_payload(self, aws, limits, message):
        assert refused(aws("sagemaker").create_transform_job, **transform_job(**limits)) == message

    def test_step_functions_execution_name_longer_than_80(self, aws):
        name = "retrain-" + "x" * 73
        arn = "arn:aws:states:us-east-1:123456789012:stateMachine:sagestep-dev"
        assert refused(aws("stepfunctions").start_execution, stateMachineArn=arn, name=name) == (
            f"1 validation error detected: Value '{name}' at 'name' failed to satisfy constraint: "
            "Member must have length less than or equal to 80")


def test_sensitive_values_are_not_printed():
    """Step Functions' input is sensitive: AWS writes a bare 'Value at'."""
    assert aws_rules.refusal("stepfunctions", "StartExecution", {"stateMachineArn": "arn", "input": "x" * 262145}) == (
        "ValidationException", "1 validation error detected: Value at 'input' failed to satisfy constraint: "
                               "Member must have length less than or equal to 262144")


def test_java_patterns_run_as_aws_runs_them():
    tag = aws_rules.compiled(TAG_PATTERN)
    assert tag.fullmatch("Zürich 2 ٣") and not tag.fullmatch("a!")                 # \p{L}, \p{Z}, \p{N}
    assert not aws_rules.compiled(r"arn:[\p{Alnum}\-]+").fullmatch("arn:é")       # Java's \p{Alnum} is ASCII
    assert aws_rules.compiled(r"[\u0020-\uD7FF\uD800\uDC00-\uDBFF\uDFFF]*").fullmatch("ok 🙂")


def test_a_request_pays_only_for_its_own_check(image):
    """Models, patterns and shape descriptions load once: after the first request, a request compiles and
    loads nothing (what that costs in time is bench/aws_rules.py's to say)."""
    request = training_job(image, HyperParameters={f"p{i}": str(i) for i in range(20)},
                           InputDataConfig=[{"ChannelName": name, "DataSource": {"S3DataSource": {
                               "S3DataType": "S3Prefix", "S3Uri": f"s3://sagestep-data/{name}/"}}}
                               for name in ("train", "validation")])
    aws_rules.refusal("sagemaker", "CreateTrainingJob", request)
    caches = (aws_rules.service_model, aws_rules.compiled, aws_rules._described)
    loaded = [cache.cache_info().misses for cache in caches]
    for _ in range(20):
        assert aws_rules.refusal("sagemaker", "CreateTrainingJob", request) is None
    assert [cache.cache_info().misses for cache in caches] == loaded
    assert all(cache.cache_info().hits for cache in caches)


def test_the_rules_hold_through_threaded_moto_server(image):
    with aws_rules.enforced():
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
        server.start()
        try:
            host, port = server.get_host_and_port()
            sagemaker = boto3.client("sagemaker", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                                     aws_access_key_id="local", aws_secret_access_key="local")
            tags = [{"Key": "sagestep:execution", "Value": "retrain(v2)!"}]
            assert refused(sagemaker.create_training_job, **training_job(image, Tags=tags)).endswith(
                f"at 'tags.1.member.value' failed to satisfy constraint: Member must satisfy regular expression "
                f"pattern: {TAG_PATTERN}")
        finally:
            server.stop()


def test_the_engine_enforces_them_and_the_interpreter_reports_sagemaker_exception(stack, image):
    """LocalEngine installs the rules; a SageMaker task refused by them fails as Step Functions reports it."""
    tags = [{"Key": "sagestep:execution", "Value": "retrain(v2)!"}]
    with LocalEngine(stack) as engine:
        sfn = engine.client("stepfunctions")
        machine = sfn.create_state_machine(
            name="refused", roleArn=ROLE, definition=json.dumps({"StartAt": "Train", "States": {"Train": {
                "Type": "Task", "Resource": "arn:aws:states:::sagemaker:createTrainingJob",
                "Parameters": training_job(image, Tags=tags), "End": True}}}))["stateMachineArn"]
        arn = sfn.start_execution(stateMachineArn=machine, name="refused")["executionArn"]
        deadline = time.monotonic() + 20
        while (description := sfn.describe_execution(executionArn=arn))["status"] == "RUNNING":
            assert time.monotonic() < deadline
            time.sleep(0.05)
    assert description["status"] == "FAILED" and description["error"] == "SageMaker.AmazonSageMakerException"
    assert description["cause"] == (
        "1 validation error detected: Value 'retrain(v2)!' at 'tags.1.member.value' failed to satisfy constraint: "
        f"Member must satisfy regular expression pattern: {TAG_PATTERN} (Service: SageMaker, Status Code: 400, "
        "Error Code: ValidationException)")
