"""Every permission is pinned: widening or dropping any action, resource or condition fails here."""
import fnmatch
import json

import pytest

from sagestep.synth import synthesize
from tests.conftest import statements_by_sid

ACCOUNT, REGION = "123456789012", "us-east-1"
ANYWHERE = {"cloudwatch:PutMetricData", "ecr:GetAuthorizationToken", "sagemaker:ListTags",
            "logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
            "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
            "logs:PutLogEvents", "logs:PutResourcePolicy", "logs:UpdateLogDelivery",
            "xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
            "xray:PutTraceSegments"}


def names(stack):
    return stack.outputs["dataBucket"], stack.outputs["artifactsBucket"]


def policy(stack, name):
    return json.loads(stack.one("aws:iam/rolePolicy:RolePolicy", name)["inputs"]["policy"])


def code_key(stack, bundle):
    return stack.one("aws:s3/bucketObjectv2:BucketObjectv2", f"sagestep-dev-{bundle}-code")["inputs"]["key"]


def role_arn(stack, logical):
    """The role's ARN as the provider returns it: its physical name is what the inline policy attaches to."""
    return f"arn:aws:iam::{ACCOUNT}:role/{stack.one('aws:iam/rolePolicy:RolePolicy', f'{logical}-policy')['inputs']['role']}"


def logs(group):
    base = f"arn:aws:logs:{REGION}:{ACCOUNT}:log-group:{group}"
    return [base, f"{base}:*"]


def test_preprocess_role_reads_datasets_and_writes_only_runs(stack):
    """Preprocess reads datasets and its own records; Evaluate, the same function's last action, reads back
    only the predictions, the held-out labels and the schema of a run; a failed preprocess deletes its run."""
    data, _ = names(stack)
    assert statements_by_sid(policy(stack, "sagestep-dev-preprocess-policy")) == {
        "ReadDatasets": {"Sid": "ReadDatasets", "Effect": "Allow", "Action": ["s3:GetObject"],
                         "Resource": [f"arn:aws:s3:::{data}/datasets/*"]},
        "ReadRunResults": {"Sid": "ReadRunResults", "Effect": "Allow", "Action": ["s3:GetObject"],
                           "Resource": [f"arn:aws:s3:::{data}/runs/*/preprocess/*",
                                        f"arn:aws:s3:::{data}/runs/*/predictions/*",
                                        f"arn:aws:s3:::{data}/runs/*/test-labels/*",
                                        f"arn:aws:s3:::{data}/runs/*/validation/schema.json"]},
        "ListDatasetBuckets": {"Sid": "ListDatasetBuckets", "Effect": "Allow", "Action": ["s3:ListBucket"],
                               "Resource": [f"arn:aws:s3:::{data}"]},
        "WriteRunData": {"Sid": "WriteRunData", "Effect": "Allow",
                         "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
                         "Resource": [f"arn:aws:s3:::{data}/runs/*"]},
        "DiscardRunData": {"Sid": "DiscardRunData", "Effect": "Allow", "Action": ["s3:DeleteObject"],
                           "Resource": [f"arn:aws:s3:::{data}/runs/*"]},
        "OwnLogs": {"Sid": "OwnLogs", "Effect": "Allow", "Action": ["logs:CreateLogStream", "logs:PutLogEvents"],
                    "Resource": logs("/aws/lambda/sagestep-dev-preprocess")[1:]},
    }


def test_training_role_reads_channels_and_code_writes_models(stack):
    data, artifacts = names(stack)
    assert statements_by_sid(policy(stack, "sagestep-dev-training-policy")) == {
        "ReadTrainingChannels": {"Sid": "ReadTrainingChannels", "Effect": "Allow", "Action": ["s3:GetObject"],
                                 "Resource": [f"arn:aws:s3:::{data}/runs/*/train/*",
                                              f"arn:aws:s3:::{data}/runs/*/validation/*"]},
        "ListRunData": {"Sid": "ListRunData", "Effect": "Allow", "Action": ["s3:ListBucket"],
                        "Resource": [f"arn:aws:s3:::{data}"],
                        "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}}},
        "ReadTrainingCode": {"Sid": "ReadTrainingCode", "Effect": "Allow", "Action": ["s3:GetObject"],
                             "Resource": [f"arn:aws:s3:::{artifacts}/code/training-*"]},
        "WriteModelArtifacts": {"Sid": "WriteModelArtifacts", "Effect": "Allow",
                                "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
                                "Resource": [f"arn:aws:s3:::{artifacts}/models/*"]},
        **job_common("/aws/sagemaker/TrainingJobs"),
    }


def job_common(group):
    return {
        "JobLogs": {"Sid": "JobLogs", "Effect": "Allow", "Action": [
            "logs:CreateLogGroup", "logs:CreateLogStream", "logs:DescribeLogStreams", "logs:PutLogEvents"],
            "Resource": logs(group)},
        "JobMetrics": {"Sid": "JobMetrics", "Effect": "Allow", "Action": ["cloudwatch:PutMetricData"], "Resource": ["*"]},
        "EcrAuth": {"Sid": "EcrAuth", "Effect": "Allow", "Action": ["ecr:GetAuthorizationToken"], "Resource": ["*"]},
        "PullFrameworkImage": {"Sid": "PullFrameworkImage", "Effect": "Allow", "Action": [
            "ecr:BatchCheckLayerAvailability", "ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
            "Resource": [f"arn:aws:ecr:{REGION}:683313688378:repository/sagemaker-xgboost"]},
    }


def test_model_role_reads_model_and_test_features_writes_predictions(stack):
    data, artifacts = names(stack)
    assert statements_by_sid(policy(stack, "sagestep-dev-model-policy")) == {
        "ReadModelArtifacts": {"Sid": "ReadModelArtifacts", "Effect": "Allow", "Action": ["s3:GetObject"],
                               "Resource": [f"arn:aws:s3:::{artifacts}/models/*"]},
        "ReadInferenceCode": {"Sid": "ReadInferenceCode", "Effect": "Allow", "Action": ["s3:GetObject"],
                              "Resource": [f"arn:aws:s3:::{artifacts}/code/inference-*"]},
        "ReadTransformInput": {"Sid": "ReadTransformInput", "Effect": "Allow", "Action": ["s3:GetObject"],
                               "Resource": [f"arn:aws:s3:::{data}/runs/*/test-features/*"]},
        "ListRunData": {"Sid": "ListRunData", "Effect": "Allow", "Action": ["s3:ListBucket"],
                        "Resource": [f"arn:aws:s3:::{data}"],
                        "Condition": {"StringLike": {"s3:prefix": ["runs/*"]}}},
        "WritePredictions": {"Sid": "WritePredictions", "Effect": "Allow",
                             "Action": ["s3:AbortMultipartUpload", "s3:PutObject"],
                             "Resource": [f"arn:aws:s3:::{data}/runs/*/predictions/*"]},
        **job_common("/aws/sagemaker/TransformJobs"),
    }


def test_state_machine_role_is_the_union_of_its_steps(stack):
    sm = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    fn = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sagestep-dev-preprocess"
    to_sagemaker = {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}
    rule = f"arn:aws:events:{REGION}:{ACCOUNT}:rule/StepFunctionsGetEventsForSageMaker"
    statements = statements_by_sid(policy(stack, "sagestep-dev-states-policy"))
    data, _ = names(stack)
    expected = {
        "InvokePreprocess": (["lambda:InvokeFunction"], [fn, f"{fn}:*"], None),
        # The preprocess Distributed Maps: their child executions, their item list and their results.
        "StartMapChildren": (["states:StartExecution"],
                             [f"arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:sagestep-dev-pipeline"], None),
        "FollowMapChildren": (["states:DescribeExecution", "states:StopExecution"],
                              [f"arn:aws:states:{REGION}:{ACCOUNT}:execution:sagestep-dev-pipeline:*",
                               f"arn:aws:states:{REGION}:{ACCOUNT}:execution:sagestep-dev-pipeline/*"], None),
        "ReadWorkItems": (["s3:GetObject"], [f"arn:aws:s3:::{data}/runs/*/preprocess/items.json",
                                             f"arn:aws:s3:::{data}/runs/*/preprocess/split-items.json"], None),
        "WriteMapResults": (["s3:AbortMultipartUpload", "s3:GetObject", "s3:ListMultipartUploadParts",
                             "s3:PutObject"], [f"arn:aws:s3:::{data}/runs/*/preprocess/map-results/*"], None),
        "TrainingJobs": (["sagemaker:AddTags", "sagemaker:CreateTrainingJob", "sagemaker:DescribeTrainingJob",
                          "sagemaker:StopTrainingJob"], [f"{sm}:training-job/sagestep-dev--*"], None),
        "SageMakerListTags": (["sagemaker:ListTags"], ["*"], None),
        "PassTrainingRole": (["iam:PassRole"], [role_arn(stack, "sagestep-dev-training")], to_sagemaker),
        "TrainingJobEvents": (["events:DescribeRule", "events:PutRule", "events:PutTargets"],
                              [f"{rule}TrainingJobsRule"], None),
        "Models": (["sagemaker:AddTags", "sagemaker:CreateModel"], [f"{sm}:model/sagestep-dev--*"], None),
        "PassModelRole": (["iam:PassRole"], [role_arn(stack, "sagestep-dev-model")], to_sagemaker),
        # StopTransformJob: the .sync integration's, and BatchPredictStop's when a budget's time runs out.
        "TransformJobs": (["sagemaker:AddTags", "sagemaker:CreateTransformJob", "sagemaker:DescribeTransformJob",
                           "sagemaker:StopTransformJob"], [f"{sm}:transform-job/sagestep-dev--*"], None),
        "TransformJobEvents": (["events:DescribeRule", "events:PutRule", "events:PutTargets"],
                               [f"{rule}TransformJobsRule"], None),
        "LogDelivery": (["logs:CreateLogDelivery", "logs:DeleteLogDelivery", "logs:DescribeLogGroups",
                         "logs:DescribeResourcePolicies", "logs:GetLogDelivery", "logs:ListLogDeliveries",
                         "logs:PutLogEvents", "logs:PutResourcePolicy", "logs:UpdateLogDelivery"], ["*"], None),
        "XRay": (["xray:GetSamplingRules", "xray:GetSamplingTargets", "xray:PutTelemetryRecords",
                  "xray:PutTraceSegments"], ["*"], None),
    }
    assert statements == {
        sid: {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources,
              **({"Condition": condition} if condition else {})}
        for sid, (actions, resources, condition) in expected.items()}


def test_pass_role_names_only_the_two_sagemaker_roles(stack):
    passed = [s for s in policy(stack, "sagestep-dev-states-policy")["Statement"] if "iam:PassRole" in s["Action"]]
    targets = sorted(r for s in passed for r in s["Resource"])
    assert len(targets) == 2 and all("*" not in t for t in targets)
    assert any("/sagestep-dev-training-" in t for t in targets) and any("/sagestep-dev-model-" in t for t in targets)
    assert all(s["Condition"] == {"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}} for s in passed)


def all_statements(stack):
    for p in stack.of_type("aws:iam/rolePolicy:RolePolicy"):
        for statement in json.loads(p["inputs"]["policy"])["Statement"]:
            yield p["name"], statement


def test_no_wildcard_actions_and_star_only_where_the_api_has_no_resource(stack):
    for name, statement in all_statements(stack):
        assert statement["Effect"] == "Allow"
        for action in statement["Action"]:
            assert "*" not in action, f"{name}: wildcard action {action}"
        if "*" in statement["Resource"]:
            assert statement["Resource"] == ["*"] and set(statement["Action"]) <= ANYWHERE, \
                f"{name}: {statement['Sid']} grants {statement['Action']} on *"


def actions_on(stack, policy_name, resource_fragment):
    return {a for s in policy(stack, policy_name)["Statement"] for r in s["Resource"]
            if resource_fragment in r for a in s["Action"]}


def test_roles_cannot_do_each_others_work(stack):
    data, artifacts = names(stack)
    assert not actions_on(stack, "sagestep-dev-preprocess-policy", artifacts), "the Lambda must not touch models or code"
    assert not actions_on(stack, "sagestep-dev-training-policy", "/predictions/"), "training must not write predictions"
    assert not actions_on(stack, "sagestep-dev-training-policy", "/test-"), "training must not read the test split"
    assert not actions_on(stack, "sagestep-dev-model-policy", "/train/"), "the model role must not read training data"
    model_writes = {r for s in policy(stack, "sagestep-dev-model-policy")["Statement"]
                    if "s3:PutObject" in s["Action"] for r in s["Resource"]}
    assert model_writes == {f"arn:aws:s3:::{data}/runs/*/predictions/*"}
    states = policy(stack, "sagestep-dev-states-policy")["Statement"]
    assert {r for s in states for r in s["Resource"] if r.startswith("arn:aws:s3")} == {
        f"arn:aws:s3:::{data}/runs/*/preprocess/items.json", f"arn:aws:s3:::{data}/runs/*/preprocess/split-items.json",
        f"arn:aws:s3:::{data}/runs/*/preprocess/map-results/*"}, \
        "the state machine reads the work items and writes the Maps' results, nothing else in S3"


def test_trust_policies_carry_confused_deputy_conditions(stack):
    def trust(role):
        return json.loads(stack.one("aws:iam/role:Role", role)["inputs"]["assumeRolePolicy"])["Statement"]
    [states] = trust("sagestep-dev-states")
    assert states["Principal"] == {"Service": "states.amazonaws.com"}
    assert states["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                   "ArnLike": {"aws:SourceArn": stack.outputs["stateMachineArn"]}}
    [training] = trust("sagestep-dev-training")
    assert training["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT}, "ArnLike": {
        "aws:SourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:training-job/sagestep-dev--*"}}
    [model] = trust("sagestep-dev-model")
    assert model["Principal"] == {"Service": "sagemaker.amazonaws.com"}
    assert model["Condition"] == {"StringEquals": {"aws:SourceAccount": ACCOUNT},
                                  "ArnLike": {"aws:SourceArn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:*"}}
    [lambda_] = trust("sagestep-dev-preprocess-role")
    assert lambda_ == {"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}


@pytest.fixture(scope="module")
def configured():
    return synthesize("tuned", {
        "datasetBuckets": ["team-datasets", "shared.raw"],
        "useSpotTraining": True,
        "kmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab",
    })


def test_dataset_buckets_are_readable_by_the_lambda_only(configured):
    lam = statements_by_sid(policy(configured, "sagestep-tuned-preprocess-policy"))
    data = configured.outputs["dataBucket"]
    assert lam["ReadDatasets"]["Resource"] == [f"arn:aws:s3:::{data}/datasets/*", "arn:aws:s3:::team-datasets/*",
                                               "arn:aws:s3:::shared.raw/*"]
    assert lam["ListDatasetBuckets"]["Resource"] == [f"arn:aws:s3:::{data}", "arn:aws:s3:::team-datasets",
                                                     "arn:aws:s3:::shared.raw"]
    for other in ("training", "model", "states"):
        assert not actions_on(configured, f"sagestep-tuned-{other}-policy", "team-datasets")


def test_spot_training_adds_checkpoints_and_kms_adds_key_use(configured):
    key = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    data = configured.outputs["dataBucket"]
    training = statements_by_sid(policy(configured, "sagestep-tuned-training-policy"))
    # DeleteObject: SageMaker deletes in S3 the checkpoints training/train.py deletes in the container.
    assert training["Checkpoints"] == {"Sid": "Checkpoints", "Effect": "Allow",
                                       "Action": ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                                       "Resource": [f"arn:aws:s3:::{data}/runs/*/checkpoints/*"]}
    # Output encryption with the key needs Encrypt and DescribeKey; the volume key, CreateGrant.
    job_key_use = {"Sid": "UseStackKey", "Effect": "Allow", "Resource": [key], "Action": [
        "kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey", "kms:Encrypt", "kms:GenerateDataKey"]}
    assert training["UseStackKey"] == job_key_use
    assert statements_by_sid(policy(configured, "sagestep-tuned-model-policy"))["UseStackKey"] == job_key_use
    lam = statements_by_sid(policy(configured, "sagestep-tuned-preprocess-policy"))
    assert lam["UseStackKey"] == {"Sid": "UseStackKey", "Effect": "Allow",
                                  "Action": ["kms:Decrypt", "kms:GenerateDataKey"], "Resource": [key]}
    # The preprocess Maps' ItemReader and ResultWriter (multipart) in the SSE-KMS data bucket.
    states = statements_by_sid(policy(configured, "sagestep-tuned-states-policy"))
    assert states["UseStackKey"] == {"Sid": "UseStackKey", "Effect": "Allow", "Resource": [key],
                                     "Action": ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]}


def test_without_spot_or_kms_there_is_no_checkpoint_or_key_access(stack):
    for name in ("preprocess", "training", "model", "states"):
        sids = statements_by_sid(policy(stack, f"sagestep-dev-{name}-policy"))
        assert "Checkpoints" not in sids and "UseStackKey" not in sids


def test_job_roles_read_every_bundle_of_their_own_code_and_bundles_outlive_a_deploy(stack):
    """A deploy that changes the code uploads a new key; executions started before it still run with
    the earlier bundle, which is kept (retainOnDelete) and stays readable by its own job role only."""
    _, artifacts = names(stack)
    earlier = {"training": "code/training-0123456789abcdef.tar.gz", "inference": "code/inference-0123456789abcdef.tar.gz"}
    for bundle, role, sid, other in (("training", "training", "ReadTrainingCode", "inference"),
                                     ("inference", "model", "ReadInferenceCode", "training")):
        [pattern] = statements_by_sid(policy(stack, f"sagestep-dev-{role}-policy"))[sid]["Resource"]
        assert fnmatch.fnmatchcase(f"arn:aws:s3:::{artifacts}/{code_key(stack, bundle)}", pattern)
        assert fnmatch.fnmatchcase(f"arn:aws:s3:::{artifacts}/{earlier[bundle]}", pattern)
        assert not fnmatch.fnmatchcase(f"arn:aws:s3:::{artifacts}/{earlier[other]}", pattern)
        assert not fnmatch.fnmatchcase(f"arn:aws:s3:::{artifacts}/models/x", pattern)
        obj = stack.one("aws:s3/bucketObjectv2:BucketObjectv2", f"sagestep-dev-{bundle}-code")
        assert obj["options"] == {"retainOnDelete": True}
    others = [r for r in stack.resources if r.get("options") and "bucketObjectv2" not in r["type"]]
    assert others == [], "only code bundles are kept on delete"
