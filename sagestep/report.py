"""What the CLI prints of a run, on AWS or on the embedded engine alike: live progress, the summary."""
from __future__ import annotations

import json
import re
import time
import uuid

from rich.console import Console
from rich.markup import escape

ROUND = re.compile(r"^\[(\d+)\]\s")


def execution_name(kind: str = "local") -> str:
    return f"{kind}-{time.strftime('%Y%m%d-%H%M%S')}-{uuid.uuid4().hex[:6]}"


class Reporter:
    """Live progress in the terminal: each state as it starts and ends, the training metrics."""

    def __init__(self, console: Console, quiet: bool):
        self.console, self.quiet = console, quiet

    def state(self, run) -> None:
        if self.quiet:
            return
        if run.ended is None:
            self.console.print(f"[bold]▶ {run.name}[/]")
        else:
            mark = "[green]✓[/]" if run.status == "SUCCEEDED" else "[red]✗[/]"
            self.console.print(f"{mark} {run.name} [dim]{run.seconds:.2f} s[/]")

    def line(self, job: str, line: str) -> None:
        """Every tenth round of the training log. The rest (the image's launcher logs its environment
        and pip install) is in the job's CloudWatch log, and its last lines show if the job fails."""
        match = ROUND.match(line)
        if self.quiet or not match or int(match.group(1)) % 10:
            return
        shown = escape(line.replace("\t", "  "))
        self.console.print(f"  [dim]{job.rsplit('-', 2)[-2]}[/] {shown}", highlight=False, soft_wrap=True)


# The execution input's fields, as the CLI's flags name them.
CLI_TERMS = {"labelColumn": "--label", "splitRatios": "--split", "seed must": "--seed must"}


def in_cli_terms(result: dict, local_paths: dict[str, str] | None = None) -> dict:
    """A failed run's message as the person at the command line said it: flags for input fields, the
    local file for the emulated S3 object it was uploaded to."""
    cause = result.get("cause")
    if isinstance(cause, str):
        for old, new in {**CLI_TERMS, **(local_paths or {})}.items():
            cause = cause.replace(old, new)
        result["cause"] = cause
    return result


def report(result: dict, as_json: bool, console: Console) -> int:
    """The --json object, or the summary; the exit code."""
    if as_json:
        print(json.dumps(result, default=str))
    else:
        print_summary(result, console)
    return 0 if result["status"] == "SUCCEEDED" else 1


def print_summary(result: dict, console: Console) -> None:
    if result["status"] == "SUCCEEDED":
        console.print(f"[green bold]SUCCEEDED[/] rows {result.get('rows')}")
        for name, value in sorted(result["metrics"].items()):
            console.print(f"  {name:22} {value:.4f}")
        for name, points in result.get("curves", {}).items():
            if isinstance(points, list) and points:
                every = max(1, len(points) // 10)
                shown = " ".join(f"{value:.4f}" for value in points[::every])
                console.print(f"{name}: {len(points)} points scraped from the log by the image's definition "
                              f"(every {every}): {shown}", highlight=False, soft_wrap=True)
        console.print(f"predictions: {result['outputs']['predictions']}", highlight=False)
        if result["outputs"].get("trainingJobConsole"):
            console.print(f"training job: {result['outputs']['trainingJobConsole']}", highlight=False)
    else:
        console.print(f"[red bold]{result['status']}[/] at {result.get('failedState')}: "
                      f"[bold]{escape(str(result['error']))}[/]: {escape(str(result['cause']))}", highlight=False)
        job = result.get("failedJob")
        if job:
            console.print(f"last lines of {job['name']} in {job['logGroup']}:", highlight=False)
            for line in job.get("logTail", []):
                console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
            if job.get("console"):
                console.print(f"log: {job['console']}", highlight=False, soft_wrap=True)
