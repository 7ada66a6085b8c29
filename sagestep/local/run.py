"""`sagestep local DATASET` and `sagestep local serve`."""
from __future__ import annotations

import json
import signal
import threading
from pathlib import Path

from rich.console import Console

from sagestep.checks import dataset_files, writable_folder
from sagestep.record import attach_cost, report_record
from sagestep.report import Reporter, execution_name, in_cli_terms, report
from sagestep.runner import (attach_curves, attach_evaluation, attach_job_log, attach_tuning, download_outputs,
                             download_schema, execution_input, follow, job_log, result_of)
from sagestep.synth import DEFAULT_STACK, synthesize_stack
from statemachine.framework import CLOUDWATCH_TAB

from . import moto_adapter
from .engine import LocalEngine


def run_local(args, console: Console) -> int:
    """The pipeline on the embedded engine (the CLI has checked the dataset and --out: sagestep.checks)."""
    dataset = args.dataset
    reporter = Reporter(console, args.json)
    synthesis = synthesize_stack(args.stack or DEFAULT_STACK)
    with LocalEngine(synthesis, on_line=reporter.line) as engine:
        path = Path(dataset)
        uri = dataset if dataset.startswith("s3://") else engine.upload_dataset(
            path, dataset_files(path) if path.is_dir() else None)
        sfn, s3 = engine.client("stepfunctions"), engine.client("s3")
        run_input = execution_input(uri, args)
        name = execution_name()
        out_dir = writable_folder(Path(args.out) if args.out else Path("runs") / name)
        arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name=name,
                                  input=json.dumps(run_input))["executionArn"]
        if not args.json:
            console.print(f"execution [bold]{name}[/] on {engine.state_machine_arn.split(':')[-1]} (embedded engine)")
        description, progress = follow(sfn, arn, reporter.state)
        result = result_of(description, progress)
        # What the stack's notification topic would have sent (notifyEmails), as the emulated SNS received it.
        result["notifications"] = engine.notifications(arn, description["status"])
        logs = engine.client("logs")
        attach_local_job_log(result, logs, out_dir)
        curves = attach_curves(result, logs)
        attach_tuning(result, engine.client("sagemaker"))
        files: dict[str, Path] = {}
        output = result.pop("output")
        if description["status"] == "SUCCEEDED":
            files = download_outputs(s3, output, out_dir)
            result["outputs"] = {**{key: str(path) for key, path in files.items()},
                                 "trainingJob": output["trainingJobName"], "model": output["modelName"]}
            attach_evaluation(result, s3)
        elif args.report:
            files = download_schema(s3, output, out_dir)
        described = attach_cost(result, progress.events, engine.client, engine.region, estimate=True)
        if args.report:
            from sagestep.run_report import write_report      # plotly and numpy, for --report only
            record = report_record(result, description, progress.events, json.loads(synthesis.definition), described,
                                   files, curves, logs, engine.region, local=True)
            result["report"] = str(write_report(record, out_dir))
    local = dataset.rstrip("/") + "/" if uri.endswith("/") else dataset      # a folder's shards: its paths
    local_paths = {} if dataset.startswith("s3://") else {uri: local}
    return report(in_cli_terms(result, local_paths), args.json, console)


def attach_local_job_log(result: dict, logs, out_dir: Path) -> None:
    """A failed job's last lines and, in place of a CloudWatch console link (a local run has no console),
    the path of a file in out_dir with its whole log, as the job printed it."""
    attach_job_log(result, logs, None)
    job = result.get("failedJob")
    if not job:
        return
    path = out_dir / f"{job['name']}.log"
    lines = job_log(logs, job["logGroup"], job["name"])
    path.write_text("".join(line.replace(CLOUDWATCH_TAB, "\t") + "\n" for line in lines), encoding="utf-8")
    job["log"] = str(path)


def serve(args, port: int, console: Console) -> int:
    synthesis = synthesize_stack(args.stack or DEFAULT_STACK)
    with LocalEngine(synthesis) as engine:
        server = moto_adapter.server(args.host, port, verbose=args.verbose)
        server.start()
        endpoint = f"http://{args.host}:{port}"
        print(json.dumps({"endpoint": endpoint, "stateMachineArn": engine.state_machine_arn,
                          "dataBucket": engine.data_bucket, "region": engine.region}), flush=True)
        # What a person pastes into another shell so the aws CLI, boto3 and `sagestep start` use it.
        print(f"export AWS_ENDPOINT_URL={endpoint} AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local "
              f"AWS_DEFAULT_REGION={engine.region}\nexport SAGESTEP_STATE_MACHINE_ARN={engine.state_machine_arn}",
              flush=True)
        stop = threading.Event()
        for sig in (signal.SIGINT, signal.SIGTERM):
            signal.signal(sig, lambda *_: stop.set())
        stop.wait()
        server.stop()
    return 0


