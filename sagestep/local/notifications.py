"""What AWS does between an execution's end and an e-mail, for the embedded engine: Step Functions' status
change event, and EventBridge's input transformer applied to it for an SNS target."""
from __future__ import annotations

import json
import re
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


PLACEHOLDER = re.compile(r'"|<([A-Za-z0-9_.-]+)>')


def transformed(input_paths: dict[str, str], template: str, event: dict) -> str:
    """EventBridge's input transformer for a JSON-object template: a <name> outside quotes becomes its
    path's value as JSON (a string quoted and escaped; null when the path is absent), one inside a quoted
    string its text as is. SNS sends the resulting text."""
    values = {name: _at(event, path) for name, path in input_paths.items()}
    out, inside, last = [], False, 0
    for match in PLACEHOLDER.finditer(template):
        out.append(template[last:match.start()])
        last = match.end()
        name = match.group(1)
        if name is None:
            escaped = match.start() > 0 and template[match.start() - 1] == "\\"
            inside = inside if escaped else not inside
            out.append('"')
        elif name not in values:
            out.append(match.group(0))
        elif inside:
            out.append("" if values[name] is None else str(values[name]))
        else:
            out.append(json.dumps(values[name]))
    return "".join(out) + template[last:]
