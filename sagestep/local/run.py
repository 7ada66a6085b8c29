"""`sagestep local DATASET` and `sagestep local serve`."""
from __future__ import annotations

import json
import re
import signal
import socket
import threading
import time
import uuid
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from sagestep.runner import attach_job_log, evaluate, follow, result_of
from sagestep.synth import synthesize

from .containers import download_prefix, split_s3_uri
from .engine import LocalEngine

DATASET_SUFFIXES = (".csv", ".gz", ".txt")
ROUND = re.compile(r"^\[(\d+)\]\s")


class UsageError(Exception):
    """A mistake in the command line: one line, exit 2."""


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
        """Every tenth round of the training log (and anything else the job prints)."""
        if self.quiet:
            return
        match = ROUND.match(line)
        if match and int(match.group(1)) % 10:
            return
        self.console.print(f"  [dim]{job.rsplit('-', 2)[-2]}[/] {escape(line.expandtabs(2))}",
                           highlight=False, soft_wrap=True)


def run_local(args, console: Console) -> int:
    dataset = args.dataset
    if not dataset.startswith("s3://"):
        path = Path(dataset)
        if not path.is_file():
            raise UsageError(f"{dataset}: no such file")
        if not path.name.lower().endswith(DATASET_SUFFIXES):
            raise UsageError(f"{dataset}: not a CSV file (expected .csv, .csv.gz or .txt)")
    reporter = Reporter(console, args.json)
    synthesis = synthesize(args.stack)
    with LocalEngine(synthesis, on_line=reporter.line) as engine:
        uri = dataset if dataset.startswith("s3://") else engine.upload_dataset(Path(dataset))
        sfn, s3 = engine.client("stepfunctions"), engine.client("s3")
        execution_input = {"datasetUri": uri, **({"labelColumn": args.label} if args.label else {})}
        name = execution_name()
        arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name=name,
                                  input=json.dumps(execution_input))["executionArn"]
        if not args.json:
            console.print(f"execution [bold]{name}[/] on {engine.state_machine_arn.split(':')[-1]} (embedded engine)")
        description, progress = follow(sfn, arn, reporter.state)
        result = result_of(description, progress)
        attach_job_log(result, engine.client("logs"), engine.region)
        if description["status"] == "SUCCEEDED":
            output = result.pop("output")
            out_dir = Path(args.out) if args.out else Path("runs") / name
            out_dir.mkdir(parents=True, exist_ok=True)
            predictions = download_prefix(s3, output["predictionsUri"], out_dir)
            labels = download_prefix(s3, output["testLabelsUri"], out_dir)
            bucket, key = split_s3_uri(output["schemaUri"])
            schema = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
            (out_dir / "schema.json").write_text(json.dumps(schema, indent=2))
            predicted = predictions[0].read_text().splitlines() if predictions else []
            truth = labels[0].read_text().splitlines() if labels else []
            result["metrics"].update(evaluate(schema["problem"], schema["label"]["classes"], predicted, truth))
            result["outputs"] = {"predictions": str(predictions[0]) if predictions else None,
                                 "testLabels": str(labels[0]) if labels else None, "schema": str(out_dir / "schema.json"),
                                 "trainingJob": output["trainingJobName"], "model": output["modelName"]}
    return report(result, args.json, console)


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
            console.print(f"log: {job['console']}", highlight=False, soft_wrap=True)


def serve(args, console: Console) -> int:
    from moto.server import ThreadedMotoServer

    with socket.socket() as probe:
        try:
            probe.bind((args.host, args.port))
        except OSError as error:
            raise UsageError(f"cannot listen on {args.host}:{args.port}: {error.strerror}") from None
        port = probe.getsockname()[1]                  # --port 0: a free one
    synthesis = synthesize(args.stack)
    with LocalEngine(synthesis) as engine:
        server = ThreadedMotoServer(ip_address=args.host, port=port, verbose=False)
        server.start()
        endpoint = f"http://{args.host}:{port}"
        print(json.dumps({"endpoint": endpoint, "stateMachineArn": engine.state_machine_arn,
                          "dataBucket": engine.data_bucket, "region": engine.region}), flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        server.stop()
    return 0


