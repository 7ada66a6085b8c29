"""How long `make run`'s pipeline takes on the embedded engine, and the engine's own overhead.

  python bench/local_run.py              # 5 executions of the example on one engine, plus the whole CLI once

Overhead per execution = the execution's duration (ExecutionStarted -> ExecutionSucceeded)
minus the time inside the Lambda
(TaskStarted -> TaskSucceeded of Preprocess) and inside the two jobs (TaskSubmitted ->
TaskSucceeded of Train and BatchPredict), all read from the execution history.
"""
from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
EXAMPLE = ROOT / "examples/iris.csv"


def spans(events: list[dict]) -> dict[str, float]:
    """Seconds inside the Lambda and the jobs, from the history."""
    state_of = {}
    current = None
    for event in events:
        if event["type"].endswith("StateEntered"):
            current = event["stateEnteredEventDetails"]["name"]
        state_of[event["id"]] = current
    marks: dict[str, dict[str, float]] = {}
    for event in events:
        state = state_of[event["id"]]
        if event["type"] in ("TaskStarted", "TaskSubmitted", "TaskSucceeded"):
            marks.setdefault(state, {})[event["type"]] = event["timestamp"].timestamp()
    inside = {"lambda": marks["Preprocess"]["TaskSucceeded"] - marks["Preprocess"]["TaskStarted"]}
    for state, key in (("Train", "training job"), ("BatchPredict", "transform job")):
        inside[key] = marks[state]["TaskSucceeded"] - marks[state]["TaskSubmitted"]
    return inside


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    started = time.perf_counter()
    cli = subprocess.run([sys.executable, "-m", "sagestep", "local", str(EXAMPLE), "--label", "species", "--json",
                          "--out", str(ROOT / ".sagestep/bench-run")], capture_output=True, text=True, cwd=ROOT)
    cli_seconds = time.perf_counter() - started
    if cli.returncode != 0:
        raise SystemExit(cli.stderr)

    from sagestep.local.engine import LocalEngine
    from sagestep.runner import follow
    from sagestep.synth import synthesize, synthesize_stack

    started = time.perf_counter()
    synthesis = synthesize("dev", {})
    synth_seconds = time.perf_counter() - started
    synthesize_stack("dev")                       # the CLI's: from .sagestep/synth-cache once it is warm
    started = time.perf_counter()
    synthesize_stack("dev")
    cached_seconds = time.perf_counter() - started
    rows = []
    started = time.perf_counter()
    with LocalEngine(synthesis) as engine:
        setup_seconds = time.perf_counter() - started
        sfn = engine.client("stepfunctions")
        uri = engine.upload_dataset(EXAMPLE)
        for run in range(args.runs):
            arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name=f"bench-{run}",
                                      input=json.dumps({"datasetUri": uri, "labelColumn": "species"}))["executionArn"]
            description, _ = follow(sfn, arn, poll_seconds=0.05)
            assert description["status"] == "SUCCEEDED", description
            events = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
            total = (events[-1]["timestamp"] - events[0]["timestamp"]).total_seconds()
            inside = spans(events)
            rows.append({"total": total, **inside, "overhead": total - sum(inside.values())})

    print(f"`sagestep local examples/iris.csv --label species` (what make run runs), whole process: {cli_seconds:.2f} s")
    print(f"  synth {synth_seconds:.2f} s ({cached_seconds:.2f} s from the cache a warm `sagestep local` reads), "
          f"stack applied to moto {setup_seconds:.2f} s (once per process)")
    print(f"per execution, median of {args.runs} on one engine:")
    for key in ("total", "lambda", "training job", "transform job", "overhead"):
        values = [row[key] for row in rows]
        print(f"  {key:14} {statistics.median(values):6.3f} s   (min {min(values):.3f}, max {max(values):.3f})")


if __name__ == "__main__":
    main()
