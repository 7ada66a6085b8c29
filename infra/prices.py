"""SageMaker, Lambda and Step Functions prices (prices.json beside this module, with its sources and date),
and the budget caps maxRunCostUsd sets from them. The stack owns them because `pulumi up` enforces the
budget; the tool prices a run's items with the same table (sagestep/cost.py).
"""
from __future__ import annotations

import json
import math
import os
from functools import lru_cache
from pathlib import Path

PRICES = Path(__file__).with_name("prices.json")
USES = ("training", "transform")      # SageMaker prices an instance type separately for each
PRICES_VARIABLE = "SAGESTEP_PRICES"     # a JSON file in prices.json's shape, laid over it (your own prices)


@lru_cache(maxsize=1)
def price_table() -> dict:
    """The shipped table, with the file $SAGESTEP_PRICES names (same shape) laid over it, region by region."""
    table = json.loads(PRICES.read_text())
    extra = os.environ.get(PRICES_VARIABLE)
    if extra:
        table = _overlay(table, json.loads(Path(extra).read_text()))
    return table


def _overlay(base: dict, extra: dict) -> dict:
    return {key: _overlay(base[key], value) if isinstance(value, dict) and isinstance(base.get(key), dict) else value
            for key, value in {**base, **extra}.items()}


TRAINING_SHARE = 0.8           # of a run's budget: the rest bounds batch prediction
MIN_TRAINING_SECONDS = 600     # a budget that cannot pay for this much training is refused


class BudgetTooSmall(ValueError):
    """maxRunCostUsd cannot pay for a useful run."""


class NoPrice(ValueError):
    """maxRunCostUsd cannot be enforced: the price table lacks an instance type's price."""


def budget_caps(budget_usd: float, training_type: str, training_count: int, transform_type: str,
                transform_count: int, region: str) -> tuple[int, int]:
    """(training seconds, batch prediction seconds) that keep a run's SageMaker instance time within
    budget_usd at on-demand prices: TRAINING_SHARE of it for training, the rest for batch prediction.
    Spot training only bills less; waiting for capacity is not billed."""
    training_price = hourly_price(training_type, region, "training")
    transform_price = hourly_price(transform_type, region, "transform")
    for price, instance_type, use in ((training_price, training_type, "training"),
                                      (transform_price, transform_type, "transform")):
        if price is None:
            raise NoPrice(f"a budget needs {use} prices and the price table has "
                                 f"{missing_price(instance_type, region, use)}; add it with ${PRICES_VARIABLE} "
                                 "(README, \"Cost of a run\")")
    # Whole seconds, rounded down (a float's last bit must not cost a second).
    training = math.floor(budget_usd * TRAINING_SHARE / (training_price * training_count) * 3600 + 1e-6)
    transform = math.floor(budget_usd * (1 - TRAINING_SHARE) / (transform_price * transform_count) * 3600 + 1e-6)
    if training < MIN_TRAINING_SECONDS:
        needed = MIN_TRAINING_SECONDS / 3600 * training_price * training_count / TRAINING_SHARE
        raise BudgetTooSmall(f"${budget_usd:g} pays for {training // 60} min of training on {training_type} "
                             f"x{training_count} ({dollars(training_price)}/h); at least "
                             f"{MIN_TRAINING_SECONDS // 60} min needs ${math.ceil(needed * 100) / 100:g}")
    return training, transform


def hourly_price(instance_type: str, region: str, use: str) -> float | None:
    """On-demand $/h of one instance for "training" or "transform" in region; None where the table has
    no such price (an unpriced type or region is reported, never guessed)."""
    if use not in USES:
        raise ValueError(f"use is one of {USES}, not {use!r}")
    return price_table()["sagemaker"][use].get(region, {}).get(instance_type)


def missing_price(instance_type: str, region: str, use: str) -> str:
    """Which price is missing: the region's altogether, or this instance type's in it."""
    if region not in price_table()["sagemaker"][use]:
        return f"no price for {region}"
    return f"no price for {instance_type} in {region}"


def dollars(amount: float) -> str:
    return f"${amount:g}"
