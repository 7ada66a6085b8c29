"""A local job's output where SageMaker puts it: CloudWatch Logs (moto's), under AWS's group and
stream names, as CloudWatch stores it (a tab reads "#011"); and its final metrics, scraped from those
same stored lines.

Group and stream names: SageMaker developer guide, "Log Amazon SageMaker events with Amazon
CloudWatch" (/aws/sagemaker/TrainingJobs, [job]/algo-[n]-[epoch]; /aws/sagemaker/TransformJobs,
[job]/[instance-id]-[epoch]).
"""
from __future__ import annotations

import hashlib
import threading
import time
from datetime import datetime, timezone
from typing import Callable

from statemachine import batch_predict, train
from statemachine.refs import image_repository
from statemachine.framework import (REPOSITORY, MetricDefinition, as_cloudwatch_stores_it,
                                        metric_definitions, scrape)


def stream_name(kind: str, job: str, host: str, started: float) -> str:
    """A training instance's stream is named after its host (algo-N); a transform instance's after its
    EC2 instance id, made up here from the job and the host."""
    epoch = int(started)
    if kind == "training":
        return f"{job}/{host}-{epoch}"
    instance = "i-" + hashlib.sha256(f"{job}/{host}".encode()).hexdigest()[:17]
    return f"{job}/{instance}-{epoch}"


class JobLog:
    """One instance's stream. Lines arrive from its reader thread; flush() writes what came since, in order."""

    def __init__(self, logs, kind: str, job: str, host: str, on_line: Callable[[str], None] = lambda line: None):
        self.logs, self.on_line = logs, on_line
        self.group = train.LOG_GROUP if kind == "training" else batch_predict.LOG_GROUP
        self.stream = stream_name(kind, job, host, time.time())
        self.stored: list[str] = []
        self._pending: list[dict] = []
        self._lock = threading.Lock()
        try:
            logs.create_log_group(logGroupName=self.group)
        except logs.exceptions.ResourceAlreadyExistsException:
            pass
        logs.create_log_stream(logGroupName=self.group, logStreamName=self.stream)

    def add(self, line: str) -> None:
        message = as_cloudwatch_stores_it(line)
        with self._lock:
            self.stored.append(message)
            self._pending.append({"timestamp": int(time.time() * 1000), "message": message or " "})
        self.on_line(line)

    def flush(self) -> None:
        with self._lock:
            events, self._pending = self._pending, []
        if events:
            self.logs.put_log_events(logGroupName=self.group, logStreamName=self.stream, logEvents=events)


class JobLogs:
    """A job's log: one stream per instance, as SageMaker writes it."""

    def __init__(self, logs, kind: str, job: str, hosts: list[str], on_line: Callable[[str], None] = lambda line: None):
        self.streams = {host: JobLog(logs, kind, job, host, on_line) for host in hosts}

    def add(self, host: str, line: str) -> None:
        self.streams[host].add(line)

    def flush(self) -> None:
        for stream in self.streams.values():
            stream.flush()

    @property
    def stored(self) -> list[str]:
        """Every stream's lines as stored, host after host (the metric lines come from the first one)."""
        return [line for stream in self.streams.values() for line in stream.stored]


def final_metrics(request: dict, stored_lines: list[str]) -> list[dict] | None:
    """DescribeTrainingJob's FinalMetricDataList: the last value of each defined metric found in the
    log, or None (the field is left out) when none was. An algorithm image (sagemaker-xgboost) is
    scraped with its own definitions; any other image with the request's MetricDefinitions."""
    if image_repository(request["AlgorithmSpecification"].get("TrainingImage", "")) == REPOSITORY:
        values = scrape(stored_lines)
    else:
        values = scrape(stored_lines, [MetricDefinition(d["Name"], d["Regex"], maximize=False)
                                       for d in request["AlgorithmSpecification"].get("MetricDefinitions", [])])
    if not values:
        return None
    now = datetime.now(timezone.utc)
    order = {d.name: i for i, d in enumerate(metric_definitions())}
    return [{"MetricName": name, "Value": value, "Timestamp": now}
            for name, value in sorted(values.items(), key=lambda item: order.get(item[0], len(order)))]

