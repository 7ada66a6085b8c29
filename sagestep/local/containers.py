"""SageMaker jobs as local subprocesses, run by the SageMaker XGBoost image's own launcher.

A job folder stands in for /opt/ml (SAGEMAKER_BASE_DIR): the input config files SageMaker writes,
channels downloaded from the (emulated) S3, the code bundle pre-extracted into code/ so the launcher
downloads nothing. Training runs the image's `train` (sagemaker-containers) in the image environment
(sagestep.local.image); a transform runs batch_serve.py there, which calls the image's serving app.
What SageMaker would upload is uploaded: the model as <S3OutputPath>/<job>/output/model.tar.gz,
predictions as <S3OutputPath>/<input key>.out.
"""
from __future__ import annotations

import io
import json
import os
import shutil
import signal
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from sagestep.runner import split_s3_uri

from .image import SERVING_MODULE, SHIM, TRAINING_MODULE, image_env

BATCH_SERVE = Path(__file__).resolve().parent / "batch_serve.py"
# Not in a container: the engine's credentials and endpoint, its Python, its pip settings, SM_*.
HOST_ONLY = ("AWS_", "SM_", "SAGEMAKER_", "PYTHON", "PIP_", "VIRTUAL_ENV", "OMP_NUM_THREADS")
FAILURE_MAX_CHARS = 1024          # DescribeTrainingJob shows the first 1024 characters of the failure file


@dataclass
class Outcome:
    status: str                         # Completed | Failed | Stopped
    failure_reason: str | None = None


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


def image_environment(env_dir: Path, root: Path, ml: Path) -> dict[str, str]:
    """What the job's container sees before SageMaker adds its part: the host's HOME and such, the
    image's ENV (docker/3.0-5 Dockerfiles) with its Python first on PATH and /opt/ml at `ml`, and pip
    offline, without the host's pip configuration, pointed at the job.

    The launcher `pip install`s the code bundle; PIP_TARGET puts it in the job's own folder, so that
    concurrent jobs do not install into, or uninstall from, the shared environment."""
    site = root / "site"
    site.mkdir(exist_ok=True)
    host = {k: v for k, v in os.environ.items() if not k.startswith(HOST_ONLY)}
    return {
        **host,
        "PATH": f"{env_dir / 'bin'}{os.pathsep}{host.get('PATH', os.defpath)}",
        "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1", "PYTHONIOENCODING": "utf-8",
        "SAGEMAKER_BASE_DIR": str(ml),
        "SM_INPUT": str(ml / "input"),
        "SM_INPUT_TRAINING_CONFIG_FILE": str(ml / "input/config/hyperparameters.json"),
        "SM_INPUT_DATA_CONFIG_FILE": str(ml / "input/config/inputdataconfig.json"),
        "SM_CHECKPOINT_CONFIG_FILE": str(ml / "input/config/checkpointconfig.json"),
        "SM_MODEL_DIR": str(ml / "model"),
        "SAGEMAKER_TRAINING_MODULE": TRAINING_MODULE,
        "SAGEMAKER_SERVING_MODULE": SERVING_MODULE,
        "PYTHONPATH": f"{SHIM}{os.pathsep}{site}",
        "PIP_CONFIG_FILE": os.devnull, "PIP_NO_INDEX": "1", "PIP_NO_BUILD_ISOLATION": "0", "PIP_TARGET": str(site),
    }


class _Process:
    """A job's subprocess (in its own process group: the launcher starts the script as a child), its
    stdout and stderr read together line by line in a thread."""

    def __init__(self, command: list[str], env: dict, cwd: Path, on_line: Callable[[str], None]):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(command, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, encoding="utf-8", errors="replace", bufsize=1,
                                     start_new_session=True)
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
            os.killpg(self.proc.pid, signal.SIGKILL)
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
        """An aborted execution: the job's processes and its folder go."""
        self.process.kill()
        shutil.rmtree(self.root, ignore_errors=True)

    def _start(self, prepare: Callable[[], _Process]) -> _Process:
        """The job folder goes when the job cannot start (a missing bundle, say)."""
        try:
            return prepare()
        except BaseException:
            shutil.rmtree(self.root, ignore_errors=True)
            raise


class MissingRegion(Exception):
    """R8: the image's launcher reads the region from AWS_REGION, else the sagemaker_region
    hyperparameter (sagemaker_containers/_env.py, _files.py); whether a training container has
    AWS_REGION is disputed, so the engine fails a script-mode job without the hyperparameter."""


def input_data_config(request: dict) -> dict[str, dict]:
    """inputdataconfig.json as SageMaker writes it: an object keyed by channel name."""
    default_mode = request["AlgorithmSpecification"].get("TrainingInputMode", "File")
    config = {}
    for channel in request.get("InputDataConfig", []):
        source = channel["DataSource"]["S3DataSource"]
        entry = {"ContentType": channel["ContentType"]} if "ContentType" in channel else {}
        config[channel["ChannelName"]] = {
            **entry,
            "TrainingInputMode": channel.get("InputMode", default_mode),
            "S3DistributionType": source.get("S3DataDistributionType", "FullyReplicated"),
            "RecordWrapperType": channel.get("RecordWrapperType", "None"),
        }
    return config


def resource_config(request: dict) -> dict:
    """resourceconfig.json of a one-instance job."""
    instance_type = request["ResourceConfig"]["InstanceType"]
    return {"current_host": "algo-1", "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster", "hosts": ["algo-1"],
            "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type,
                                 "hosts": ["algo-1"]}],
            "network_interface_name": "eth0"}


class TrainingRun(_Job):
    def __init__(self, s3, request: dict, on_line: Callable[[str], None] = lambda line: None):
        self.s3, self.request, self.name = s3, request, request["TrainingJobName"]
        env_dir = image_env()
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.ml = self.root / "ml"
        self.deadline = time.monotonic() + request["StoppingCondition"]["MaxRuntimeInSeconds"]
        self.process = self._start(lambda: self._launch(env_dir, on_line))

    def _launch(self, env_dir: Path, on_line: Callable[[str], None]) -> _Process:
        for folder in ("model", "output/data", "code", "input/config"):
            (self.ml / folder).mkdir(parents=True, exist_ok=True)
        self._write_config()
        self._download()
        env = {**image_environment(env_dir, self.root, self.ml), "TRAINING_JOB_NAME": self.name,
               "SAGESTEP_CHECKPOINT_DIR": str(self.ml / "checkpoints"), **self.request.get("Environment", {})}
        return _Process([str(env_dir / "bin/train")], env, self.root, on_line)

    def _write_config(self) -> None:
        """/opt/ml/input/config as SageMaker writes it (hyperparameter values stay strings)."""
        config, request = self.ml / "input/config", self.request
        (config / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters", {})))
        (config / "inputdataconfig.json").write_text(json.dumps(input_data_config(request)))
        (config / "resourceconfig.json").write_text(json.dumps(resource_config(request)))
        if "CheckpointConfig" in request:
            local = {**request["CheckpointConfig"], "LocalPath": str(self.ml / "checkpoints")}
            (config / "checkpointconfig.json").write_text(json.dumps(local))

    def _download(self) -> None:
        """Channels, checkpoints, and the code bundle pre-extracted: the launcher then downloads nothing."""
        for channel in self.request.get("InputDataConfig", []):
            target = self.ml / "input/data" / channel["ChannelName"]
            target.mkdir(parents=True)
            download_prefix(self.s3, channel["DataSource"]["S3DataSource"]["S3Uri"], target)
        if "CheckpointConfig" in self.request:
            (self.ml / "checkpoints").mkdir()
            download_prefix(self.s3, self.request["CheckpointConfig"]["S3Uri"], self.ml / "checkpoints")
        hyperparameters = self.request.get("HyperParameters", {})
        submit = hyperparameters.get("sagemaker_submit_directory")
        if submit:
            if submit.startswith("s3://") and not hyperparameters.get("sagemaker_region"):
                raise MissingRegion(
                    "the launcher cannot download sagemaker_submit_directory: no region (AWS_REGION may not be set "
                    "in a training container, and the sagemaker_region hyperparameter is absent), so it would ask "
                    "https://s3..amazonaws.com")
            extract_tar(self.s3, submit, self.ml / "code")

    def _timed_out(self) -> Outcome | None:
        if time.monotonic() < self.deadline:
            return None
        self.stop()
        return Outcome("Stopped", "MaxRuntimeExceeded: the job ran past StoppingCondition.MaxRuntimeInSeconds")

    def _finish(self, code: int) -> Outcome:
        self._upload_checkpoints()
        if code != 0:
            failure = self.ml / "output/failure"
            reason = failure.read_text()[:FAILURE_MAX_CHARS].strip() if failure.exists() else "\n".join(
                self.process.lines[-5:])
            return Outcome("Failed", f"AlgorithmError: {reason}, exit code: {code}")
        bucket, prefix = split_s3_uri(self.request["OutputDataConfig"]["S3OutputPath"])
        key = f"{prefix.rstrip('/')}/{self.name}/output/model.tar.gz".lstrip("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=tar_directory(self.ml / "model"))
        return Outcome("Completed")

    def _upload_checkpoints(self) -> None:
        checkpoints = self.request.get("CheckpointConfig")
        if not checkpoints:
            return
        bucket, prefix = split_s3_uri(checkpoints["S3Uri"])
        local = self.ml / "checkpoints"
        for path in local.rglob("*"):
            if path.is_file():
                self.s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(local)}")


class TransformRun(_Job):
    def __init__(self, s3, request: dict, model: dict, on_line: Callable[[str], None] = lambda line: None):
        self.s3, self.request, self.name = s3, request, request["TransformJobName"]
        env_dir = image_env()
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.process = self._start(lambda: self._launch(env_dir, model["PrimaryContainer"], on_line))

    def _launch(self, env_dir: Path, container: dict, on_line: Callable[[str], None]) -> _Process:
        ml, request = self.root / "ml", self.request
        environment = container.get("Environment", {})
        extract_tar(self.s3, container["ModelDataUrl"], ml / "model")
        if "SAGEMAKER_SUBMIT_DIRECTORY" in environment:
            extract_tar(self.s3, environment["SAGEMAKER_SUBMIT_DIRECTORY"], ml / "code")
        download_prefix(self.s3, request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"], self.root / "input")
        (self.root / "output").mkdir()
        env = {**image_environment(env_dir, self.root, ml), **self._platform_environment(), **environment,
               **request.get("Environment", {})}
        env.setdefault("OMP_NUM_THREADS", "1")
        command = [str(env_dir / "bin/python"), "-P", str(BATCH_SERVE), "--input", str(self.root / "input"),
                   "--output", str(self.root / "output"), "--failure", str(self.root / "failure"),
                   "--max-payload-mb", str(self._max_payload_mb())]
        for option, value in (("--content-type", request["TransformInput"].get("ContentType")),
                              ("--accept", request["TransformOutput"].get("Accept"))):
            if value:
                command += [option, value]
        return _Process(command, env, self.root, on_line)

    def _max_payload_mb(self) -> int:
        """SageMaker's default when the request gives none: 6 MB."""
        return self.request.get("MaxPayloadInMB", 6)

    def _platform_environment(self) -> dict[str, str]:
        """What the batch platform tells the serving container about the job."""
        return {"SAGEMAKER_BATCH": "true",
                "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(self._max_payload_mb()),
                "SAGEMAKER_BATCH_STRATEGY": self.request.get("BatchStrategy", "MultiRecord"),
                "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(self.request.get("MaxConcurrentTransforms", 1))}

    def _finish(self, code: int) -> Outcome:
        if code != 0:
            return Outcome("Failed", self._failure_reason(code))
        bucket, prefix = split_s3_uri(self.request["TransformOutput"]["S3OutputPath"])
        for path in sorted((self.root / "output").rglob("*.out")):
            key = f"{prefix.rstrip('/')}/{path.relative_to(self.root / 'output')}".lstrip("/")
            self.s3.upload_file(str(path), bucket, key)
        return Outcome("Completed")

    def _failure_reason(self, code: int) -> str:
        """batch_serve's reason (input file, HTTP status) and the log's last lines (a traceback's end)."""
        failure = self.root / "failure"
        reason = (failure.read_text().strip() if failure.exists()
                  else f"ClientError: the serving container exited with code {code}")
        tail = [line.strip() for line in self.process.lines if line.strip() and line.strip() != reason][-3:]
        return f"{reason}. Last log lines: {' | '.join(tail)}"[:FAILURE_MAX_CHARS]
