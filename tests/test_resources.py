"""Every resource's security and wiring settings, as `pulumi up` would send them."""
import io
import json
import tarfile

import pytest

from infra import bundles
from sagestep.synth import synthesize
from statemachine import framework

KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"


@pytest.mark.parametrize("bucket", ["sagestep-dev-data", "sagestep-dev-artifacts"])
def test_buckets_are_private_encrypted_owner_enforced_and_tls_only(stack, bucket):
    pab = stack.one("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", f"{bucket}-public-access")["inputs"]
    assert all(pab[k] is True for k in ("blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"))
    own = stack.one("aws:s3/bucketOwnershipControls:BucketOwnershipControls", f"{bucket}-ownership")["inputs"]
    assert own["rule"] == {"objectOwnership": "BucketOwnerEnforced"}
    sse = stack.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                    f"{bucket}-encryption")["inputs"]
    assert sse["rules"][0]["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "AES256"}
    policy = json.loads(stack.one("aws:s3/bucketPolicy:BucketPolicy", f"{bucket}-tls-only")["inputs"]["policy"])
    [deny] = policy["Statement"]
    name = stack.one("aws:s3/bucket:Bucket", bucket)
    arn = f"arn:aws:s3:::{stack.outputs['dataBucket' if bucket.endswith('data') else 'artifactsBucket']}"
    assert deny == {"Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                    "Resource": [arn, f"{arn}/*"], "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    assert name["inputs"]["forceDestroy"] is bucket.endswith("artifacts")
    rules = stack.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                      f"{bucket}-lifecycle")["inputs"]["rules"]
    abort = next(r for r in rules if r["id"] == "abort-incomplete-multipart-uploads")
    assert abort["abortIncompleteMultipartUpload"] == {"daysAfterInitiation": 1} and abort["status"] == "Enabled"


def test_run_data_expires_after_the_configured_days():
    stack = synthesize("exp", {"runDataExpirationDays": 7})
    rules = stack.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                      "sagestep-exp-data-lifecycle")["inputs"]["rules"]
    expire = next(r for r in rules if r["id"] == "expire-runs")
    assert expire["filter"] == {"prefix": "runs/"} and expire["expiration"] == {"days": 7}


@pytest.mark.parametrize("days, expected", [(None, []), ("0", []), ("45", [{"prefix": "models/", "days": 45}])])
def test_model_artifacts_expire_only_when_a_retention_is_set(days, expected):
    stack = synthesize("models", {} if days is None else {"modelRetentionDays": days})
    rules = stack.one("aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration",
                      "sagestep-models-artifacts-lifecycle")["inputs"]["rules"]
    assert [{"prefix": r["filter"]["prefix"], "days": r["expiration"]["days"]}
            for r in rules if r["id"].startswith("expire-")] == expected


def test_kms_key_switches_buckets_and_jobs_to_sse_kms():
    stack = synthesize("kms", {"kmsKeyArn": KEY})
    for bucket in ("data", "artifacts"):
        rule = stack.one("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
                         f"sagestep-kms-{bucket}-encryption")["inputs"]["rules"][0]
        assert rule["applyServerSideEncryptionByDefault"] == {"sseAlgorithm": "aws:kms", "kmsMasterKeyId": KEY}
        assert rule["bucketKeyEnabled"] is True
    d = json.loads(stack.definition)
    assert d["States"]["Train"]["Parameters"]["OutputDataConfig"]["KmsKeyId"] == KEY
    assert d["States"]["BatchPredict"]["Parameters"]["TransformOutput"]["KmsKeyId"] == KEY


def test_preprocess_lambda(stack):
    fn = stack.one("aws:lambda/function:Function")["inputs"]
    assert (fn["runtime"], fn["architectures"], fn["handler"]) == ("python3.13", ["arm64"], "preprocess.handler.handler")
    assert (fn["memorySize"], fn["timeout"]) == (1769, 900)
    env = fn["environment"]["variables"]
    # The framework's objectives reach the Lambda through its environment (cloud code imports nothing else).
    assert env == {"DATA_BUCKET": stack.outputs["dataBucket"], "JOB_NAME_PREFIX": "sagestep-dev", "HYPERPARAMETERS": "{}",
                   "OBJECTIVES": json.dumps(framework.OBJECTIVES, sort_keys=True),
                   "QUALITY_GATE": json.dumps(framework.quality_gate("", None)),
                   "TRAINING_HOSTS": "1", "TRANSFORM_INSTANCES": "1"}
    assert set(fn["code"]["archive"]) >= {"preprocess/handler.py", "preprocess/plan.py", "preprocess/layout.py",
                                          "preprocess/naming.py", "preprocess/errors.py", "preprocess/__init__.py"}
    assert fn["loggingConfig"] == {"logFormat": "JSON", "logGroup": "/aws/lambda/sagestep-dev-preprocess"}
    logs = stack.one("aws:cloudwatch/logGroup:LogGroup", "sagestep-dev-preprocess-logs")["inputs"]
    assert logs == {"name": "/aws/lambda/sagestep-dev-preprocess", "retentionInDays": 30}


def test_lambda_memory_timeout_and_hyperparameters_follow_config():
    stack = synthesize("lam", {"preprocessMemoryMb": 3008, "preprocessTimeoutSeconds": 300,
                               "hyperparameters": {"max_depth": 8}, "logRetentionDays": 7})
    fn = stack.one("aws:lambda/function:Function")["inputs"]
    assert (fn["memorySize"], fn["timeout"]) == (3008, 300)
    assert json.loads(fn["environment"]["variables"]["HYPERPARAMETERS"]) == {"max_depth": "8"}
    assert {lg["inputs"]["retentionInDays"] for lg in stack.of_type("aws:cloudwatch/logGroup:LogGroup")} == {7}


def test_state_machine_is_standard_logged_and_traced(stack):
    sm = stack.one("aws:sfn/stateMachine:StateMachine")["inputs"]
    assert sm["type"] == "STANDARD" and sm["name"] == "sagestep-dev-pipeline"
    assert sm["tracingConfiguration"] == {"enabled": True}
    log = sm["loggingConfiguration"]
    assert log["logDestination"] == ("arn:aws:logs:us-east-1:123456789012:log-group:"
                                     "/aws/vendedlogs/states/sagestep-dev-pipeline:*")
    assert log["level"] == "ERROR" and log["includeExecutionData"] is True
    assert sm["roleArn"].split("/")[-1].startswith("sagestep-dev-states-")


def test_code_bundles_are_deterministic_and_content_addressed(tmp_path, stack):
    first = bundles.build("training", bundles.ROOT / "training", tmp_path / "a")
    second = bundles.build("training", bundles.ROOT / "training", tmp_path / "b")
    assert first.path.read_bytes() == second.path.read_bytes() and first.key == second.key
    assert first.key == f"code/training-{first.sha256[:16]}.tar.gz"
    with tarfile.open(fileobj=io.BytesIO(first.path.read_bytes())) as archive:
        members = archive.getmembers()
    assert "train.py" in [m.name for m in members]
    assert all(m.mtime == 0 and m.uid == 0 and "__pycache__" not in m.name for m in members)
    uploaded = stack.one("aws:s3/bucketObjectv2:BucketObjectv2", "sagestep-dev-training-code")["inputs"]
    assert uploaded["key"] == first.key and uploaded["serverSideEncryption"] == "AES256"
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "train.py").write_text("print('changed')\n")
    assert bundles.build("training", tmp_path / "src", tmp_path / "c").key != first.key


def test_outputs(stack):
    out = stack.outputs
    assert out["stateMachineArn"] == "arn:aws:states:us-east-1:123456789012:stateMachine:sagestep-dev-pipeline"
    assert out["trainingImage"] == "683313688378.dkr.ecr.us-east-1.amazonaws.com/sagemaker-xgboost:3.0-5"
    assert out["stateMachineConsoleUrl"].endswith(f"#/statemachines/view/{out['stateMachineArn']}")
    assert out["trainingJobsConsoleUrl"] == "https://us-east-1.console.aws.amazon.com/sagemaker/home?region=us-east-1#/jobs"
    command = out["startExecutionCommand"]
    assert command.startswith(f"aws stepfunctions start-execution --state-machine-arn {out['stateMachineArn']} --input '")
    assert json.loads(command.split("--input ", 1)[1].strip("'")) == {
        "datasetUri": f"s3://{out['dataBucket']}/datasets/data.csv"}


def test_image_follows_region():
    stack = synthesize("eu", {"aws:region": "eu-west-1"})
    assert stack.outputs["trainingImage"] == "141502667606.dkr.ecr.eu-west-1.amazonaws.com/sagemaker-xgboost:3.0-5"
