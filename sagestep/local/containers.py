"""SageMaker jobs as local subprocesses under the container contract.

A temp folder stands in for /opt/ml: channels are downloaded from the (emulated) S3, the code
bundle named by the request is extracted, the entry point runs with the SM_* environment, and
what the container would upload is uploaded: the model as <S3OutputPath>/<job>/output/model.tar.gz,
predictions as <S3OutputPath>/<input key>.out.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable

from sagestep import ROOT

SCRIPT_MODE_KEYS = ("sagemaker_program", "sagemaker_submit_directory")


@dataclass
class Outcome:
    status: str                         # Completed | Failed | Stopped
    failure_reason: str | None = None
    metrics: list[dict] = field(default_factory=list)


def split_s3_uri(uri: str) -> tuple[str, str]:
    bucket, _, key = uri[len("s3://"):].partition("/")
    return bucket, key


def download_prefix(s3, uri: str, target: Path) -> list[Path]:
    """Every object under an S3Prefix (or the one object a full key names), keeping its path below
    the prefix; returns the local paths."""
    bucket, prefix = split_s3_uri(uri)
    paths = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            relative = item["Key"][len(prefix):].lstrip("/") or Path(item["Key"]).name
            path = target / relative
            path.parent.mkdir(parents=True, exist_ok=True)
            s3.download_file(bucket, item["Key"], str(path))
            paths.append(path)
    return paths


def extract_tar(s3, uri: str, target: Path) -> None:
    bucket, key = split_s3_uri(uri)
    data = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
    target.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data)) as archive:
        archive.extractall(target, filter="data")


def tar_directory(directory: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for path in sorted(directory.rglob("*")):
            archive.add(path, arcname=str(path.relative_to(directory)), recursive=False)
    return buffer.getvalue()


class _Process:
    """A job's subprocess with its output read line by line in a thread."""

    def __init__(self, command: list[str], env: dict, cwd: Path, on_line: Callable[[str], None]):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True, bufsize=1)
        self._reader = threading.Thread(target=self._read, args=(on_line,), daemon=True)
        self._reader.start()

    def _read(self, on_line) -> None:
        for line in self.proc.stdout:
            line = line.rstrip("\n")
            self.lines.append(line)
            on_line(line)

    def finished(self) -> int | None:
        code = self.proc.poll()
        if code is not None:
            self._reader.join()
        return code

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self._reader.join()


class _Job:
    """What the engine asks of a running job besides poll()."""
    process: _Process
    root: Path

    def poll(self) -> Outcome | None:
        """None while the job runs; its outcome once, after which its folder is gone."""
        if self.poll_running():
            return self._timed_out()
        try:
            return self._finish(self.process.finished())
        finally:
            shutil.rmtree(self.root, ignore_errors=True)

    def _timed_out(self) -> Outcome | None:
        return None

    def poll_running(self) -> bool:
        return self.process.finished() is None

    def stop(self) -> None:
        self.process.kill()


class TrainingRun(_Job):
    def __init__(self, s3, request: dict, on_line: Callable[[str], None] = lambda line: None):
        self.s3, self.request, self.name = s3, request, request["TrainingJobName"]
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.metric_patterns = [(d["Name"], re.compile(d["Regex"]))
                                for d in request["AlgorithmSpecification"].get("MetricDefinitions", [])]
        self.metrics: dict[str, float] = {}
        self.deadline = time.monotonic() + request["StoppingCondition"]["MaxRuntimeInSeconds"]
        self._on_line = on_line
        self.process = self._start()

    def _line(self, line: str) -> None:
        for name, pattern in self.metric_patterns:
            match = pattern.search(line)
            if match:
                self.metrics[name] = float(match.group(1))
        self._on_line(line)

    def _start(self) -> _Process:
        ml = self.root
        hyperparameters = dict(self.request.get("HyperParameters", {}))
        program, submit = (hyperparameters.pop(key, None) for key in SCRIPT_MODE_KEYS)
        channels = {}
        for channel in self.request.get("InputDataConfig", []):
            target = ml / "input/data" / channel["ChannelName"]
            target.mkdir(parents=True)
            download_prefix(self.s3, channel["DataSource"]["S3DataSource"]["S3Uri"], target)
            channels[channel["ChannelName"]] = str(target)
        extract_tar(self.s3, submit, ml / "code")
        checkpoints = self.request.get("CheckpointConfig")
        if checkpoints:
            (ml / "checkpoints").mkdir()
            download_prefix(self.s3, checkpoints["S3Uri"], ml / "checkpoints")
        for folder in ("model", "output/data", "input/config"):
            (ml / folder).mkdir(parents=True, exist_ok=True)
        (ml / "input/config/hyperparameters.json").write_text(json.dumps(self.request.get("HyperParameters", {})))
        (ml / "input/config/inputdataconfig.json").write_text(json.dumps(self.request.get("InputDataConfig", [])))
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith(("SM_", "AWS_"))},
            "SM_MODEL_DIR": str(ml / "model"), "SM_OUTPUT_DIR": str(ml / "output"),
            "SM_OUTPUT_DATA_DIR": str(ml / "output/data"), "SM_INPUT_DIR": str(ml / "input"),
            "SM_INPUT_CONFIG_DIR": str(ml / "input/config"), "SM_CHANNELS": json.dumps(sorted(channels)),
            "SM_HPS": json.dumps(hyperparameters), "SM_CURRENT_HOST": "algo-1", "SM_HOSTS": json.dumps(["algo-1"]),
            "SM_NUM_CPUS": str(os.cpu_count() or 1), "SM_NUM_GPUS": "0", "SM_MODULE_DIR": submit,
            "SM_USER_ENTRY_POINT": program, "TRAINING_JOB_NAME": self.name,
            "SAGESTEP_CHECKPOINT_DIR": str(ml / "checkpoints"),
            **{f"SM_CHANNEL_{name.upper()}": path for name, path in channels.items()},
            **{f"SM_HP_{key.upper()}": value for key, value in hyperparameters.items()},
        }
        arguments = [part for key, value in hyperparameters.items() for part in (f"--{key}", value)]
        env["SM_USER_ARGS"] = json.dumps(arguments)
        return _Process([sys.executable, str(ml / "code" / program), *arguments], env, ml / "code", self._line)

    def _timed_out(self) -> Outcome | None:
        if time.monotonic() < self.deadline:
            return None
        self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)
        return Outcome("Stopped", "MaxRuntimeExceeded: the job ran past StoppingCondition.MaxRuntimeInSeconds")

    def _finish(self, code: int) -> Outcome:
        self._upload_checkpoints()
        if code != 0:
            failure = self.root / "output/failure"
            reason = failure.read_text().strip() if failure.exists() else "\n".join(self.process.lines[-5:])
            return Outcome("Failed", f"AlgorithmError: {reason}, exit code: {code}", self._final_metrics())
        bucket, prefix = split_s3_uri(self.request["OutputDataConfig"]["S3OutputPath"])
        key = f"{prefix.rstrip('/')}/{self.name}/output/model.tar.gz".lstrip("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=tar_directory(self.root / "model"))
        return Outcome("Completed", None, self._final_metrics())

    def _final_metrics(self) -> list[dict]:
        now = datetime.now(timezone.utc)
        return [{"MetricName": name, "Value": value, "Timestamp": now} for name, value in self.metrics.items()]

    def _upload_checkpoints(self) -> None:
        checkpoints = self.request.get("CheckpointConfig")
        if not checkpoints:
            return
        bucket, prefix = split_s3_uri(checkpoints["S3Uri"])
        for path in (self.root / "checkpoints").rglob("*"):
            if path.is_file():
                self.s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(self.root / 'checkpoints')}")


class TransformRun(_Job):
    def __init__(self, s3, request: dict, model: dict, on_line: Callable[[str], None] = lambda line: None):
        self.s3, self.request, self.name = s3, request, request["TransformJobName"]
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        container = model["PrimaryContainer"]
        environment = container.get("Environment", {})
        extract_tar(self.s3, container["ModelDataUrl"], self.root / "model")
        extract_tar(self.s3, environment["SAGEMAKER_SUBMIT_DIRECTORY"], self.root / "code")
        source = request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"]
        download_prefix(self.s3, source, self.root / "input")
        (self.root / "output").mkdir()
        command = [sys.executable, "-m", "sagestep.local.batch_serve", "--code", str(self.root / "code"),
                   "--program", environment["SAGEMAKER_PROGRAM"], "--model", str(self.root / "model"),
                   "--input", str(self.root / "input"), "--output", str(self.root / "output"),
                   "--content-type", request["TransformInput"].get("ContentType", "text/csv"),
                   "--accept", request["TransformOutput"].get("Accept", "text/csv"),
                   "--max-payload-mb", str(request.get("MaxPayloadInMB", 6))]
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = _Process(command, env, self.root, on_line)

    def _finish(self, code: int) -> Outcome:
        if code != 0:
            return Outcome("Failed", "\n".join(self.process.lines[-3:]) or f"exit code {code}")
        bucket, prefix = split_s3_uri(self.request["TransformOutput"]["S3OutputPath"])
        for path in sorted((self.root / "output").rglob("*.out")):
            key = f"{prefix.rstrip('/')}/{path.relative_to(self.root / 'output')}".lstrip("/")
            self.s3.upload_file(str(path), bucket, key)
        return Outcome("Completed")
