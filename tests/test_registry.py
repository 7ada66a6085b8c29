"""The model registry (sagestep:registerModels): config, the Register step and its IAM, the group resource, the
local engine's UpdateModelPackage, `sagestep models` and `sagestep prune` against `sagestep local serve`."""
import json
import shutil
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from infra.settings import ConfigError, read_settings
from sagestep import ROOT
from sagestep.checks import free_port
from sagestep.cli import main
from sagestep.local import moto_adapter
from sagestep.local.engine import LocalEngine
from sagestep.prune import Model, Plan, spare_registered
from sagestep.runner import failed_state, follow
from sagestep.start import console_links
from sagestep.synth import synthesize
from statemachine import STEPS, PipelineSettings, Refs, build_definition, register, role_statements, summary
from statemachine.check import check_definition
from tests.conftest import endpoint_client, endpoint_env, statements_by_sid
from tests.test_iam import ACCOUNT, REGION, policy
from tests.test_local import IRIS, sagestep

GROUP_PATTERN = r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$"     # CreateModelPackageGroup's name (reference §3.21)


@pytest.fixture(scope="module")
def registered_stack():
    return synthesize("reg", {"registerModels": True})


@pytest.fixture(scope="module")
def registered_definition(registered_stack):
    return json.loads(registered_stack.definition)


# ---------------------------------------------------------------- config

def test_the_registry_is_off_by_default_and_versions_start_pending():
    settings = read_settings(lambda key: None, "dev").pipeline
    assert settings.register_models is False and settings.model_approval_status == "PendingManualApproval"
    on = read_settings({"registerModels": "true", "modelApprovalStatus": "Approved"}.get, "dev").pipeline
    assert on.register_models is True and on.model_approval_status == "Approved"


@pytest.mark.parametrize("key, value, message", [
    ("modelApprovalStatus", "Rejected", "invalid config sagestep:modelApprovalStatus = Rejected; "
                                        "allowed: PendingManualApproval or Approved"),
    ("modelApprovalStatus", "approved", "invalid config sagestep:modelApprovalStatus = approved; "
                                        "allowed: PendingManualApproval or Approved"),
    ("registerModels", "yes", "invalid config sagestep:registerModels = yes; allowed: true or false"),
])
def test_a_bad_registry_setting_is_one_line_at_synth(key, value, message):
    with pytest.raises(ConfigError) as caught:
        synthesize("bad", {key: value})
    assert str(caught.value) == message


# ---------------------------------------------------------------- the definition

def refs(group: str = "") -> Refs:
    return Refs("aws", REGION, ACCOUNT, "sagestep-dev", "dev", "data", "artifacts",
                f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:3.0-5",
                f"683313688378.dkr.ecr.{REGION}.amazonaws.com/sagemaker-xgboost:3.0-5",
                "s3://artifacts/code/training-1.tar.gz", "s3://artifacts/code/inference-1.tar.gz",
                function_arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:sagestep-dev-preprocess",
                role_arns={"training": "arn:aws:iam::1:role/t", "model": "arn:aws:iam::1:role/m"},
                model_package_group=group)


def test_with_the_registry_off_the_definition_and_role_are_today_s():
    """Off, the Register step leaves no trace: the same definition, statements and summary as a pipeline
    without the step (a group in the refs alone changes nothing either)."""
    without = tuple(step for step in STEPS if step is not register.STEP)
    settings = PipelineSettings()
    for given in (refs(), refs("sagestep-dev-models")):
        assert build_definition(given, settings) == build_definition(given, settings, without)
        assert role_statements(given, settings=settings) == role_statements(given, without, settings)
    definition = build_definition(refs(), settings)
    assert summary(definition) == summary(definition, without)
    assert "Register" in build_definition(refs("g"), PipelineSettings(register_models=True))["States"]
    with pytest.raises(ValueError, match="registerModels is on but the refs name no model package group"):
        build_definition(refs(), PipelineSettings(register_models=True))


def test_the_default_stack_has_no_group_no_register_state_and_no_registry_permission(stack, definition):
    assert not stack.of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert "Register" not in definition["States"] and "modelPackageGroup" not in stack.outputs
    assert "model-package" not in json.dumps(policy(stack, "sagestep-dev-states-policy"))


def test_register_follows_evaluate_with_the_model_s_container_and_its_evaluation(registered_definition):
    states = registered_definition["States"]
    assert states["Evaluate"]["Next"] == "Register" and states["Register"]["Next"] == "Summarize"
    register_state = states["Register"]
    assert register_state["Resource"] == "arn:aws:states:::aws-sdk:sagemaker:createModelPackage"
    parameters = register_state["Parameters"]
    assert parameters["ModelPackageGroupName"] == "sagestep-reg-models"
    # The same container as CreateModel's: a model built from the version serves as the run's did.
    assert parameters["InferenceSpecification"] == {
        "Containers": [states["CreateModel"]["Parameters"]["PrimaryContainer"]],
        "SupportedContentTypes": ["text/csv"], "SupportedResponseMIMETypes": ["text/csv"],
        "SupportedTransformInstanceTypes": ["ml.m5.large"]}
    assert parameters["InferenceSpecification"]["Containers"][0]["Environment"]["SAGEMAKER_PROGRAM"] == "inference.py"
    assert parameters["ModelApprovalStatus"] == "PendingManualApproval"
    assert parameters["ModelMetrics"] == {"ModelQuality": {"Statistics": {
        "ContentType": "application/json", "S3Uri.$": "$.evaluation.evaluationFile"}}}
    assert parameters["MetadataProperties"] == {"GeneratedBy.$": "$$.Execution.Id"}
    assert parameters["CustomerMetadataProperties"] == {
        "sagestep:stack": "reg", "sagestep:execution.$": "$.run.executionTag", "trainingJobName.$": "$.training.jobName"}
    assert parameters["ClientToken.$"] == "States.Hash($$.Execution.Id, 'MD5')"
    assert register_state["Catch"] == [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "RegisterFailed"}]
    assert states["RegisterFailed"]["Type"] == "Fail"
    assert register_state["ResultSelector"] == {
        "group": "sagestep-reg-models", "arn.$": "$.ModelPackageArn",
        "version.$": "States.StringToJson(States.ArrayGetItem(States.StringSplit($.ModelPackageArn, '/'), 2))",
        "status": "PendingManualApproval"}
    assert states["Summarize"]["Parameters"]["registered.$"] == "$.registered"


def test_the_registered_definition_passes_the_static_check_and_statelint(registered_definition, registered_stack,
                                                                         tmp_path):
    assert check_definition(registered_definition) == []
    broken = json.loads(registered_stack.definition)
    broken["States"]["Register"]["Parameters"]["InferenceSpecification"]["Containerz"] = []
    assert any("unknown parameter 'Containerz'" in p for p in check_definition(broken))
    path = tmp_path / "registered.asl.json"
    path.write_text(registered_stack.definition)
    statelint = shutil.which("statelint", path=str(Path(sys.executable).parent))
    result = subprocess.run([statelint, str(path)], capture_output=True, text=True)
    problems = [line for line in result.stdout.splitlines()[1:] if line.strip()]
    assert all('"InputType" not allowed' in line for line in problems) and len(problems) == 2, result.stdout


def test_approved_is_the_status_a_version_starts_with_when_configured():
    definition = json.loads(synthesize("reg", {"registerModels": True, "modelApprovalStatus": "Approved"}).definition)
    assert definition["States"]["Register"]["Parameters"]["ModelApprovalStatus"] == "Approved"
    assert definition["States"]["Register"]["ResultSelector"]["status"] == "Approved"


# ---------------------------------------------------------------- IAM and the group resource

def test_the_state_machine_may_create_versions_in_its_group_only(registered_stack, stack):
    sm = f"arn:aws:sagemaker:{REGION}:{ACCOUNT}"
    statements = statements_by_sid(policy(registered_stack, "sagestep-reg-states-policy"))
    registry = {sid: s for sid, s in statements.items() if "model-package" in json.dumps(s)}
    assert registry == {
        "RegisterModelVersions": {"Sid": "RegisterModelVersions", "Effect": "Allow",
                                  "Action": ["sagemaker:AddTags", "sagemaker:CreateModelPackage"],
                                  "Resource": [f"{sm}:model-package/sagestep-reg-models/*"]},
        "RegisterInModelGroup": {"Sid": "RegisterInModelGroup", "Effect": "Allow",
                                 "Action": ["sagemaker:CreateModelPackage"],
                                 "Resource": [f"{sm}:model-package-group/sagestep-reg-models"]},
    }
    # Everything else is the default stack's, statement for statement (only the stack's names differ).
    others = {sid: s for sid, s in statements.items() if sid not in registry}
    default = statements_by_sid(policy(stack, "sagestep-dev-states-policy"))
    assert set(others) == set(default)


def test_the_group_is_named_from_the_stack_prefix_and_exported(registered_stack):
    [group] = registered_stack.of_type("aws:sagemaker/modelPackageGroup:ModelPackageGroup")
    assert group["inputs"] == {"modelPackageGroupName": "sagestep-reg-models",
                               "modelPackageGroupDescription": "sagestep stack reg: one version per evaluated run",
                               "tags": {"sagestep:stack": "reg"}}
    assert registered_stack.outputs["modelPackageGroup"] == "sagestep-reg-models"
    assert registered_stack.outputs["modelPackageGroupArn"] == (
        f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package-group/sagestep-reg-models")


@pytest.mark.parametrize("stack", ["a", "Team.Prod_2", "x" * 80, "a--b"])
def test_every_stack_name_makes_a_valid_group_name(stack):
    import re
    from statemachine.naming import name_prefix
    assert re.match(GROUP_PATTERN, register.group_name(name_prefix(stack)))


# ---------------------------------------------------------------- prune's rule, as a pure function

def test_prune_spares_a_model_whose_artifacts_a_registered_version_serves():
    now = datetime(2026, 12, 1, tzinfo=timezone.utc)
    old, mid, new = (Model(name, now - timedelta(days=d)) for name, d in (("m-old", 3), ("m-mid", 2), ("m-new", 1)))
    plan = Plan(delete=[old, mid], keep=[(new, "the newest")])
    spared = spare_registered(plan, {"m-old": "s3://a/models/old.tar.gz", "m-mid": "s3://a/models/mid.tar.gz"},
                              {"s3://a/models/old.tar.gz": "registered as version 1 of g"})
    assert spared.delete == [mid]
    assert spared.keep == [(new, "the newest"), (old, "registered as version 1 of g")]
    assert spare_registered(plan, {}, {"s3://a/models/old.tar.gz": "v1"}) == plan


# ---------------------------------------------------------------- the local engine's UpdateModelPackage

def test_approving_keeps_what_the_request_leaves_out_as_aws_does(registered_stack):
    """moto would set CustomerMetadataProperties and ApprovalDescription to None when the request leaves them out."""
    with LocalEngine(registered_stack) as engine:
        sagemaker = engine.client("sagemaker")
        arn = sagemaker.create_model_package(
            ModelPackageGroupName="sagestep-reg-models", ModelApprovalStatus="PendingManualApproval",
            InferenceSpecification={"Containers": [{"Image": "i"}]},
            CustomerMetadataProperties={"trainingJobName": "j"})["ModelPackageArn"]
        sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Rejected",
                                       ApprovalDescription="worse than version 1")
        sagemaker.update_model_package(ModelPackageArn=arn, CustomerMetadataProperties={"reviewer": "ana"})
        described = sagemaker.describe_model_package(ModelPackageName=arn)
        with pytest.raises(sagemaker.exceptions.ClientError, match="'Maybe' at 'modelApprovalStatus'"):
            sagemaker.update_model_package(ModelPackageArn=arn, ModelApprovalStatus="Maybe")
    assert described["ModelApprovalStatus"] == "Rejected"
    assert described["ApprovalDescription"] == "worse than version 1"
    assert described["CustomerMetadataProperties"] == {"trainingJobName": "j", "reviewer": "ana"}


def test_models_on_a_stack_without_the_registry_is_one_line(stack, capsys, monkeypatch):
    with LocalEngine(stack) as engine:
        monkeypatch.setenv("SAGESTEP_STATE_MACHINE_ARN", engine.state_machine_arn)
        code = main(["models"])
    captured = capsys.readouterr()
    assert code == 2 and captured.out == ""
    assert captured.err.strip().splitlines() == [
        "sagestep models: stack dev has no model registry (no group sagestep-dev-models): set "
        "sagestep:registerModels to true and deploy, then runs register their models"]


# ---------------------------------------------------------------- end to end, served

@pytest.fixture(scope="module")
def served_registry():
    """`sagestep local serve` of a stack with the registry, an extra model of the stack's that no version
    uses, then two runs on iris; yields (ready line, env, sagemaker client, the two runs' outputs)."""
    stack = "regserve"
    stack_file = ROOT / f"Pulumi.{stack}.yaml"
    stack_file.write_text("config:\n  sagestep:registerModels: true\n")
    port = str(free_port("127.0.0.1", 0))
    process = subprocess.Popen([sys.executable, "-m", "sagestep", "local", "serve", "--stack", stack, "--port", port],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        stack_file.unlink()
        env = endpoint_env(ready)
        client = lambda service: endpoint_client(ready, service)  # noqa: E731
        sagemaker, sfn = client("sagemaker"), client("stepfunctions")
        client("s3").upload_file(str(IRIS), ready["dataBucket"], "datasets/iris.csv")
        outputs = []
        for n in range(2):
            arn = sfn.start_execution(stateMachineArn=ready["stateMachineArn"], name=f"reg-{n}", input=json.dumps(
                {"datasetUri": f"s3://{ready['dataBucket']}/datasets/iris.csv", "labelColumn": "species"})
            )["executionArn"]
            description, _ = follow(sfn, arn, timeout_seconds=180)
            assert description["status"] == "SUCCEEDED", description
            outputs.append({**json.loads(description["output"]), "executionArn": arn})
        role = sagemaker.describe_model(ModelName=outputs[0]["modelName"])["ExecutionRoleArn"]
        sagemaker.create_model(ModelName="sagestep-regserve--stray-model-0", ExecutionRoleArn=role,
                               PrimaryContainer={"Image": "i", "ModelDataUrl": "s3://elsewhere/model.tar.gz"},
                               Tags=[{"Key": "sagestep:stack", "Value": stack}])
        yield ready, env, sagemaker, outputs
    finally:
        stack_file.unlink(missing_ok=True)
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def test_each_run_registers_the_next_version_and_models_lists_them(served_registry):
    ready, env, sagemaker, (first, second) = served_registry
    group = "sagestep-regserve-models"
    assert first["registered"] == {"group": group, "version": 1, "status": "PendingManualApproval",
                                   "arn": f"arn:aws:sagemaker:{ready['region']}:{ACCOUNT}:model-package/{group}/1"}
    assert second["registered"]["version"] == 2
    # The real aws CLI sees them where SageMaker keeps them.
    aws = [str(ROOT / ".venv/bin/aws") if (ROOT / ".venv/bin/aws").exists() else "aws",
           "--endpoint-url", ready["endpoint"]]
    listed = json.loads(subprocess.run([*aws, "sagemaker", "list-model-packages", "--model-package-group-name", group],
                                       env=env, capture_output=True, text=True, check=True).stdout)
    assert sorted(p["ModelPackageVersion"] for p in listed["ModelPackageSummaryList"]) == [1, 2]

    result = sagestep("models", "--json", env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["group"] == group and [v["version"] for v in shown["versions"]] == [2, 1]
    newest = shown["versions"][0]
    assert set(newest) == {"version", "arn", "status", "created", "metrics", "executionArn"}
    assert newest["executionArn"] == second["executionArn"] and newest["status"] == "PendingManualApproval"
    assert newest["metrics"] == second["evaluation"]["metrics"] and newest["metrics"]["accuracy"] > 0.8
    text = sagestep("models", env=env)
    assert text.returncode == 0 and "newest first" in text.stdout and "PendingManualApproval" in text.stdout


def test_approve_and_reject_set_the_status_and_keep_the_version_s_metadata(served_registry):
    _, env, sagemaker, (first, second) = served_registry
    approved = sagestep("models", "approve", "1", "--json", env=env)
    assert approved.returncode == 0, approved.stderr
    assert json.loads(approved.stdout) == {**first["registered"], "status": "Approved"}
    rejected = sagestep("models", "reject", "2", "--description", "worse than 1", env=env)
    assert rejected.returncode == 0 and rejected.stdout.strip() == "sagestep-regserve-models version 2: Rejected"
    one = sagemaker.describe_model_package(ModelPackageName=first["registered"]["arn"])
    two = sagemaker.describe_model_package(ModelPackageName=second["registered"]["arn"])
    assert (one["ModelApprovalStatus"], two["ModelApprovalStatus"]) == ("Approved", "Rejected")
    assert two["ApprovalDescription"] == "worse than 1"
    assert two["CustomerMetadataProperties"]["trainingJobName"] == second["trainingJobName"]
    shown = json.loads(sagestep("models", "--json", env=env).stdout)
    assert [v["status"] for v in shown["versions"]] == ["Rejected", "Approved"]


@pytest.mark.parametrize("args, line", [
    (("approve", "9"), "sagestep models: version 9 is not in model group sagestep-regserve-models (versions: 1, 2)"),
    (("approve",), "sagestep models: sagestep models approve needs the VERSION to approve, e.g. sagestep models "
                   "approve 3"),
    (("approve", "x"), "sagestep models: argument VERSION: 'x' is not a model version (1, 2, ...) "
                       "(see sagestep models --help)"),
    (("publish", "1"), "sagestep models: argument action: invalid choice: 'publish' "
                       "(choose from 'approve', 'reject') (see sagestep models --help)"),
])
def test_models_mistakes_are_one_line_and_exit_2(served_registry, args, line):
    _, env, _, _ = served_registry
    result = sagestep("models", *args, env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip().splitlines() == [line]


def test_prune_never_deletes_a_model_a_registered_version_serves(served_registry):
    _, env, sagemaker, (first, second) = served_registry
    result = sagestep("prune", "--keep", "0", "--json", env=env)
    assert result.returncode == 0, result.stderr
    pruned = json.loads(result.stdout)
    assert [d["name"] for d in pruned["deleted"]] == ["sagestep-regserve--stray-model-0"]
    assert {k["name"]: k["reason"] for k in pruned["kept"]} == {
        first["modelName"]: "registered as version 1 of sagestep-regserve-models",
        second["modelName"]: "registered as version 2 of sagestep-regserve-models"}
    names = {m["ModelName"] for m in sagemaker.list_models()["Models"]}
    assert names == {first["modelName"], second["modelName"]}


def test_a_refused_registration_fails_the_run_at_register_failed(registered_stack):
    """Without its group CreateModelPackage is refused: the run fails at Register, with SageMaker's reason."""
    with LocalEngine(registered_stack) as engine:
        moto_adapter.sagemaker_jobs(engine.region).model_package_groups.pop("sagestep-reg-models")  # moto has no Delete
        sfn = engine.client("stepfunctions")
        arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name="nogroup", input=json.dumps(
            {"datasetUri": engine.upload_dataset(IRIS), "labelColumn": "species"}))["executionArn"]
        description, progress = follow(sfn, arn, timeout_seconds=180)
    assert description["status"] == "FAILED" and description["error"] == "RegisterFailed"
    assert "Model Package Group does not exist" in description["cause"]
    assert failed_state(progress.states) == "Register"


def test_a_finished_run_on_aws_links_its_jobs_and_its_model_group_in_the_console():
    page = "https://eu-west-1.console.aws.amazon.com/sagemaker/home?region=eu-west-1#"
    assert console_links("eu-west-1", "s-train-0", {"job": "s-tune"}, {"group": "s-models", "version": 2}) == {
        "trainingJobConsole": f"{page}/jobs/s-train-0", "tuningJobConsole": f"{page}/hyper-tuning-jobs/s-tune",
        "modelGroupConsole": f"{page}/model-registry/s-models"}
    assert console_links("eu-west-1", "s-train-0", None, None) == {"trainingJobConsole": f"{page}/jobs/s-train-0"}
