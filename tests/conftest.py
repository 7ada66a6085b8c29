import asyncio
import json
import os

import boto3
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


def endpoint_env(ready: dict) -> dict:
    """The environment that points the AWS CLI and sagestep at a served stack (`sagestep local serve`'s ready line)."""
    return {**os.environ, "AWS_ENDPOINT_URL": ready["endpoint"], "AWS_ACCESS_KEY_ID": "local",
            "AWS_SECRET_ACCESS_KEY": "local", "AWS_DEFAULT_REGION": ready["region"],
            "SAGESTEP_STATE_MACHINE_ARN": ready["stateMachineArn"]}


def endpoint_client(ready: dict, service: str):
    return boto3.client(service, endpoint_url=ready["endpoint"], region_name=ready["region"],
                        aws_access_key_id="local", aws_secret_access_key="local")
