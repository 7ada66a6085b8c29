"""What the CLI prints of a run, on AWS or on the embedded engine alike: live progress, the summary."""
from __future__ import annotations

import json
import re
import time
import uuid

from rich.console import Console
from rich.markup import escape

from .facts import hyperparameter_lines, round_cap_note
from .runner import json_object

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
CLI_TERMS = {"labelColumn": "--label", "splitRatios": "--split", "seed must": "--seed must", "idColumn": "--id",
             "ignoreColumns": "--ignore", "qualityThreshold must": "--quality-threshold must",
             "qualityMetric must": "--quality-metric must"}


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
        print_cost(result.get("cost"), console)
        for message in result.get("notifications") or []:
            console.print("notification (the stack's SNS topic, to notifyEmails):", highlight=False)
            fields = json_object(message) or {"message": message}
            console.print("\n".join(f"  {key}: {escape(str(value))}" for key, value in fields.items()), highlight=False,
                          soft_wrap=True)
        if result.get("report"):
            console.print(f"report: {result['report']}", highlight=False, soft_wrap=True)
    return 0 if result["status"] == "SUCCEEDED" else 1


def print_cost(cost: dict | None, console: Console) -> None:
    """The run's cost, item by item, and what it leaves out."""
    if not cost or cost.get("usd") is None:
        return
    label = " (an estimate at AWS prices from local timings)" if cost.get("estimate") else ""
    console.print(f"cost: ${cost['usd']:.4f}{label}", highlight=False)
    for item in cost["items"]:
        usd = "no price" if item["usd"] is None else f"${item['usd']:.4f}"
        console.print(f"  {item['item']:18} {usd:>10}  {escape(item['detail'])}", highlight=False, soft_wrap=True)
    for note in cost.get("notes", []):
        if not note.startswith("an estimate"):
            console.print(f"  [dim]{escape(note)}[/]", highlight=False, soft_wrap=True)


def _number(value) -> str:
    return "n/a" if value is None else f"{value:.4f}"


MAX_CONFUSION_CLASSES = 10       # a larger confusion matrix is in the metrics file only


def print_evaluation(evaluation: dict, console: Console) -> None:
    """The test split's metrics beside the baseline's, the confusion matrix, and a warning when the model
    does not beat the baseline."""
    baseline = evaluation["baseline"]
    console.print(f"test split, {evaluation['rows']} rows: model vs baseline ({escape(baseline['name'])})",
                  highlight=False, soft_wrap=True)
    for name, value in evaluation["metrics"].items():
        mark = "  [yellow]not better[/]" if name in evaluation["behindBaseline"] else ""
        console.print(f"  {name:18} {_number(value):>8}   {_number(baseline['metrics'].get(name)):>8}{mark}",
                      highlight=False)
    matrix = evaluation.get("confusionMatrix")
    if matrix and len(matrix["classes"]) <= MAX_CONFUSION_CLASSES:
        names = [escape(str(name))[:12] for name in matrix["classes"]]
        console.print("  confusion matrix (rows: actual, columns: predicted)", highlight=False)
        console.print("  " + " " * 13 + "".join(f"{name:>13}" for name in names), highlight=False, soft_wrap=True)
        for name, row in zip(names, matrix["actualByPredicted"]):
            console.print(f"  {name:13}" + "".join(f"{count:>13}" for count in row), highlight=False, soft_wrap=True)
    if not evaluation["beatsBaseline"]:
        console.print(f"[yellow bold]⚠ the model does not beat the baseline on {', '.join(evaluation['behindBaseline'])}"
                      "[/][yellow]: it has learnt no more than the label's distribution; check the features, "
                      "the label and the hyperparameters before using it[/]", highlight=False, soft_wrap=True)


def print_trained(result: dict, console: Console) -> None:
    """What the run trained on and how training went, as far as it got (a run stopped at the gate got this far):
    the rows, the columns left out, the final validation metrics, the gate, the hyperparameters, a round-cap note."""
    left_out = [f"{column['name']} ({in_cli_terms({'cause': column['reason']})['cause']})"
                for column in result.get("ignoredColumns", [])]
    if left_out:
        console.print(f"left out of the features: {escape(', '.join(left_out))}", highlight=False, soft_wrap=True)
    for name, value in sorted(result["metrics"].items()):
        if not name.startswith("test:"):
            console.print(f"  {name:22} {value:.4f}")
    gate = result.get("gate") or {}
    if gate.get("passed"):
        console.print(f"quality gate passed: {gate['metric']} = {gate['value']:.4f}, needs {gate['comparison']} "
                      f"{gate['threshold']}", highlight=False)
    for line in hyperparameter_lines(result.get("hyperparameters") or {}):
        console.print(escape(line), highlight=False, soft_wrap=True)
    note = round_cap_note(result.get("hyperparameters"), result.get("curves"))
    if note:
        console.print(f"[yellow]note: {escape(note)}[/]", highlight=False, soft_wrap=True)


def print_tuning(tuning: dict | None, console: Console) -> None:
    """A tuned run's trials: each one's tuned values, objective and status, the best marked."""
    if not tuning:
        return
    objective = tuning.get("objective") or {}
    trials = tuning.get("trials")
    console.print(f"tuning job {tuning['job']}: {objective.get('MetricName')} ({objective.get('Type')}), best "
                  f"{tuning.get('best') or 'none'}", highlight=False, soft_wrap=True)
    if isinstance(trials, dict):
        console.print(f"  [yellow]{escape(trials['error'])}[/]", highlight=False, soft_wrap=True)
        return
    for trial in trials or []:
        values = ", ".join(f"{name}={value}" for name, value in sorted(trial["hyperparameters"].items()))
        mark = "  ← best" if trial["name"] == tuning.get("best") else ""
        console.print(f"  {trial['name'].rsplit('-', 2)[-2]}  {_number(trial['objective']):>8}  {trial['status']:10}"
                      f"  {escape(values)}{mark}", highlight=False, soft_wrap=True)


def print_summary(result: dict, console: Console) -> None:
    if result["status"] == "SUCCEEDED":
        items = result.get("shards") or 1
        console.print(f"[green bold]SUCCEEDED[/] rows {result.get('rows')}"
                      + (f" from {items} work items (shards and byte ranges)" if items > 1 else ""))
        print_trained(result, console)
        print_tuning(result.get("tuning"), console)
        if result.get("evaluation"):
            print_evaluation(result["evaluation"], console)
        for name, points in result.get("curves", {}).items():
            if isinstance(points, list) and points:
                every = max(1, len(points) // 10)
                shown = " ".join(f"{value:.4f}" for value in points[::every])
                console.print(f"{name}: {len(points)} points scraped from the log by the image's definition "
                              f"(every {every}): {shown}", highlight=False, soft_wrap=True)
        for name, label in (("predictions", "predictions"), ("metrics", "metrics"), ("modelArtifact", "model")):
            if result["outputs"].get(name):
                console.print(f"{label}: {result['outputs'][name]}", highlight=False, soft_wrap=True)
        for name, label in (("trainingJobConsole", "training job"), ("tuningJobConsole", "tuning job"),
                            ("modelGroupConsole", "model group")):
            if result["outputs"].get(name):
                console.print(f"{label}: {result['outputs'][name]}", highlight=False, soft_wrap=True)
        registered = result.get("registered")
        if registered:
            console.print(f"registered: {registered['group']} version {registered['version']} ({registered['status']}); "
                          "sagestep models lists, approves and rejects the versions", highlight=False, soft_wrap=True)
    else:
        console.print(f"[red bold]{result['status']}[/] at {result.get('failedState')}: "
                      f"[bold]{escape(str(result['error']))}[/]: {escape(str(result['cause']))}", highlight=False)
        job = result.get("failedJob")
        if job:
            console.print(f"last lines of {job['name']} in {job['logGroup']}:", highlight=False)
            for line in job.get("logTail", []):
                console.print(f"  {escape(line)}", highlight=False, soft_wrap=True)
            where = job.get("console") or job.get("log")          # AWS's console, or a local run's file
            if where:
                console.print(f"log: {where}", highlight=False, soft_wrap=True)
        if result.get("rows"):
            console.print(f"before it stopped: rows {result['rows']}", highlight=False)
            print_trained(result, console)
