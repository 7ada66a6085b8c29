"""`sagestep prune`: the choice as a pure function, then the real CLI against `sagestep local serve` after
three runs, and a running transform job on the embedded engine."""
import json
import signal
import subprocess
import sys
from datetime import datetime, timedelta, timezone

import pytest
from botocore.exceptions import ClientError

from statemachine.naming import name_prefix
from sagestep import ROOT
from sagestep.checks import free_port
from sagestep.cli import main
from sagestep.errors import UsageError
from sagestep.local import moto_adapter
from sagestep.local.engine import LocalEngine
from sagestep import prune as prune_module
from sagestep.prune import Model, delete, foreign, gone, prefix_of, select, utc
from sagestep.runner import follow
from tests.conftest import endpoint_client, endpoint_env

IRIS = ROOT / "examples/iris.csv"
NOW = datetime(2026, 11, 27, 12, tzinfo=timezone.utc)


def model(name: str, days_ago: float) -> Model:
    return Model(name, NOW - timedelta(days=days_ago))


# ---------------------------------------------------------------- the choice, as a pure function

def test_the_newest_n_stay_and_the_rest_go_oldest_first():
    models = [model("m-a", 3), model("m-b", 1), model("m-c", 2), model("m-d", 4)]
    plan = select(models, keep=2, in_use={}, now=NOW)
    assert [m.name for m in plan.delete] == ["m-d", "m-a"]
    assert [(m.name, why) for m, why in plan.keep] == [("m-b", "among the newest 2"), ("m-c", "among the newest 2")]
    assert select(models, keep=1, in_use={}, now=NOW).keep == [(models[1], "the newest")]
    assert select(models, keep=9, in_use={}, now=NOW).delete == []
    assert [m.name for m in select(models, keep=0, in_use={}, now=NOW).delete] == ["m-d", "m-a", "m-c", "m-b"]


def test_a_model_a_running_transform_job_uses_stays_whatever_its_age():
    models = [model("m-old", 30), model("m-mid", 20), model("m-new", 1)]
    in_use = {"m-old": "used by transform job j (InProgress)", "elsewhere": "used by transform job k (InProgress)"}
    plan = select(models, keep=1, in_use=in_use, now=NOW)
    assert [m.name for m in plan.delete] == ["m-mid"]
    assert {m.name: why for m, why in plan.keep} == {"m-new": "the newest",
                                                     "m-old": "used by transform job j (InProgress)"}


def test_older_than_also_keeps_the_younger_ones():
    models = [model("m-a", 40), model("m-b", 10), model("m-c", 6.9), model("m-d", 0.5)]
    plan = select(models, keep=1, in_use={}, now=NOW, older_than_days=7)
    assert [m.name for m in plan.delete] == ["m-a", "m-b"]
    assert [why for _, why in plan.keep] == ["the newest", "younger than 7 days"]
    assert select(models, keep=0, in_use={}, now=NOW, older_than_days=1).keep == [(models[3], "younger than 1 day")]


def test_same_creation_time_chooses_the_same_on_every_run():
    twins = [model("m-b", 1), model("m-a", 1)]
    assert [m.name for m in select(twins, keep=1, in_use={}, now=NOW).delete] == ["m-a"]
    assert [m.name for m in select(twins[::-1], keep=1, in_use={}, now=NOW).delete] == ["m-a"]


def test_only_this_stack_s_tag_and_name_make_a_model_its_own():
    assert foreign({"sagestep:stack": "dev", "sagestep:execution": "x"}, "dev") is None
    assert foreign({"sagestep:stack": "dev-2"}, "dev") == "not this stack's: tagged sagestep:stack=dev-2"
    assert foreign({}, "dev") == "not this stack's: no sagestep:stack tag"
    # dev's models are "sagestep-dev--…": never a prefix of dev-2's "sagestep-dev-2--…", nor the reverse.
    assert prefix_of("sagestep-dev-pipeline", "dev") == "sagestep-dev"
    assert not "sagestep-dev-2--run-1234abcd-model-0".startswith(name_prefix("dev") + "--")
    with pytest.raises(UsageError, match="is not named 'sagestep-dev-pipeline'"):
        prefix_of("sagestep-dev-2-pipeline", "dev")


def test_a_model_already_gone_is_told_apart_from_other_errors():
    def error(code, message):
        return ClientError({"Error": {"Code": code, "Message": message}}, "DeleteModel")
    assert gone(error("ValidationException",
                      'Could not find model "arn:aws:sagemaker:us-east-1:123456789012:model/sagestep-dev--x-model-0".'))
    assert not gone(error("ValidationException", "1 validation error detected"))
    assert not gone(error("AccessDeniedException", "not authorized to perform: sagemaker:DeleteModel"))


# ---------------------------------------------------------------- the real CLI against the served stack

def sagestep(*args, env):
    result = subprocess.run([sys.executable, "-m", "sagestep", *args], capture_output=True, text=True, cwd=ROOT,
                            env=env)
    assert "Traceback" not in result.stderr, result.stderr
    return result


def create_model(sagemaker, definition, name, tags):
    parameters = definition["States"]["CreateModel"]["Parameters"]
    sagemaker.create_model(ModelName=name, ExecutionRoleArn=parameters["ExecutionRoleArn"],
                           PrimaryContainer={"Image": parameters["PrimaryContainer"]["Image"]}, Tags=tags)


# Made before the runs, so they are the oldest: a prune that took any of them for dev's would delete it.
NOT_DEV_S = {
    "sagestep-dev-2--x-model-0": [{"Key": "sagestep:stack", "Value": "dev-2"}],     # another stack's
    "sagestep-dev--y-model-0": [],                                                   # a look-alike, untagged
    "sagestep-dev--w-model-0": [{"Key": "sagestep:stack", "Value": "dev-2"}],       # dev's name, dev-2's tag
    "sagestep-dev-2--z-model-0": [{"Key": "sagestep:stack", "Value": "dev"}],       # dev's tag, dev-2's name
    "copy-of-sagestep-dev--v-model-0": [{"Key": "sagestep:stack", "Value": "dev"}],  # dev's prefix, not first
}


@pytest.fixture(scope="module")
def three_runs(definition):
    """`sagestep local serve`, the other models, then three runs on iris; yields (env, sagemaker client,
    the three runs' model names, oldest first by CreationTime)."""
    port = str(free_port("127.0.0.1", 0))
    process = subprocess.Popen([sys.executable, "-m", "sagestep", "local", "serve", "--port", port],
                               cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        ready = json.loads(process.stdout.readline())
        env = endpoint_env(ready)
        client = lambda service: endpoint_client(ready, service)  # noqa: E731
        sagemaker, sfn = client("sagemaker"), client("stepfunctions")
        for name, tags in NOT_DEV_S.items():
            create_model(sagemaker, definition, name, tags)
        client("s3").upload_file(str(IRIS), ready["dataBucket"], "datasets/iris.csv")
        arns = [sfn.start_execution(stateMachineArn=ready["stateMachineArn"], name=f"prune-{n}", input=json.dumps(
            {"datasetUri": f"s3://{ready['dataBucket']}/datasets/iris.csv", "labelColumn": "species"}))["executionArn"]
            for n in range(3)]       # at once, as runs may be: which model is newest is CreationTime's to say
        for arn in arns:
            description, _ = follow(sfn, arn, timeout_seconds=180)
            assert description["status"] == "SUCCEEDED", (description.get("error"), description.get("cause"))
        created = {m["ModelName"]: m["CreationTime"] for m in sagemaker.list_models()["Models"]
                   if m["ModelName"] not in NOT_DEV_S}
        assert len(created) == 3
        models = sorted(created, key=lambda name: (created[name], name))
        yield env, sagemaker, models
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


def model_names(sagemaker):
    return {m["ModelName"] for m in sagemaker.list_models()["Models"]}


def test_prune_keeps_the_newest_and_touches_no_other_stack_s_models(three_runs):
    env, sagemaker, (first, second, third) = three_runs
    assert all(name.startswith("sagestep-dev--prune-") and name.endswith("-model-0")
               for name in (first, second, third))
    everything = model_names(sagemaker)
    assert everything == {first, second, third, *NOT_DEV_S}

    # --dry-run: says what it would delete, deletes nothing.
    result = sagestep("prune", "--keep", "1", "--dry-run", "--json", env=env)
    assert result.returncode == 0, result.stderr
    dry = json.loads(result.stdout)
    assert dry["dryRun"] is True and dry["stack"] == "dev"
    assert "deleted" not in dry and [d["name"] for d in dry["wouldDelete"]] == [first, second]
    assert all(set(d) == {"name", "created"} for d in dry["wouldDelete"]), "nothing was deleted, nor found gone"
    assert {k["name"]: k["reason"] for k in dry["kept"]} == {
        third: "the newest", "sagestep-dev--y-model-0": "not this stack's: no sagestep:stack tag",
        "sagestep-dev--w-model-0": "not this stack's: tagged sagestep:stack=dev-2"}
    assert model_names(sagemaker) == everything
    text = sagestep("prune", "--keep", "1", "--dry-run", env=env)
    assert text.returncode == 0 and "dry run: nothing deleted" in text.stdout
    assert f"would delete {first}" in " ".join(text.stdout.split()) and "would delete 2, kept 3" in text.stdout
    assert model_names(sagemaker) == everything
    # --older-than: all three are minutes old, so --keep 0 --older-than 1 would delete none of them.
    young = json.loads(sagestep("prune", "--keep", "0", "--older-than", "1", "--dry-run", "--json", env=env).stdout)
    assert young["wouldDelete"] == [] and {k["reason"] for k in young["kept"] if k["name"] in (first, second, third)} == {
        "younger than 1 day"}

    # --keep 1: the two older runs' models go, the newest stays, and nothing of anyone else's is touched.
    result = sagestep("prune", "--keep", "1", env=env)
    assert result.returncode == 0, result.stderr
    assert "deleted 2, kept 3" in result.stdout and "dry run" not in result.stdout
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["deleted", first] for line in lines)
    assert any(line.split()[:2] == ["kept", third] and line.endswith("the newest") for line in lines)
    assert model_names(sagemaker) == {third, *NOT_DEV_S}
    again = json.loads(sagestep("prune", "--keep", "1", "--json", env=env).stdout)
    assert again["deleted"] == [] and again["dryRun"] is False
    assert model_names(sagemaker) == {third, *NOT_DEV_S}


@pytest.mark.parametrize("args, fragment", [
    (("--keep", "-1"), "--keep -1: must be 0 or more"),
    (("--older-than", "-2"), "--older-than -2: must be a number of days, 0 or more"),
    (("--state-machine-arn", "garbage"), "'garbage' is not a state machine ARN"),
    # AWS answers ResourceNotFound; moto lists no tags for an unknown ARN: either way one line naming it.
    (("--state-machine-arn", "arn:aws:states:us-east-1:123456789012:stateMachine:nope"),
     "arn:aws:states:us-east-1:123456789012:stateMachine:nope"),
])
def test_mistakes_are_one_line_and_exit_2(three_runs, args, fragment):
    env, sagemaker, _ = three_runs
    before = model_names(sagemaker)
    result = sagestep("prune", *args, env=env)
    assert result.returncode == 2 and fragment in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.stdout == ""
    assert model_names(sagemaker) == before


# ---------------------------------------------------------------- a running transform job (embedded engine)

def test_a_model_in_use_by_a_running_transform_job_is_kept(stack, definition, capsys, monkeypatch):
    """moto completes a transform job at creation; the engine's moto is where its status is set to
    InProgress, as SageMaker shows a job that is still predicting."""
    with LocalEngine(stack) as engine:
        sagemaker = engine.client("sagemaker")
        backend = moto_adapter.sagemaker_jobs(engine.region)
        ages = {"sagestep-dev--a-model-0": 30, "sagestep-dev--b-model-0": 20, "sagestep-dev--c-model-0": 10,
                "sagestep-dev--d-model-0": 0}
        for name, days_ago in ages.items():
            create_model(sagemaker, definition, name, [{"Key": "sagestep:stack", "Value": "dev"}])
            backend._models[name].creation_time = datetime.now(timezone.utc) - timedelta(days=days_ago)
        predict = {k: v for k, v in definition["States"]["BatchPredict"]["Parameters"].items() if not k.endswith(".$")}
        for job, used in (("sagestep-dev--a-predict-0", "sagestep-dev--a-model-0"),
                          ("sagestep-dev--b-predict-0", "sagestep-dev--b-model-0")):
            sagemaker.create_transform_job(**{
                **predict, "TransformJobName": job, "ModelName": used,
                "TransformInput": {"ContentType": "text/csv", "SplitType": "Line", "DataSource": {
                    "S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": "s3://b/runs/x/"}}},
                "TransformOutput": {"S3OutputPath": "s3://b/runs/x/predictions/", "AssembleWith": "Line"},
                "Tags": [{"Key": "sagestep:stack", "Value": "dev"}]})
        backend.transform_jobs["sagestep-dev--a-predict-0"].transform_job_status = "InProgress"   # b's Completed

        code = main(["prune", "--keep", "1", "--older-than", "15", "--json",
                     "--state-machine-arn", engine.state_machine_arn])
        result = json.loads(capsys.readouterr().out)
        assert code == 0
        assert [d["name"] for d in result["deleted"]] == ["sagestep-dev--b-model-0"]
        assert {k["name"]: k["reason"] for k in result["kept"]} == {
            "sagestep-dev--d-model-0": "the newest", "sagestep-dev--c-model-0": "younger than 15 days",
            "sagestep-dev--a-model-0": "used by transform job sagestep-dev--a-predict-0 (InProgress)"}
        assert {m["ModelName"] for m in sagemaker.list_models()["Models"]} == set(ages) - {"sagestep-dev--b-model-0"}
        # Deleted by someone else between the listing and the deleting: fine, and said so.
        assert delete(sagemaker, "sagestep-dev--b-model-0") is False
        listed = prune_module.listed_models
        phantom = Model("sagestep-dev--gone-model-0", datetime.now(timezone.utc) - timedelta(days=40))
        monkeypatch.setattr(prune_module, "listed_models", lambda *args: (
            [*listed(*args)[0], phantom], listed(*args)[1]))
        code = main(["prune", "--keep", "1", "--json", "--state-machine-arn", engine.state_machine_arn])
        result = json.loads(capsys.readouterr().out)
        assert code == 0 and result["deleted"][0] == {"name": phantom.name, "created": utc(phantom.created),
                                                      "alreadyGone": True}
        assert [d["name"] for d in result["deleted"][1:]] == ["sagestep-dev--c-model-0"]
