"""SageMaker jobs as local subprocesses, run by the SageMaker XGBoost image's own launcher.

Each instance of a job (algo-1 … algo-N) is one process with its own folder standing in for /opt/ml
(SAGEMAKER_BASE_DIR): the input config files SageMaker writes (resourceconfig.json names the instance
and all hosts), its channels downloaded from the (emulated) S3, the code bundle pre-extracted into code/
so the launcher downloads nothing. Training runs the image's `train` (sagemaker-containers) in the image
environment (sagestep.local.image); a transform runs batch_serve.py there, which calls the image's
serving app. A job completes when every instance exits 0 and fails with the first failing one's reason
(the others are stopped). What SageMaker would upload is uploaded: the model (from the first host) as
<S3OutputPath>/<job>/output/model.tar.gz, predictions as <S3OutputPath>/<input key>.out.

The instances of a training job talk over loopback: each host name resolves (sitecustomize in the shim)
to an address of a 127.X.Y.0/24 block of the job's own, so training/train.py's tracker listens on the
first host at the port it uses on SageMaker and concurrent jobs differ by address, not by port.
"""
from __future__ import annotations

import errno
import io
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import tarfile
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, TypeVar

from sagestep.runner import split_s3_uri

from .image import SERVING_MODULE, SHIM, TRAINING_MODULE, image_env

BATCH_SERVE = Path(__file__).resolve().parent / "batch_serve.py"
# Not in a container: the engine's credentials and endpoint, its Python, its pip settings, SM_*.
HOST_ONLY = ("AWS_", "SM_", "SAGEMAKER_", "PYTHON", "PIP_", "VIRTUAL_ENV", "OMP_NUM_THREADS")
FAILURE_MAX_CHARS = 1024          # DescribeTrainingJob shows the first 1024 characters of the failure file
TRACKER_PORT = 9099               # training/train.py's (the image's distributed.py's)
T = TypeVar("T")
# Process-wide: the 127.X.Y.0/24 blocks of the training jobs running now.
_BLOCKS: set[tuple[int, int]] = set()
_BLOCKS_LOCK = threading.Lock()
Line = Callable[[str, str], None]   # (host, line) of a job's output


@dataclass
class Outcome:
    status: str                         # Completed | Failed | Stopped
    failure_reason: str | None = None


class LoopbackUnavailable(RuntimeError):
    """A multi-instance training job needs loopback addresses besides 127.0.0.1 (Linux routes 127/8)."""


def host_names(count: int) -> list[str]:
    """SageMaker's names for a job's instances (resourceconfig.json, SM_HOSTS)."""
    return [f"algo-{index}" for index in range(1, count + 1)]


def shard(items: list[T], count: int) -> list[list[T]]:
    """ShardedByS3Key: whole objects, dealt round robin to the instances in sorted key order. AWS
    documents only that each instance gets about 1/n of the objects (API S3DataSource,
    S3DataDistributionType), not which ones; this is one such assignment."""
    ordered = sorted(items)
    return [ordered[index::count] for index in range(count)]


def loopback_addresses(hosts: list[str]) -> dict[str, str]:
    """host -> 127.X.Y.<n>, in a block no running job of this process holds and where the tracker's
    port can be bound now (not held by another process, nor in TIME_WAIT after an earlier job).
    Another engine process could pick the same block in the same instant: 1 chance in 65,000."""
    with _BLOCKS_LOCK:
        for _ in range(100):
            block = (random.randint(1, 255), random.randint(0, 255))
            if block in _BLOCKS:
                continue
            address = f"127.{block[0]}.{block[1]}.1"
            with socket.socket() as probe:
                try:
                    probe.bind((address, TRACKER_PORT))
                except OSError as error:
                    if error.errno == errno.EADDRNOTAVAIL:      # this system routes only 127.0.0.1
                        raise LoopbackUnavailable(
                            f"training on {len(hosts)} local instances runs them on loopback addresses such as "
                            f"{address}, which this system does not route ({error.strerror})") from None
                    continue
            _BLOCKS.add(block)
            return {host: f"127.{block[0]}.{block[1]}.{index}" for index, host in enumerate(hosts, 1)}
    raise LoopbackUnavailable(f"no free loopback block for the tracker's port {TRACKER_PORT}")


def release_addresses(addresses: dict[str, str]) -> None:
    """The job's block may serve another job (once the probe finds its port free again)."""
    if addresses:
        _, x, y, _ = next(iter(addresses.values())).split(".")
        with _BLOCKS_LOCK:
            _BLOCKS.discard((int(x), int(y)))


def list_prefix(s3, uri: str) -> tuple[str, list[tuple[str, str]]]:
    """The bucket, and every object under an S3Prefix (or the one object a full key names) as
    (key, its path below the prefix)."""
    bucket, prefix = split_s3_uri(uri)
    objects = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            objects.append((item["Key"], item["Key"][len(prefix):].lstrip("/") or Path(item["Key"]).name))
    return bucket, objects


def download(s3, bucket: str, objects: list[tuple[str, str]], target: Path) -> list[Path]:
    """The objects under target, each at its path below the prefix; returns the local paths."""
    paths = []
    for key, relative in objects:
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        s3.download_file(bucket, key, str(path))
        paths.append(path)
    return paths


def download_prefix(s3, uri: str, target: Path) -> list[Path]:
    return download(s3, *list_prefix(s3, uri), target)


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
    offline, without the host's pip configuration, pointed at the instance.

    The launcher `pip install`s the code bundle; PIP_TARGET puts it in the instance's own folder, so that
    concurrent jobs and instances do not install into, or uninstall from, the shared environment. TMPDIR is
    the instance's too, as a container's /tmp is its own: what a stopped job's processes leave there (pip's
    build folders, say) goes with the job's folder."""
    site = root / "site"
    site.mkdir(exist_ok=True)
    scratch = root / "tmp"
    scratch.mkdir(exist_ok=True)
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
        "TMPDIR": str(scratch),
    }


class _Process:
    """A job's subprocess (in its own process group: the launcher starts the script as a child), its
    stdout and stderr read together line by line in a thread; `ended` is when it exited (monotonic)."""

    def __init__(self, command: list[str], env: dict, cwd: Path, on_line: Callable[[str], None]):
        self.lines: list[str] = []
        self.ended: float | None = None
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
        self.proc.wait()
        self.ended = time.monotonic()

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


@dataclass
class _Host:
    """One instance of a job: its name, its folder (SAGEMAKER_BASE_DIR is folder/ml), its process."""
    name: str
    root: Path
    process: _Process | None = None

    @property
    def ml(self) -> Path:
        return self.root / "ml"


def first_failure(hosts: list[_Host]) -> tuple[_Host, int] | None:
    """The host that failed first, with its exit code: the others may fail after it because it went."""
    failed = [(host.process.ended or 0.0, index, host) for index, host in enumerate(hosts)
              if host.process.finished() not in (None, 0)]
    if not failed:
        return None
    _, _, host = min(failed, key=lambda entry: entry[:2])
    return host, host.process.finished()


class _Job:
    """What the engine asks of a running job besides poll(): its instances run as one job."""
    hosts: list[_Host]
    root: Path

    def poll(self) -> Outcome | None:
        """None while the job runs; its outcome once, after which its folder is gone."""
        if self.poll_running():
            return self._timed_out()
        try:
            failure = first_failure(self.hosts)
            self._kill()
            return self._finish(failure)
        finally:
            self._cleanup()

    def _timed_out(self) -> Outcome | None:
        return None

    def poll_running(self) -> bool:
        """Until every instance exited, or one failed (the others are then stopped)."""
        codes = [host.process.finished() for host in self.hosts]
        return None in codes and not any(codes)

    def stop(self) -> None:
        """An aborted execution: the job's processes and its folder go."""
        self._kill()
        self._cleanup()

    def _kill(self) -> None:
        for host in self.hosts:
            if host.process:
                host.process.kill()

    def _cleanup(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def _start(self, prepare: Callable[[], None]) -> None:
        """The job's processes and folder go when the job cannot start (a missing bundle, say)."""
        try:
            prepare()
        except BaseException:
            self.stop()
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


def resource_config(request: dict, current_host: str, hosts: list[str]) -> dict:
    """resourceconfig.json of one instance of a job (one homogeneous cluster)."""
    instance_type = request["ResourceConfig"]["InstanceType"]
    return {"current_host": current_host, "current_instance_type": instance_type,
            "current_group_name": "homogeneousCluster", "hosts": hosts,
            "instance_groups": [{"instance_group_name": "homogeneousCluster", "instance_type": instance_type,
                                 "hosts": hosts}],
            "network_interface_name": "eth0"}


def channel_shares(s3, channel: dict, count: int) -> tuple[str, list[list[tuple[str, str]]]]:
    """The bucket, and the objects of a channel each of count instances gets: all of them
    (FullyReplicated), or its share (ShardedByS3Key)."""
    source = channel["DataSource"]["S3DataSource"]
    bucket, objects = list_prefix(s3, source["S3Uri"])
    if source.get("S3DataDistributionType", "FullyReplicated") == "ShardedByS3Key":
        return bucket, shard(objects, count)
    return bucket, [objects] * count


class TrainingRun(_Job):
    def __init__(self, s3, request: dict, on_line: Line = lambda host, line: None):
        self.s3, self.request, self.name = s3, request, request["TrainingJobName"]
        env_dir = image_env()
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        self.hosts = [_Host(name, self.root / name) for name in host_names(request["ResourceConfig"]["InstanceCount"])]
        self.addresses: dict[str, str] = {}
        self.restored: list[Path] = []            # the checkpoints the first host started from
        self.deadline = time.monotonic() + request["StoppingCondition"]["MaxRuntimeInSeconds"]
        self._start(lambda: self._launch(env_dir, on_line))

    def _launch(self, env_dir: Path, on_line: Line) -> None:
        """Every instance prepared, then all started: the first host's tracker waits for the others."""
        names = [host.name for host in self.hosts]
        if len(names) > 1:
            self.addresses = loopback_addresses(names)
        shares = [channel_shares(self.s3, channel, len(self.hosts)) for channel in self.request.get("InputDataConfig", [])]
        for index, host in enumerate(self.hosts):
            for folder in ("model", "output/data", "code", "input/config"):
                (host.ml / folder).mkdir(parents=True, exist_ok=True)
            self._write_config(host, names)
            for channel, (bucket, share) in zip(self.request.get("InputDataConfig", []), shares):
                target = host.ml / "input/data" / channel["ChannelName"]
                target.mkdir(parents=True)
                download(self.s3, bucket, share[index], target)
            self._download(host)
        for host in self.hosts:
            env = {**image_environment(env_dir, host.root, host.ml), "TRAINING_JOB_NAME": self.name,
                   "SAGESTEP_CHECKPOINT_DIR": str(host.ml / "checkpoints"),
                   **({"SAGESTEP_HOSTS": json.dumps(self.addresses)} if self.addresses else {}),
                   **self.request.get("Environment", {})}
            host.process = _Process([str(env_dir / "bin/train")], env, host.root,
                                    lambda line, name=host.name: on_line(name, line))

    def _write_config(self, host: _Host, names: list[str]) -> None:
        """/opt/ml/input/config as SageMaker writes it (hyperparameter values stay strings)."""
        config, request = host.ml / "input/config", self.request
        (config / "hyperparameters.json").write_text(json.dumps(request.get("HyperParameters", {})))
        (config / "inputdataconfig.json").write_text(json.dumps(input_data_config(request)))
        (config / "resourceconfig.json").write_text(json.dumps(resource_config(request, host.name, names)))
        if "CheckpointConfig" in request:
            local = {**request["CheckpointConfig"], "LocalPath": str(host.ml / "checkpoints")}
            (config / "checkpointconfig.json").write_text(json.dumps(local))

    def _download(self, host: _Host) -> None:
        """Checkpoints, and the code bundle pre-extracted: the launcher then downloads nothing."""
        if "CheckpointConfig" in self.request:
            local = host.ml / "checkpoints"
            local.mkdir()
            restored = download_prefix(self.s3, self.request["CheckpointConfig"]["S3Uri"], local)
            if host is self.hosts[0]:
                self.restored = [path.relative_to(local) for path in restored]
        hyperparameters = self.request.get("HyperParameters", {})
        submit = hyperparameters.get("sagemaker_submit_directory")
        if submit:
            if submit.startswith("s3://") and not hyperparameters.get("sagemaker_region"):
                raise MissingRegion(
                    "the launcher cannot download sagemaker_submit_directory: no region (AWS_REGION may not be set "
                    "in a training container, and the sagemaker_region hyperparameter is absent), so it would ask "
                    "https://s3..amazonaws.com")
            extract_tar(self.s3, submit, host.ml / "code")

    def _cleanup(self) -> None:
        super()._cleanup()
        release_addresses(self.addresses)

    def _timed_out(self) -> Outcome | None:
        if time.monotonic() < self.deadline:
            return None
        self.stop()
        return Outcome("Stopped", "MaxRuntimeExceeded: the job ran past StoppingCondition.MaxRuntimeInSeconds")

    def _finish(self, failure: tuple[_Host, int] | None) -> Outcome:
        self._upload_checkpoints()
        if failure:
            host, code = failure
            path = host.ml / "output/failure"
            reason = path.read_text()[:FAILURE_MAX_CHARS].strip() if path.exists() else "\n".join(
                host.process.lines[-5:])
            return Outcome("Failed", f"AlgorithmError: {reason}, exit code: {code}")
        bucket, prefix = split_s3_uri(self.request["OutputDataConfig"]["S3OutputPath"])
        key = f"{prefix.rstrip('/')}/{self.name}/output/model.tar.gz".lstrip("/")
        self.s3.put_object(Bucket=bucket, Key=key, Body=tar_directory(self.hosts[0].ml / "model"))
        return Outcome("Completed")

    def _upload_checkpoints(self) -> None:
        """From the first host: training/train.py checkpoints there only, the others hold what was downloaded.
        A restored checkpoint deleted in the container is deleted in S3 too, as SageMaker syncs the folder ("If a
        checkpoint is deleted in the SageMaker container, it will also be deleted in the S3 folder",
        https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html)."""
        checkpoints = self.request.get("CheckpointConfig")
        local = self.hosts[0].ml / "checkpoints"
        if not checkpoints or not local.is_dir():      # none, or the job was stopped and its folder is gone
            return
        bucket, prefix = split_s3_uri(checkpoints["S3Uri"])
        for path in local.rglob("*"):
            if path.is_file():
                self.s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(local)}")
        for relative in self.restored:
            if not (local / relative).exists():
                self.s3.delete_object(Bucket=bucket, Key=f"{prefix.rstrip('/')}/{relative}")


class TransformRun(_Job):
    """N instances, each serving its share of the input objects (whole objects, as with S3Prefix input),
    so every output <key>.out holds the predictions of exactly its input object."""

    def __init__(self, s3, request: dict, model: dict, on_line: Line = lambda host, line: None):
        self.s3, self.request, self.name = s3, request, request["TransformJobName"]
        env_dir = image_env()
        self.root = Path(tempfile.mkdtemp(prefix=f"{self.name}-"))
        count = request["TransformResources"]["InstanceCount"]
        self.hosts = [_Host(name, self.root / name) for name in host_names(count)]
        self._start(lambda: self._launch(env_dir, model["PrimaryContainer"], on_line))

    def _launch(self, env_dir: Path, container: dict, on_line: Line) -> None:
        request = self.request
        environment = container.get("Environment", {})
        bucket, objects = list_prefix(self.s3, request["TransformInput"]["DataSource"]["S3DataSource"]["S3Uri"])
        for host, share in zip(self.hosts, shard(objects, len(self.hosts))):
            extract_tar(self.s3, container["ModelDataUrl"], host.ml / "model")
            if "SAGEMAKER_SUBMIT_DIRECTORY" in environment:
                extract_tar(self.s3, environment["SAGEMAKER_SUBMIT_DIRECTORY"], host.ml / "code")
            (host.root / "input").mkdir()
            download(self.s3, bucket, share, host.root / "input")
            (host.root / "output").mkdir()
        for host in self.hosts:
            env = {**image_environment(env_dir, host.root, host.ml), **self._platform_environment(), **environment,
                   **request.get("Environment", {})}
            env.setdefault("OMP_NUM_THREADS", "1")
            command = [str(env_dir / "bin/python"), "-P", str(BATCH_SERVE), "--input", str(host.root / "input"),
                       "--output", str(host.root / "output"), "--failure", str(host.root / "failure"),
                       "--max-payload-mb", str(self._max_payload_mb())]
            for option, value in (("--content-type", request["TransformInput"].get("ContentType")),
                                  ("--accept", request["TransformOutput"].get("Accept"))):
                if value:
                    command += [option, value]
            host.process = _Process(command, env, host.root, lambda line, name=host.name: on_line(name, line))

    def _max_payload_mb(self) -> int:
        """SageMaker's default when the request gives none: 6 MB."""
        return self.request.get("MaxPayloadInMB", 6)

    def _platform_environment(self) -> dict[str, str]:
        """What the batch platform tells the serving container about the job."""
        return {"SAGEMAKER_BATCH": "true",
                "SAGEMAKER_MAX_PAYLOAD_IN_MB": str(self._max_payload_mb()),
                "SAGEMAKER_BATCH_STRATEGY": self.request.get("BatchStrategy", "MultiRecord"),
                "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": str(self.request.get("MaxConcurrentTransforms", 1))}

    def _finish(self, failure: tuple[_Host, int] | None) -> Outcome:
        if failure:
            return Outcome("Failed", self._failure_reason(*failure))
        bucket, prefix = split_s3_uri(self.request["TransformOutput"]["S3OutputPath"])
        for host in self.hosts:
            output = host.root / "output"
            for path in sorted(output.rglob("*.out")):
                self.s3.upload_file(str(path), bucket, f"{prefix.rstrip('/')}/{path.relative_to(output)}".lstrip("/"))
        return Outcome("Completed")

    def _failure_reason(self, host: _Host, code: int) -> str:
        """batch_serve's reason (input file, HTTP status) and the log's last lines (a traceback's end)."""
        failure = host.root / "failure"
        reason = (failure.read_text().strip() if failure.exists()
                  else f"ClientError: the serving container exited with code {code}")
        tail = [line.strip() for line in host.process.lines if line.strip() and line.strip() != reason][-3:]
        return f"{reason}. Last log lines: {' | '.join(tail)}"[:FAILURE_MAX_CHARS]
