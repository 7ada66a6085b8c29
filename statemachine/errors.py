"""Catch and Fail plumbing shared by every Task state."""
from __future__ import annotations


def fail_state_name(step: str) -> str:
    return f"{step}Failed"


def catch_all(step: str) -> list[dict]:
    """Send any error of the step to its own Fail state, keeping the original error under $.error."""
    return [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": fail_state_name(step)}]


def fail_state(step: str) -> dict:
    """A Fail state naming the stage; the cause carries the caught {Error, Cause} as JSON.

    A static Error plus CausePath: re-raising a caught States.* name through ErrorPath is not
    allowed (custom error names must not start with "States.").
    """
    return {
        "Type": "Fail",
        "Comment": f"The {step} step failed; Cause holds the original error and message.",
        "Error": fail_state_name(step),
        "CausePath": "States.JsonToString($.error)",
    }
