"""The cost of a run: each item from what AWS bills it by, the shipped price table, and the local
engine's training times that a local estimate is made from."""
import json
import re
from datetime import date, datetime, timedelta, timezone

import pytest

from infra import prices
from sagestep import ROOT, cost
from sagestep.local.engine import LocalEngine
from sagestep.runner import follow
from sagestep.synth import synthesize

REGION = "eu-west-1"
# A table of made-up prices, so the arithmetic is checked against the rules and not against the shipped figures.
TABLE = {
    "source": ["made up for the test"], "date": "2000-01-02",
    "sagemaker": {"training": {REGION: {"ml.m5.xlarge": 0.5}}, "transform": {REGION: {"ml.m5.large": 0.25}}},
    "lambda": {"gbSecondX86": {REGION: 0.00002}, "gbSecondArm64": {REGION: 0.000016}, "request": {REGION: 0.0000003}},
    "stepFunctionsStandard": {"stateTransition": {REGION: 0.00004}},
}


@pytest.fixture
def table(monkeypatch):
    monkeypatch.setattr(prices, "price_table", lambda: TABLE)
    return TABLE


def training_job(billable, trained, spot=False, instance_type="ml.m5.xlarge", count=1):
    return {"ResourceConfig": {"InstanceType": instance_type, "InstanceCount": count, "VolumeSizeInGB": 30},
            "BillableTimeInSeconds": billable, "TrainingTimeInSeconds": trained, "EnableManagedSpotTraining": spot}


def transform_job(start, end, instance_type="ml.m5.large", count=1):
    return {"TransformResources": {"InstanceType": instance_type, "InstanceCount": count},
            "TransformStartTime": start, "TransformEndTime": end}


def item(result, name):
    return next(i for i in result["items"] if i["item"] == name)


def test_spot_training_is_billed_for_its_billable_time_and_says_what_it_saved(table):
    result = cost.run_cost(REGION, {"training": training_job(billable=70, trained=183, spot=True)})
    training = item(result, "training")
    assert training["usd"] == pytest.approx(0.5 * 70 / 3600)           # not the 183 s it trained
    saved = round(100 * (1 - 70 / 183))
    assert training["detail"] == f"ml.m5.xlarge x1, 70 s billable (spot, {saved}% saved) at $0.5/h"
    assert result["usd"] == round(training["usd"], 4) and result["notes"] == []


def test_on_demand_training_bills_every_instance(table):
    training = item(cost.run_cost(REGION, {"training": training_job(billable=183, trained=183, count=2)}), "training")
    assert training["usd"] == pytest.approx(0.5 * 183 * 2 / 3600)
    assert "spot" not in training["detail"] and training["detail"].startswith("ml.m5.xlarge x2, 183 s billable")


def test_transform_is_billed_from_start_to_end_whichever_form_the_times_take(table):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    end = start + timedelta(seconds=95.2)
    as_boto3 = cost.run_cost(REGION, {"transform": transform_job(start, end, count=3)})
    as_step_functions = cost.run_cost(REGION, {"transform": transform_job(
        int(start.timestamp() * 1000), int(end.timestamp() * 1000), count=3)})
    transform = item(as_boto3, "batch transform")
    assert transform["usd"] == pytest.approx(0.25 * 96 * 3 / 3600)      # whole seconds, every instance
    assert transform["detail"] == "ml.m5.large x3, 96 s at $0.25/h"
    assert item(as_step_functions, "batch transform") == transform


def test_lambda_bills_gb_seconds_rounded_up_to_the_millisecond_and_each_request(table):
    lam = item(cost.run_cost(REGION, lambda_invocations=[(0.1, 1024), (0.0001, 2048)]), "preprocess Lambda")
    # 0.1 s is 100 ms (not 101 from float noise); 0.1 ms is billed as 1 ms.
    gb_seconds = 0.100 * 1024 / 1024 + 0.001 * 2048 / 1024
    assert lam["usd"] == pytest.approx(gb_seconds * 0.00002 + 2 * 0.0000003, rel=1e-3)
    assert "2 invocations at 1024/2048 MB x86_64, 101 ms billed (0.1020 GB-s)" in lam["detail"]


def test_an_arm64_function_is_priced_at_the_graviton_rate(table):
    """The stack's function runs on arm64 (infra/function.py), which Lambda bills about 20% less."""
    arm = item(cost.run_cost(REGION, lambda_invocations=[(1.0, 1024)], lambda_architecture="arm64"), "preprocess Lambda")
    assert arm["usd"] == pytest.approx(1.0 * 0.000016 + 0.0000003) and "1024 MB arm64" in arm["detail"]


def test_state_transitions_are_billed_each(table):
    transitions = item(cost.run_cost(REGION, state_transitions=11), "state transitions")
    assert transitions["usd"] == pytest.approx(11 * 0.00004)
    assert transitions["detail"] == "11 transitions at $0.04 per 1,000"


def test_an_unknown_instance_type_is_unpriced_and_the_total_a_lower_bound(table):
    result = cost.run_cost(REGION, {"training": training_job(100, 100, instance_type="ml.zz.huge")}, state_transitions=10)
    assert item(result, "training")["usd"] is None
    assert result["usd"] == round(10 * 0.00004, 4)
    assert any("no price for ml.zz.huge in eu-west-1" in note for note in result["notes"])
    assert result["notes"][-1] == "the total is a lower bound: it leaves out training"


def test_an_unknown_region_leaves_every_item_unpriced_and_says_so(table):
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    result = cost.run_cost("xx-nowhere-1", {"training": training_job(100, 100),
                                          "transform": transform_job(start, start + timedelta(seconds=5))},
                           [(1.0, 1769)], 9)
    assert [i["usd"] for i in result["items"]] == [None, None, None, None] and result["usd"] == 0.0
    assert sum("price for xx-nowhere-1" in note for note in result["notes"]) == 4
    assert "lower bound" in result["notes"][-1]
    assert cost.instance_price_lines("ml.m5.xlarge", 1, "ml.m5.large", 1, "xx-nowhere-1")[0] == (
        "training: ml.m5.xlarge x1: no price for xx-nowhere-1 (xx-nowhere-1, price table of 2000-01-02)")


def test_a_run_that_failed_before_the_transform_has_no_transform_item(table):
    result = cost.run_cost(REGION, {"training": training_job(60, 60)}, [(0.5, 1769)], 7)
    assert [i["item"] for i in result["items"]] == ["training", "preprocess Lambda", "state transitions"]
    assert result["usd"] == round(sum(i["usd"] for i in result["items"]), 4) and result["notes"] == []
    # Failed at Preprocess: only the Lambda and the transitions.
    assert [i["item"] for i in cost.run_cost(REGION, lambda_invocations=[(0.2, 1769)], state_transitions=3)["items"]] \
        == ["preprocess Lambda", "state transitions"]


def test_a_local_estimate_says_so_and_prices_spot_as_on_demand(table):
    result = cost.run_cost(REGION, {"training": training_job(40, 40, spot=True)}, estimate=True)
    assert result["estimate"] is True and result["notes"][0] == "an estimate at AWS prices from local timings"
    assert "(spot, priced as on demand)" in item(result, "training")["detail"]
    assert any("cannot know the spot discount" in note for note in result["notes"])
    assert result["prices"] == {"source": TABLE["source"], "date": TABLE["date"]}


def test_instance_price_lines_for_the_synth_summary(table):
    assert cost.instance_price_lines("ml.m5.xlarge", 1, "ml.m5.large", 2, REGION) == [
        "training: ml.m5.xlarge x1 at $0.5/h on demand (eu-west-1, price table of 2000-01-02)",
        "batch transform: ml.m5.large x2 at $0.25/h each ($0.5/h in all) on demand (eu-west-1, price table of 2000-01-02)"]
    assert cost.instance_price_lines("ml.zz.huge", 1, "ml.m5.large", 1, REGION)[0] == (
        "training: ml.zz.huge x1: no price for ml.zz.huge in eu-west-1 (eu-west-1, price table of 2000-01-02)")


def test_hourly_price_knows_the_two_uses_only(table):
    assert prices.hourly_price("ml.m5.large", REGION, "transform") == 0.25
    assert prices.hourly_price("ml.m5.large", REGION, "training") is None
    with pytest.raises(ValueError):
        prices.hourly_price("ml.m5.large", REGION, "hosting")


def catalogue_regions():
    from infra import catalogue
    return {region for version in catalogue.SUPPORTED_XGBOOST for use in ("training", "serving")
            for region in catalogue.image_regions(version, use)}


def test_the_shipped_table_names_its_sources_and_date_and_prices_only_what_it_can():
    shipped = json.loads(prices.PRICES.read_text())
    assert shipped["source"] and all(re.search(r"https://\S+", source) for source in shipped["source"])
    assert date.fromisoformat(shipped["date"]) <= date.today()
    assert set(shipped["sagemaker"]) == set(prices.USES)
    regions = catalogue_regions()
    listed = [(use, region, price) for use in prices.USES for region, by_type in shipped["sagemaker"][use].items()
              for price in by_type.values()]
    listed += [(kind, region, price) for kind in ("gbSecondX86", "gbSecondArm64", "request")
               for region, price in shipped["lambda"][kind].items()]
    listed += [("stateTransition", region, price)
               for region, price in shipped["stepFunctionsStandard"]["stateTransition"].items()]
    for kind, region, price in listed:
        assert region in regions, f"{kind} priced for {region}, where the stack cannot run"
        assert isinstance(price, float) and price > 0, (kind, region, price)
    # Lambda is priced only where both its parts are.
    assert set(shipped["lambda"]["gbSecondX86"]) == set(shipped["lambda"]["request"])
    for use in prices.USES:
        for region, by_type in shipped["sagemaker"][use].items():
            assert all(re.fullmatch(r"ml\.[a-z0-9-]+\.[a-z0-9]+", name) for name in by_type)
            assert all(prices.hourly_price(name, region, use) == price for name, price in by_type.items())


def test_a_default_run_is_priced_item_by_item_with_the_shipped_table(monkeypatch):
    """The default instance types (Pulumi.yaml) in the default region, priced by infra/prices.json itself:
    every item has a price, so the total is not a lower bound."""
    import yaml

    monkeypatch.delenv(prices.PRICES_VARIABLE, raising=False)
    prices.price_table.cache_clear()
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    training_type = config["sagestep:trainingInstanceType"]["default"]
    transform_type = config["sagestep:transformInstanceType"]["default"]
    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    try:
        result = cost.run_cost("us-east-1", {
            "training": training_job(300, 300, instance_type=training_type),
            "transform": transform_job(start, start + timedelta(seconds=120), instance_type=transform_type)},
                               [(2.5, 1769), (0.4, 1769)], 14, lambda_architecture="arm64")
    finally:
        prices.price_table.cache_clear()
    assert [i["item"] for i in result["items"]] == ["training", "batch transform", "preprocess Lambda",
                                                    "state transitions"]
    assert all(i["usd"] is not None and i["usd"] > 0 for i in result["items"]), result["items"]
    assert not any("lower bound" in note or "no price" in note for note in result["notes"]), result["notes"]
    shipped = json.loads(prices.PRICES.read_text())
    assert item(result, "training")["usd"] == pytest.approx(
        shipped["sagemaker"]["training"]["us-east-1"][training_type] * 300 / 3600)
    assert item(result, "batch transform")["usd"] == pytest.approx(
        shipped["sagemaker"]["transform"]["us-east-1"][transform_type] * 120 / 3600)
    assert result["prices"] == {"source": shipped["source"], "date": shipped["date"]}


def test_a_local_spot_training_job_reports_its_training_and_billable_seconds():
    """Spot (the case with a discount to leave out); every other run of the suite trains on demand."""
    synthesis = synthesize("dev", {"useSpotTraining": True})
    with LocalEngine(synthesis) as engine:
        sfn = engine.client("stepfunctions")
        execution_input = {"datasetUri": engine.upload_dataset(ROOT / "examples/iris.csv"), "labelColumn": "species"}
        arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name="cost",
                                  input=json.dumps(execution_input))["executionArn"]
        description, _ = follow(sfn, arn, timeout_seconds=300)
        assert description["status"] == "SUCCEEDED", (description.get("error"), description.get("cause"))
        output = json.loads(description["output"])
        sagemaker = engine.client("sagemaker")
        training = sagemaker.describe_training_job(TrainingJobName=output["trainingJobName"])
        transform = sagemaker.describe_transform_job(TransformJobName=output["transformJobName"])
    assert training["EnableManagedSpotTraining"] is True
    seconds = training["TrainingTimeInSeconds"]
    assert isinstance(seconds, int) and seconds > 0
    # No spot discount can be known locally: billable is the training time, spot or not.
    assert training["BillableTimeInSeconds"] == seconds
    # As on AWS, the instance time between TrainingStartTime and TrainingEndTime is what is billed.
    wall = (training["TrainingEndTime"] - training["TrainingStartTime"]).total_seconds()
    assert seconds - 1 <= wall <= seconds + 0.01
    assert transform["TransformStartTime"] < transform["TransformEndTime"]
    estimate = cost.run_cost(engine.region, {"training": training, "transform": transform}, estimate=True)
    assert [i["item"] for i in estimate["items"]] == ["training", "batch transform"]
    assert f"{seconds} s billable" in item(estimate, "training")["detail"]


def test_a_refused_describe_or_lambda_read_leaves_that_cost_out_and_says_so(table):
    """Only a job SageMaker does not know bills nothing; AccessDenied must not look like a free job."""
    from botocore.exceptions import ClientError

    from sagestep.record import attach_cost

    def refused(code):
        def call(**kwargs):
            raise ClientError({"Error": {"Code": code, "Message": "no"}}, "Describe")
        return call

    class Clients:
        def __call__(self, service):
            return self

        describe_training_job = staticmethod(refused("AccessDeniedException"))
        describe_transform_job = staticmethod(refused("ValidationException"))
        get_function_configuration = staticmethod(refused("AccessDeniedException"))

    start = datetime(2026, 1, 1, tzinfo=timezone.utc)
    events = [{"type": "TaskScheduled", "timestamp": start, "taskScheduledEventDetails": {
                  "resourceType": kind, "resource": resource, "parameters": json.dumps(parameters)}}
              for kind, resource, parameters in (
                  ("lambda", "invoke", {"FunctionName": "f"}),
                  ("sagemaker", "createTrainingJob.sync", {"TrainingJobName": "t"}),
                  ("sagemaker", "createTransformJob.sync", {"TransformJobName": "p"}))]
    events[1:1] = [{"type": "TaskStarted", "timestamp": start, "taskStartedEventDetails": {"resourceType": "lambda"}},
                   {"type": "TaskSucceeded", "timestamp": start + timedelta(seconds=1),
                    "taskSucceededEventDetails": {"resourceType": "lambda"}}]
    result = {}
    assert attach_cost(result, events, Clients(), REGION, estimate=False) == {}
    notes = result["cost"]["notes"]
    assert any(note.startswith("the training job's cost is left out: cannot describe t") for note in notes)
    assert not any("transform" in note for note in notes), "an unknown transform job was never created"
    assert any(note.startswith("the Lambda's cost is left out") for note in notes)
