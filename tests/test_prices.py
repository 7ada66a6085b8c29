"""The price table: the stack's default instance types are priced by the shipped table (a budget works on a
default stack), and `sagestep prices refresh` rebuilds its SageMaker part from the AWS Price List API.

The Price List responses go through botocore's Stubber, so every request and response is checked against
the pricing service's model. A product is one JSON string of PriceList in the shape AWS returns for
AmazonSageMaker (product.productFamily "ML Instance", product.attributes with regionCode, usagetype such as
USE1-Train:ml.m5.xlarge / USE1-Tsform:ml.m5.large, instanceName, locationType; terms.OnDemand.<offer>.
priceDimensions.<rate>.pricePerUnit.USD as a string): the attributes the ec2instances.info SageMaker scraper
reads from the offer file (github.com/vantage-sh/ec2instances.info, scrape/sagemaker.py) and the usage types
AWS bills under (USE1-Train:ml.g5.2xlarge, USE1-Tsform:ml.c5.9xlarge in public cost notes). The prices in
these stubs are made up: they test the parsing, not AWS's figures.
"""
from __future__ import annotations

import json
import math

import boto3
import pytest
import yaml
from botocore.stub import Stubber

from infra import prices
from sagestep import ROOT
from sagestep import prices as refresh
from sagestep.cli import main
from sagestep.synth import synthesize

REGION = "us-east-1"


def defaults() -> tuple[str, str]:
    """(training, transform) instance types Pulumi.yaml declares as the defaults."""
    config = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    return (config["sagestep:trainingInstanceType"]["default"], config["sagestep:transformInstanceType"]["default"])


@pytest.fixture
def shipped(monkeypatch):
    """The shipped table alone: no $SAGESTEP_PRICES overlay, no table cached from another test."""
    monkeypatch.delenv(prices.PRICES_VARIABLE, raising=False)
    prices.price_table.cache_clear()
    yield json.loads(prices.PRICES.read_text())
    prices.price_table.cache_clear()


def test_the_default_instance_types_are_priced_in_us_east_1(shipped):
    training, transform = defaults()
    assert prices.hourly_price(training, REGION, "training") is not None, f"no training price for {training}"
    assert prices.hourly_price(transform, REGION, "transform") is not None, f"no transform price for {transform}"


def test_every_shipped_sagemaker_price_is_named_by_a_source(shipped):
    """A figure with no source line naming its region (or the Price List's, for every region) is a guess; the
    table must hold none."""
    for use in prices.USES:
        for region in shipped["sagemaker"][use]:
            assert any(line.startswith("SageMaker") and (region in line or "every region" in line)
                       for line in shipped["source"]), (use, region)


def test_a_budget_works_on_a_default_stack(shipped):
    training, transform = defaults()
    unbudgeted = json.loads(synthesize("dev", {"aws:region": REGION}).definition)["States"]
    definition = json.loads(synthesize("budget", {"aws:region": REGION, "sagestep:maxRunCostUsd": "0.5"}).definition)
    training_cap, transform_cap = prices.budget_caps(0.5, training, 1, transform, 1, REGION)
    stopping = definition["States"]["Train"]["Parameters"]["StoppingCondition"]
    assert stopping["MaxRuntimeInSeconds"] == training_cap
    assert training_cap < unbudgeted["Train"]["Parameters"]["StoppingCondition"]["MaxRuntimeInSeconds"]
    assert definition["States"]["BatchPredict"]["TimeoutSeconds"] == transform_cap
    assert "TimeoutSeconds" not in unbudgeted["BatchPredict"]
    # The caps spend the budget at the shipped prices, 80% on training.
    spent = (training_cap * prices.hourly_price(training, REGION, "training")
             + transform_cap * prices.hourly_price(transform, REGION, "transform")) / 3600
    assert spent <= 0.5 and math.isclose(spent, 0.5, abs_tol=0.001)


# ---------------------------------------------------------------- sagestep prices refresh

def product(usagetype: str, price: str, region: str = REGION, sku: str = "SKU1", **attributes) -> str:
    instance = usagetype.split(":", 1)[1]
    document = {
        "product": {"productFamily": "ML Instance", "sku": sku, "attributes": {
            "servicecode": "AmazonSageMaker", "servicename": "Amazon SageMaker", "location": "US East (N. Virginia)",
            "locationType": "AWS Region", "regionCode": region, "instanceName": instance, "usagetype": usagetype,
            "operation": "RunInstance", "vCpu": "4", "memory": "16 GiB", **attributes}},
        "serviceCode": "AmazonSageMaker",
        "terms": {"OnDemand": {f"{sku}.JRTCKXETXF": {
            "offerTermCode": "JRTCKXETXF", "sku": sku, "effectiveDate": "2026-11-01T00:00:00Z", "termAttributes": {},
            "priceDimensions": {f"{sku}.JRTCKXETXF.6YS6EN2CT7": {
                "rateCode": f"{sku}.JRTCKXETXF.6YS6EN2CT7", "unit": "Hrs", "beginRange": "0", "endRange": "Inf",
                "description": f"${price} per unit", "appliesTo": [], "pricePerUnit": {"USD": price}}}}}},
        "version": "20261101000000", "publicationDate": "2026-11-01T00:00:00Z"}
    return json.dumps(document)


def request(region: str | None = None, token: str | None = None) -> dict:
    return {"ServiceCode": "AmazonSageMaker", "Filters": refresh.filters(region), "FormatVersion": "aws_v1",
            **({"NextToken": token} if token else {})}


@pytest.fixture
def pricing(monkeypatch):
    """A pricing client whose answers the test stubs, handed to `sagestep prices refresh`."""
    client = boto3.client("pricing", region_name="us-east-1", aws_access_key_id="testing",
                          aws_secret_access_key="testing")
    monkeypatch.setattr(boto3, "client", lambda service, region_name=None: client)
    with Stubber(client) as stubber:
        yield stubber
        stubber.assert_no_pending_responses()


def page(items: list[str], token: str | None = None) -> dict:
    return {"FormatVersion": "aws_v1", "PriceList": items, **({"NextToken": token} if token else {})}


def test_training_and_transform_are_told_apart_by_usage_type_and_other_uses_left_out():
    table = refresh.sagemaker_prices([
        product("USE1-Train:ml.m5.xlarge", "0.5000000000", sku="A"),
        product("USE1-Tsform:ml.m5.xlarge", "0.4000000000", sku="B"),
        product("USE1-Host:ml.m5.xlarge", "0.3000000000", sku="C"),
        product("USE1-Notebk:ml.m5.xlarge", "0.2000000000", sku="D"),
        product("USE1-Train-Spot:ml.m5.xlarge", "0.1000000000", sku="E"),
        product("EUW1-Train:ml.g5.xlarge", "2.0000000000", region="eu-west-1", sku="F"),
        product("USE1-Train:ml.m5.large", "0.6000000000", sku="G", locationType="AWS Outposts"),
    ])
    assert table == {"training": {"eu-west-1": {"ml.g5.xlarge": 2.0}, "us-east-1": {"ml.m5.xlarge": 0.5}},
                     "transform": {"us-east-1": {"ml.m5.xlarge": 0.4}}}


def test_refresh_reads_every_page_and_writes_the_table_keeping_lambda_and_step_functions(pricing, tmp_path, capsys):
    pricing.add_response("get_products", page([product("USE1-Train:ml.m5.xlarge", "0.5")], token="page-2"),
                         request())
    pricing.add_response("get_products", page([product("USE1-Tsform:ml.m5.large", "0.25", sku="B")]),
                         request(token="page-2"))
    out = tmp_path / "prices.json"
    assert main(["prices", "refresh", "--out", str(out)]) == 0
    written = json.loads(out.read_text())
    shipped = json.loads(prices.PRICES.read_text())
    assert written["sagemaker"] == {"training": {REGION: {"ml.m5.xlarge": 0.5}},
                                    "transform": {REGION: {"ml.m5.large": 0.25}}}
    assert written["lambda"] == shipped["lambda"]
    assert written["stepFunctionsStandard"] == shipped["stepFunctionsStandard"]
    assert "pricing:GetProducts" in written["source"][0] and written["date"] in written["source"][0]
    assert not any(line.startswith("SageMaker") for line in written["source"][1:]), "stale SageMaker sources"
    assert [path.name for path in tmp_path.iterdir()] == ["prices.json"]
    assert "1 training and 1 batch-transform prices in 1 regions" in capsys.readouterr().out


def test_refresh_of_one_region_keeps_the_others(pricing, tmp_path):
    out = tmp_path / "prices.json"
    out.write_text(prices.PRICES.read_text())
    pricing.add_response("get_products", page([product("EUW1-Train:ml.m5.xlarge", "0.75", region="eu-west-1")]),
                         request("eu-west-1"))
    assert main(["prices", "refresh", "--out", str(out), "--region", "eu-west-1"]) == 0
    written, shipped = json.loads(out.read_text()), json.loads(prices.PRICES.read_text())
    assert written["sagemaker"]["training"]["eu-west-1"] == {"ml.m5.xlarge": 0.75}
    assert "eu-west-1" not in written["sagemaker"]["transform"]
    assert written["sagemaker"]["training"][REGION] == shipped["sagemaker"]["training"][REGION]
    assert written["source"][1:] == shipped["source"]


def refused(tmp_path, capsys, argv=()) -> str:
    """Run refresh onto a file that exists; it must stay byte for byte, with no stray file beside it."""
    out = tmp_path / "prices.json"
    out.write_text(prices.PRICES.read_text())
    assert main(["prices", "refresh", "--out", str(out), *argv]) == 2
    assert out.read_text() == prices.PRICES.read_text()
    assert [path.name for path in tmp_path.iterdir()] == ["prices.json"]
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and error.startswith("sagestep prices: ")
    return error


def test_access_denied_names_the_action_to_allow(pricing, tmp_path, capsys):
    pricing.add_client_error("get_products", "AccessDeniedException", "User is not authorized", 400,
                             expected_params=request())
    error = refused(tmp_path, capsys)
    assert "AccessDenied" in error and "pricing:GetProducts" in error


def test_no_credentials_is_one_line(tmp_path, capsys, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    (tmp_path / "table").mkdir()
    assert "no AWS credentials" in refused(tmp_path / "table", capsys)


def test_an_unexpected_product_shape_is_named_and_nothing_written(pricing, tmp_path, capsys):
    broken = json.loads(product("USE1-Train:ml.m5.xlarge", "0.5", sku="BROKEN"))
    del broken["terms"]
    pricing.add_response("get_products", page([json.dumps(broken)]), request())
    error = refused(tmp_path, capsys)
    assert "unexpected product shape" in error and "sku BROKEN" in error


def test_a_price_list_without_training_or_transform_prices_writes_nothing(pricing, tmp_path, capsys):
    pricing.add_response("get_products", page([product("USE1-Host:ml.m5.xlarge", "0.3")]), request("eu-west-9"))
    assert "no SageMaker training or batch-transform price for eu-west-9" in refused(
        tmp_path, capsys, ["--region", "eu-west-9"])


def test_a_failed_write_leaves_the_file_as_it_was(tmp_path):
    out = tmp_path / "prices.json"
    out.write_text("{}\n")
    with pytest.raises(TypeError):
        refresh.write_atomically(out, {"sagemaker": object()})
    assert out.read_text() == "{}\n" and [path.name for path in tmp_path.iterdir()] == ["prices.json"]


def test_an_out_file_that_is_not_a_price_table_is_named_before_any_call(tmp_path, capsys):
    out = tmp_path / "prices.json"
    out.write_text("not json\n")
    assert main(["prices", "refresh", "--out", str(out)]) == 2
    error = capsys.readouterr().err
    assert error.startswith(f"sagestep prices: {out}: not a price table") and error.count("\n") == 1
    assert out.read_text() == "not json\n"
