"""What a run costs at AWS on-demand prices, item by item, from what AWS bills each item by.

The prices come from the stack's table (infra/prices.json, with its sources and date), so a run is priced
the same way offline, locally and on AWS. A price the table lacks leaves its item unpriced
(`"usd": None`) and says which one, rather than guessing: the total is then a lower bound.
"""
from __future__ import annotations

import math
from datetime import datetime, timezone
from typing import Iterable

from infra import prices

TRANSITIONS_PRICED_PER = 1000         # how AWS quotes Step Functions Standard


def run_cost(region: str, training_job: dict | None = None, transform_job: dict | None = None,
             lambda_invocations: Iterable[tuple[float, int]] = (), state_transitions: int | None = None,
             estimate: bool = False, lambda_architecture: str = "x86_64", tuning_trials: list[dict] | None = None) -> dict:
    """{"usd", "items", "estimate", "prices", "notes"} of one run. training_job and transform_job are
    DescribeTrainingJob / DescribeTransformJob responses, lambda_invocations (seconds, memory MB) pairs;
    tuning_trials the DescribeTrainingJob of every trial of a tuned run (the best one among them, so its
    training_job is not priced again); whatever is missing (a run that failed before a job) leaves its item
    out. estimate: a local run, priced at AWS prices from local timings."""
    notes = ["an estimate at AWS prices from local timings"] if estimate else []
    items = []
    if tuning_trials:
        items.append(_tuning_item(tuning_trials, region, notes))
    elif training_job:
        items.append(_training_item(training_job, region, estimate, notes))
    if transform_job:
        items.append(_transform_item(transform_job, region, notes))
    invocations = list(lambda_invocations)
    if invocations:
        items.append(_lambda_item(invocations, region, lambda_architecture, notes))
    if state_transitions is not None:
        items.append(_transitions_item(state_transitions, region, notes))
    unpriced = [item["item"] for item in items if item["usd"] is None]
    if unpriced:
        notes.append(f"the total is a lower bound: it leaves out {', '.join(unpriced)}")
    table = prices.price_table()
    return {"usd": round(sum(item["usd"] or 0.0 for item in items), 4), "items": items, "estimate": estimate,
            "prices": {"source": table["source"], "date": table["date"]}, "notes": notes}


def instance_price_lines(training_type: str, training_count: int, transform_type: str, transform_count: int,
                         region: str) -> list[str]:
    """`sagestep synth --summary`: what each job's instances cost by the hour, where the instance type
    is chosen, before anything runs."""
    return [_instance_line("training", "training", training_type, training_count, region),
            _instance_line("batch transform", "transform", transform_type, transform_count, region)]


def _instance_line(label: str, use: str, instance_type: str, count: int, region: str) -> str:
    where = f"({region}, price table of {prices.price_table()['date']})"
    price = prices.hourly_price(instance_type, region, use)
    if price is None:
        return f"{label}: {instance_type} x{count}: {prices.missing_price(instance_type, region, use)} {where}"
    total = f" each ({prices.dollars(price * count)}/h in all)" if count > 1 else ""
    return f"{label}: {instance_type} x{count} at {prices.dollars(price)}/h{total} on demand {where}"


def _training_item(job: dict, region: str, estimate: bool, notes: list[str]) -> dict:
    """SageMaker bills BillableTimeInSeconds × instance count, per second; with managed spot the
    billable time is already the discounted one, so the saving shows against TrainingTimeInSeconds."""
    resources = job["ResourceConfig"]
    instance_type, count = resources["InstanceType"], resources["InstanceCount"]
    billable, trained = job.get("BillableTimeInSeconds"), job.get("TrainingTimeInSeconds")
    spot = ""
    if job.get("EnableManagedSpotTraining"):
        if estimate:
            spot = " (spot, priced as on demand)"
            notes.append("training used managed spot: a local run cannot know the spot discount, so its "
                         "billable time is the training time (on demand)")
        elif billable is not None and trained:
            spot = f" (spot, {round(100 * (1 - billable / trained))}% saved)"
        else:
            spot = " (spot)"
    if billable is None:
        notes.append("training: the job reports no billable time (it may never have started)")
        return _item("training", f"{instance_type} x{count}, no billable time{spot}", None)
    return _priced("training", f"{instance_type} x{count}, {billable} s billable{spot}", instance_type,
                   region, "training", billable * count, notes)


def _tuning_item(trials: list[dict], region: str, notes: list[str]) -> dict:
    """A tuning job bills nothing of its own: each trial is a training job, billed as one (its billable seconds ×
    its instances). Every trial shares the tuning job's instance type."""
    resources = trials[0]["ResourceConfig"]
    instance_type, count = resources["InstanceType"], resources["InstanceCount"]
    seconds = sum(trial.get("BillableTimeInSeconds") or 0 for trial in trials)
    label = f"tuning ({len(trials)} trial{'s' if len(trials) > 1 else ''})"
    return _priced(label, f"{instance_type} x{count}, {seconds} s billable in all", instance_type, region, "training",
                   seconds * count, notes)


def _transform_item(job: dict, region: str, notes: list[str]) -> dict:
    """Batch transform bills its instances from TransformStartTime to TransformEndTime, per second."""
    resources = job["TransformResources"]
    instance_type, count = resources["InstanceType"], resources["InstanceCount"]
    if not (job.get("TransformStartTime") and job.get("TransformEndTime")):
        notes.append("batch transform: the job reports no start and end time (it may never have started)")
        return _item("batch transform", f"{instance_type} x{count}, no start and end time", None)
    seconds = math.ceil((_instant(job["TransformEndTime"]) - _instant(job["TransformStartTime"])).total_seconds())
    return _priced("batch transform", f"{instance_type} x{count}, {seconds} s", instance_type, region,
                   "transform", seconds * count, notes)


def _priced(label: str, detail: str, instance_type: str, region: str, use: str, instance_seconds: float,
            notes: list[str]) -> dict:
    price = prices.hourly_price(instance_type, region, use)
    if price is None:
        notes.append(_unpriced(label, prices.missing_price(instance_type, region, use)))
        return _item(label, f"{detail}, no price", None)
    return _item(label, f"{detail} at {prices.dollars(price)}/h", price * instance_seconds / 3600)


LAMBDA_DURATION_PRICES = {"x86_64": "gbSecondX86", "arm64": "gbSecondArm64"}    # Graviton is about 20% less


def _lambda_item(invocations: list[tuple[float, int]], region: str, architecture: str, notes: list[str]) -> dict:
    """Lambda bills each invocation's duration rounded up to the millisecond × memory/1024 (GB-seconds),
    at its architecture's price, plus a price per request."""
    billed_ms = [math.ceil(round(seconds * 1000, 6)) for seconds, _ in invocations]
    gb_seconds = sum(ms / 1000 * memory / 1024 for ms, (_, memory) in zip(billed_ms, invocations))
    memories = "/".join(str(memory) for memory in sorted({memory for _, memory in invocations}))
    detail = (f"{len(invocations)} invocation{'s' if len(invocations) > 1 else ''} at {memories} MB {architecture}, "
              f"{sum(billed_ms)} ms billed ({gb_seconds:.4f} GB-s)")
    lambda_prices = prices.price_table()["lambda"]
    per_gb_second = lambda_prices[LAMBDA_DURATION_PRICES[architecture]].get(region)
    per_request = lambda_prices["request"].get(region)
    if per_gb_second is None or per_request is None:
        notes.append(_unpriced("preprocess Lambda", f"no {architecture} price for {region}"))
        return _item("preprocess Lambda", f"{detail}, no price", None)
    rate = f"${per_gb_second:.10f}".rstrip("0")
    return _item("preprocess Lambda", f"{detail} at {rate}/GB-s + ${per_request * 1e6:.2f} per 1M requests",
                 gb_seconds * per_gb_second + len(invocations) * per_request)


def _transitions_item(transitions: int, region: str, notes: list[str]) -> dict:
    """Standard workflows bill every state transition, retries included."""
    price = prices.price_table()["stepFunctionsStandard"]["stateTransition"].get(region)
    detail = f"{transitions} transitions"
    if price is None:
        notes.append(_unpriced("state transitions", f"no price for {region}"))
        return _item("state transitions", f"{detail}, no price", None)
    return _item("state transitions",
                 f"{detail} at {prices.dollars(price * TRANSITIONS_PRICED_PER)} per {TRANSITIONS_PRICED_PER:,}",
                 transitions * price)


def _unpriced(label: str, missing: str) -> str:
    return f"{label}: {missing} in sagestep's price table of {prices.price_table()['date']}"


def _item(label: str, detail: str, usd: float | None) -> dict:
    return {"item": label, "detail": detail, "usd": None if usd is None else round(usd, 8)}


def _instant(value: datetime | int | float) -> datetime:
    """A Describe* timestamp as boto3 returns it (datetime) or as Step Functions hands a job document on
    (epoch milliseconds)."""
    return value if isinstance(value, datetime) else datetime.fromtimestamp(value / 1000, timezone.utc)
