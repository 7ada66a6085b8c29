"""`sagestep runs`: the stack's recent executions at a glance, on AWS or on `sagestep local serve` alike."""
from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

from botocore.exceptions import BotoCoreError, ClientError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.measure import Measurement
from rich.table import Table

from .errors import aws_failure
from .runner import failed_state, json_object, progress_of
from .start import STATE_MACHINE_ARN, clients_in, state_machine_arn

MAX_LAST = 1000           # ListExecutions' largest page (and `--last`'s bound in cli.py): one call lists them all
# Each listed run costs one more call (DescribeExecution or the history): a few at once, well under
# Step Functions' throttles, so --last 1000 is not a thousand round trips in a row.
READERS = 4
STATUS_STYLE = {"SUCCEEDED": "green", "RUNNING": "yellow", "FAILED": "red", "TIMED_OUT": "red", "ABORTED": "red"}


def runs(args, console: Console) -> int:
    """The table (or the --json object) of the last --last executions, newest first."""
    arn = state_machine_arn(args.state_machine_arn)
    sfn = clients_in(STATE_MACHINE_ARN.match(arn).group(1))("stepfunctions")
    try:
        executions = list_executions(sfn, arn, args.last)
        now = datetime.now(timezone.utc)
        with ThreadPoolExecutor(max_workers=READERS) as pool:
            found = list(pool.map(lambda execution: run_of(sfn, execution, now), executions))
    except (ClientError, BotoCoreError) as error:
        raise aws_failure(f"cannot list the executions of {arn}", "Step Functions", error) from None
    if args.json:
        print(json.dumps({"stateMachineArn": arn, "runs": found}))
    elif not found:
        console.print(f"no executions of {arn} yet", highlight=False, soft_wrap=True)
    else:
        print_runs(arn, found, console)
    return 0


def list_executions(sfn, arn: str, last: int) -> list[dict]:
    """ListExecutions, page after page, until `last` of them: the API answers newest first."""
    pages = sfn.get_paginator("list_executions").paginate(
        stateMachineArn=arn, PaginationConfig={"MaxItems": last, "PageSize": min(last, MAX_LAST)})
    return [execution for page in pages for execution in page["executions"]][:last]


def run_of(sfn, execution: dict, now: datetime) -> dict:
    """One row: a succeeded run's metric from its output (DescribeExecution); a run that ended
    otherwise, where it ended and what metric it got that far (its history); a running one, nothing more."""
    started, stopped = execution["startDate"], execution.get("stopDate")
    run = {"name": execution["name"], "executionArn": execution["executionArn"], "status": execution["status"],
           "start": started.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
           # max: the caller's clock may lag AWS's a little while the run is young.
           "seconds": max(0.0, round(((stopped or now) - started).total_seconds(), 3)),
           "metric": None, "failedState": None}
    if run["status"] == "SUCCEEDED":
        output = json_object(sfn.describe_execution(executionArn=run["executionArn"]).get("output"))
        run["metric"] = final_metric(output.get("metrics"), (output.get("gate") or {}).get("metric"))
    elif run["status"] != "RUNNING":
        events = [event for page in sfn.get_paginator("get_execution_history").paginate(
            executionArn=run["executionArn"]) for event in page["events"]]
        run["failedState"] = failed_state(progress_of(events).states)        # as `local` and `start` name it
        run["metric"] = metric_so_far(events)
    return run


def metric_so_far(events: list[dict]) -> dict | None:
    """A failed run's final metric, if its training got that far: the last state output that carries the
    job's final metrics (TrainingResult's, on to the state that failed)."""
    for event in reversed(events):
        output = json_object((event.get("stateExitedEventDetails") or {}).get("output"))
        training = output.get("training")
        if isinstance(training, dict) and isinstance(training.get("finalMetrics"), list):
            gate = ((output.get("run") or {}).get("gate") or {}).get("metric")
            return final_metric(training["finalMetrics"], gate)
    return None


def final_metric(metrics: list[dict] | None, preferred: str | None = None) -> dict | None:
    """The validation metric to show of the job's final metrics (which come in no fixed order): the one the
    quality gate judged, else the first validation metric by name."""
    named = [m for m in metrics or [] if isinstance(m, dict) and "MetricName" in m and "Value" in m]
    candidates = [m for m in named if m["MetricName"].startswith("validation:")] or named
    chosen = next((m for m in candidates if m["MetricName"] == preferred), None) or min(
        candidates, key=lambda m: m["MetricName"], default=None)
    return {"name": chosen["MetricName"], "value": float(chosen["Value"])} if chosen else None


def duration(seconds: float) -> str:
    """Seconds for a short run, minutes for a training job, hours for a long one."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, seconds = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def print_runs(arn: str, found: list[dict], console: Console) -> None:
    """The table. In a terminal it fits the width; piped to a file or a program, the table keeps its
    natural width, so that no row is wrapped or cut and each run is one line to grep."""
    name = arn.rsplit(":", 1)[1]
    table = Table(title=f"{escape(name)}: the {len(found)} most recent executions, newest first (times in UTC)",
                  box=box.SIMPLE_HEAD, show_edge=False, collapse_padding=True, pad_edge=False)
    # A narrow terminal folds the name, the metric and the failed state; the other columns keep their width.
    for column, justify, min_width in (("name", "left", 8), ("status", "left", 9), ("start", "left", 19),
                                       ("duration", "right", 8), ("metric", "left", 8), ("value", "right", 6),
                                       ("failed state", "left", 6)):
        table.add_column(column, justify=justify, overflow="fold", min_width=min_width)
    for run in found:
        metric = run["metric"]
        so_far = " so far" if run["status"] == "RUNNING" else ""
        table.add_row(escape(run["name"]), f"[{STATUS_STYLE.get(run['status'], 'bold')}]{run['status']}[/]",
                      run["start"].replace("T", " ").rstrip("Z"), duration(run["seconds"]) + so_far,
                      escape(metric["name"]) if metric else "-", f"{metric['value']:.4f}" if metric else "-",
                      escape(run["failedState"] or "-"))
    if not console.is_terminal:
        natural = Measurement.get(console, console.options.update_width(10_000), table).maximum
        console = Console(file=console.file, width=max(console.width, natural), soft_wrap=True)
    console.print(table, highlight=False)
