"""What AWS does between an execution's end and an e-mail, for the embedded engine: Step Functions' status
change event, and EventBridge's input transformer applied to it for an SNS target."""
from __future__ import annotations

import json
from datetime import datetime


def status_change_event(execution_arn: str, state_machine_arn: str, name: str, status: str,
                        start: datetime | None, stop: datetime | None, error: str | None, cause: str | None) -> dict:
    """The "Step Functions Execution Status Change" event's detail (times in epoch milliseconds, as AWS's)."""
    def millis(moment: datetime | None) -> int | None:
        return None if moment is None else int(moment.timestamp() * 1000)
    detail = {"executionArn": execution_arn, "stateMachineArn": state_machine_arn, "name": name, "status": status,
              "startDate": millis(start), "stopDate": millis(stop)}
    if error is not None:
        detail.update(error=error, cause=cause)
    return detail


def _at(event: dict, path: str):
    """The value a simple "$.a.b" path names, or None."""
    value = event
    for part in path.removeprefix("$.").split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


def transformed(input_paths: dict[str, str], template: str, event: dict) -> str:
    """EventBridge's input transformer for a JSON-string template: each <name> becomes its path's value,
    escaped to stay inside the string (an absent path gives an empty text); SNS then sends the string."""
    text = template
    for name, path in input_paths.items():
        value = _at(event, path)
        shown = "" if value is None else value if isinstance(value, str) else json.dumps(value)
        text = text.replace(f"<{name}>", json.dumps(shown)[1:-1])
    return json.loads(text) if text.startswith('"') else text
