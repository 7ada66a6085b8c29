"""What a run costs at AWS on-demand prices, item by item, from what AWS bills each item by.

The prices come from the stack's table (infra/prices.json, with its sources and date), so a run is priced
the same way offline, locally and on AWS. A price the table lacks leaves its item unpriced
(`"usd": None`) and says which one, rather than guessing: the total is then a lower bound.
"""
from __future__ import annotations

import math
from typing import Iterable

from infra import prices
from statemachine import jobs as pipeline_jobs
from statemachine.step import JobUse

TRANSITIONS_PRICED_PER = 1000         # how AWS quotes Step Functions Standard


def run_cost(region: str, jobs: dict[str, dict] | None = None,
             lambda_invocations: Iterable[tuple[float, int]] = (), state_transitions: int | None = None,
             estimate: bool = False, lambda_architecture: str = "x86_64") -> dict:
    """{"usd", "items", "estimate", "prices", "notes"} of one run. jobs: the run's Describe responses by Job kind,
    each priced by its step's Job.cost, in the pipeline's order; lambda_invocations (seconds, memory MB) pairs;
    whatever is missing (a run that failed before a job) leaves its item out. estimate: a local run, priced at AWS
    prices from local timings."""
    notes = ["an estimate at AWS prices from local timings"] if estimate else []
    items = []
    for job in pipeline_jobs():
        use = job.cost((jobs or {})[job.kind], estimate) if job.cost and (jobs or {}).get(job.kind) else None
        if use:
            items.append(_job_item(use, region, notes))
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


def _job_item(use: JobUse, region: str, notes: list[str]) -> dict:
    """A job's instances × its billable seconds at its use's hourly price; unpriced (and why) when it reports none."""
    notes += use.notes
    detail = f"{use.instance_type} x{use.count}, {use.detail}"
    if use.seconds is None:
        notes.append(f"{use.label}: {use.missing}")
        return _item(use.label, detail, None)
    return _priced(use.label, detail, use.instance_type, region, use.use, use.seconds * use.count, notes)


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
