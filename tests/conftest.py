import asyncio
import json

import pytest

from sagestep.synth import Synthesis, synthesize

# Pulumi's runtime needs a current asyncio event loop when resources are built; pytest's main thread has none.
asyncio.set_event_loop(asyncio.new_event_loop())


@pytest.fixture(scope="session")
def stack() -> Synthesis:
    """The default stack, synthesized once."""
    return synthesize("dev", {})


@pytest.fixture(scope="session")
def definition(stack) -> dict:
    return json.loads(stack.definition)


def statements_by_sid(document: dict) -> dict[str, dict]:
    sids = [s["Sid"] for s in document["Statement"]]
    assert len(sids) == len(set(sids)), f"duplicate Sids in {sids}"
    return {s["Sid"]: s for s in document["Statement"]}
