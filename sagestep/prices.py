"""`sagestep prices refresh`: rebuild the SageMaker part of infra/prices.json from the AWS Price List API.

The shipped table is sparse (docs/cost.md says what it lacks); anyone with credentials that may call
`pricing:GetProducts` regenerates it whole. A product of service AmazonSageMaker is one JSON string of
PriceList (https://docs.aws.amazon.com/aws-cost-management/latest/APIReference/API_pricing_GetProducts.html):
`{"product": {"productFamily": "ML Instance", "attributes": {"regionCode", "usagetype", "instanceName",
"locationType", ...}, "sku"}, "terms": {"OnDemand": {<offer>: {"priceDimensions": {<rate>: {"unit": "Hrs",
"pricePerUnit": {"USD": "0.23"}}}}}}}`. The use is read from the usage type, as AWS bills it:
`USE1-Train:ml.m5.xlarge` is training, `USE1-Tsform:ml.m5.large` batch transform (the same usage types
appear in AWS bills and in the ec2instances.info SageMaker scraper, github.com/vantage-sh/ec2instances.info).
The Lambda and Step Functions sections are kept as they are.
"""
from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import date
from pathlib import Path
from typing import Iterable, Iterator

from infra import prices

from .errors import UsageError

SERVICE_CODE = "AmazonSageMaker"
PRODUCT_FAMILY = "ML Instance"
# The Price List API answers only in us-east-1 (and ap-south-1); the prices it returns are every region's.
PRICING_REGION = "us-east-1"
# Optional region prefix ("USE1-", "EUW1-"), the use, then the instance type. Spot ("Train-Spot:") and every
# other use (Host, Notebk, Processing, AsyncInf, ...) do not match.
USAGE_TYPE = re.compile(r"^(?:[A-Z0-9]+-)?(?P<use>Train|Tsform):(?P<instance>ml\.[a-z0-9-]+\.[a-z0-9]+)$")
USES = {"Train": "training", "Tsform": "transform"}
SOURCE = ("SageMaker training and batch transform, {regions}: the AWS Price List API (pricing:GetProducts, "
          "ServiceCode AmazonSageMaker, productFamily ML Instance, on-demand \"Hrs\" rates of the usage types "
          "<region>-Train:ml.* and <region>-Tsform:ml.*, https://docs.aws.amazon.com/aws-cost-management/latest/"
          "APIReference/API_pricing_GetProducts.html), read by `sagestep prices refresh` on {day}")


class PriceListError(UsageError):
    """The price list could not be read, or not understood: one line, exit 2, nothing written."""


def filters(region: str | None) -> list[dict]:
    """GetProducts filters: SageMaker's instance products, of one region when given."""
    terms = [("productFamily", PRODUCT_FAMILY)] + ([("regionCode", region)] if region else [])
    return [{"Type": "TERM_MATCH", "Field": field, "Value": value} for field, value in terms]


def price_list(client, region: str | None) -> Iterator[str]:
    """Every PriceList string of one region (all regions when None), page after page."""
    request = {"ServiceCode": SERVICE_CODE, "Filters": filters(region), "FormatVersion": "aws_v1"}
    while True:
        page = client.get_products(**request)
        yield from page.get("PriceList", [])
        if not page.get("NextToken"):
            return
        request["NextToken"] = page["NextToken"]


def parse_product(text: str) -> tuple[str, str, str, float] | None:
    """(use, region, instance type, on-demand $/h) of one PriceList string, or None for a product that is
    not an on-demand training or batch-transform instance in an AWS Region."""
    try:
        item = json.loads(text)
        product = item["product"]
        attributes = product["attributes"]
        usage = USAGE_TYPE.match(attributes["usagetype"])
        if not usage or attributes.get("locationType", "AWS Region") != "AWS Region":
            return None
        region = attributes["regionCode"]
        on_demand = item["terms"].get("OnDemand", {})
        rates = {float(dimension["pricePerUnit"]["USD"]) for term in on_demand.values()
                 for dimension in term["priceDimensions"].values() if dimension.get("unit") == "Hrs"}
    except (ValueError, KeyError, TypeError, AttributeError) as error:
        raise PriceListError(f"an unexpected product shape in the AWS price list ({_sku(text)}): "
                             f"{type(error).__name__} {error}") from None
    if len(rates) != 1:
        raise PriceListError(f"an unexpected product shape in the AWS price list ({_sku(text)}): "
                             f"{len(rates)} on-demand hourly rates for {attributes['usagetype']}, not one")
    price = rates.pop()
    return (USES[usage["use"]], region, usage["instance"], price) if price > 0 else None


def _sku(text: str) -> str:
    try:
        return f"sku {json.loads(text)['product']['sku']}"
    except (ValueError, KeyError, TypeError):
        return f"{text[:60]!r}"


def sagemaker_prices(products: Iterable[str]) -> dict:
    """{"training": {region: {type: $/h}}, "transform": {...}}, sorted, from PriceList strings."""
    table: dict = {use: {} for use in prices.USES}
    for text in products:
        parsed = parse_product(text)
        if parsed:
            use, region, instance_type, price = parsed
            table[use].setdefault(region, {})[instance_type] = price
    return {use: {region: dict(sorted(by_type.items())) for region, by_type in sorted(by_region.items())}
            for use, by_region in table.items()}


def refreshed_table(base: dict, sagemaker: dict, day: date, regions: list[str]) -> dict:
    """base with the Price List's SageMaker prices, sources and date: every region's replaced, or, with
    regions named, only theirs (the others and their sources stay)."""
    if not any(sagemaker.values()):
        raise PriceListError("the AWS price list returned no SageMaker training or batch-transform price"
                             + (f" for {', '.join(regions)}" if regions else "") + "; nothing written")
    source = SOURCE.format(day=day.isoformat(), regions=", ".join(regions) if regions else "every region")
    if regions:
        sagemaker = {use: dict(sorted({**{region: by_type for region, by_type in base["sagemaker"][use].items()
                                          if region not in regions}, **sagemaker[use]}.items()))
                     for use in prices.USES}
    kept = [line for line in base["source"] if regions or not line.startswith("SageMaker")]
    return {**base, "source": [source, *kept], "date": day.isoformat(), "sagemaker": sagemaker}


def write_atomically(path: Path, table: dict) -> None:
    """Write to a temporary file beside path and rename it over path: a failure leaves path as it was."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w") as stream:
            json.dump(table, stream, indent=2)
            stream.write("\n")
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def fetch(client, regions: list[str]) -> dict:
    """The SageMaker section from the Price List API; each refusal as one line naming what is missing."""
    from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

    try:
        products = [text for region in (regions or [None]) for text in price_list(client, region)]
    except NoCredentialsError:
        raise PriceListError("no AWS credentials: the Price List API needs a signed request (set AWS_PROFILE, "
                             "or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY)") from None
    except ClientError as error:
        code = error.response.get("Error", {}).get("Code", "")
        if code in ("AccessDeniedException", "AccessDenied"):
            raise PriceListError("AccessDenied: these credentials may not call pricing:GetProducts; allow that "
                                 "action (resource \"*\") to refresh the prices") from None
        raise PriceListError(f"the AWS Price List API refused GetProducts: {code or 'error'}: "
                             f"{error.response.get('Error', {}).get('Message', error)}") from None
    except BotoCoreError as error:
        raise PriceListError(f"the AWS Price List API could not be reached: {error}") from None
    return sagemaker_prices(products)


def _base(path: Path) -> dict:
    """The table whose Lambda and Step Functions sections the refreshed one keeps, checked before any call."""
    try:
        base = json.loads(path.read_text())
        if not (isinstance(base["source"], list) and all(isinstance(base["sagemaker"][use], dict)
                                                          for use in prices.USES)):
            raise ValueError("source or sagemaker of the wrong type")
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise PriceListError(f"{path}: not a price table in prices.json's shape ({type(error).__name__}: "
                             f"{error})") from None
    return base


def refresh(args, console) -> int:
    """`sagestep prices refresh [--out FILE] [--region R]...`."""
    import boto3

    out = Path(args.out) if args.out else prices.PRICES
    if not out.parent.is_dir():
        raise PriceListError(f"--out {args.out}: the folder {out.parent} does not exist")
    regions = list(dict.fromkeys(args.region or []))
    base = _base(out if out.is_file() else prices.PRICES)
    sagemaker = fetch(boto3.client("pricing", region_name=PRICING_REGION), regions)
    table = refreshed_table(base, sagemaker, date.today(), regions)
    write_atomically(out, table)
    counts = {use: sum(len(by_type) for by_type in sagemaker[use].values()) for use in prices.USES}
    console.print(f"wrote {out}: {counts['training']} training and {counts['transform']} batch-transform prices "
                  f"in {len(set(sagemaker['training']) | set(sagemaker['transform']))} regions "
                  f"(AWS Price List, {table['date']})", highlight=False)
    return 0
