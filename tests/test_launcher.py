"""Local jobs behave as the sagemaker-xgboost 3.0-5 image does, because its own launcher runs them.

Throwaway bundles print what they received; the assertions are the image's behaviour (reference
xgboost-container.md §2-§4), not ours. Some tests run the real training/train.py and inference/inference.py.
"""
from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import threading
import time
from collections import defaultdict

import boto3
import numpy as np
import pytest
from moto import mock_aws
from sklearn.datasets import make_classification

from sagestep import ROOT
from sagestep.local import image
from sagestep.local.containers import Outcome, TrainingRun, TransformRun, first_failure, shard
from sagestep.local.job_logs import JobLogs

REGION = "eu-west-1"
BUCKET = "launcher-tests"

REPORTING_TRAIN = """
import json, os, sys
import helper
print("out 1\\tx", flush=True)
print("err 2\\ty", file=sys.stderr, flush=True)
print("out 3", flush=True)
with open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "inputdataconfig.json")) as f:
    config = json.load(f)
env = {k: v for k, v in os.environ.items() if k.startswith(("SM_", "SAGEMAKER_", "AWS_", "CURRENT_HOST", "TMPDIR"))}
report = {"argv": sys.argv[1:], "module": __spec__.name, "env": env, "inputdataconfig": config,
          "helper": helper.VALUE, "channel_files": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"]))}
print("REPORT " + json.dumps(report), flush=True)
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write("trained")
"""

FAILING_TRAIN = """
import os, sys
with open(os.path.join(os.environ["SM_OUTPUT_DIR"], "failure"), "w") as f:
    f.write("the script's own reason")
print("TrainingError: the script's own reason", file=sys.stderr)
sys.exit(3)
"""

REPORTING_INFERENCE = """
import json, os
ENV = ("OMP_NUM_THREADS", "SAGEMAKER_BATCH", "SAGEMAKER_MAX_PAYLOAD_IN_MB", "SAGEMAKER_BATCH_STRATEGY",
       "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS")

def model_fn(model_dir):
    return {"model_files": sorted(os.listdir(model_dir)), "env": {k: os.environ.get(k) for k in ENV}}

def input_fn(data, content_type):
    text = data if isinstance(data, str) else data.decode()
    return {"type": type(data).__name__, "content_type": content_type, "records": len(text.splitlines()), "text": text}

def predict_fn(data, model):
    if "boom" in data["text"]:
        raise ValueError("boom in the payload")
    return {**data, **model}

def output_fn(prediction, accept):
    del prediction["text"]
    return json.dumps({**prediction, "accept": accept}), accept
"""

MODEL_FN_ONLY = """
import os
import xgboost as xgb

def model_fn(model_dir):
    return xgb.Booster(model_file=os.path.join(model_dir, "xgboost-model.json"))
"""


def tar_gz(files: dict[str, str | bytes]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as archive:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            archive.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


@pytest.fixture
def s3():
    with mock_aws():
        client = boto3.client("s3", region_name=REGION)
        client.create_bucket(Bucket=BUCKET, CreateBucketConfiguration={"LocationConstraint": REGION})
        yield client


def put(s3, key: str, body: str | bytes) -> str:
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)
    return f"s3://{BUCKET}/{key}"


def visible_gpus() -> int:
    """What the launcher counts (sagemaker_containers _env.num_gpus): the lines of nvidia-smi --list-gpus."""
    if shutil.which("nvidia-smi") is None:
        return 0
    listing = subprocess.run(["nvidia-smi", "--list-gpus"], capture_output=True, text=True).stdout
    return sum(line.startswith("GPU ") for line in listing.splitlines())


def finish(run, timeout: float = 120) -> Outcome:
    deadline = time.monotonic() + timeout
    while (outcome := run.poll()) is None:
        assert time.monotonic() < deadline, "the job did not finish"
        time.sleep(0.05)
    return outcome


def training_request(name: str, code_uri: str, hyperparameters: dict[str, str], channels: dict[str, str],
                     instances: int = 1, **extra) -> dict:
    """As the Train state sends it: the train channel ShardedByS3Key, the others FullyReplicated."""
    return {
        "TrainingJobName": name,
        "HyperParameters": {**hyperparameters, "sagemaker_program": "train.py",
                            "sagemaker_submit_directory": code_uri, "sagemaker_region": REGION},
        "AlgorithmSpecification": {"TrainingImage": "xgboost", "TrainingInputMode": "File"},
        "InputDataConfig": [{"ChannelName": channel, "ContentType": "text/csv", "CompressionType": "None",
                             "DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri,
                                                             "S3DataDistributionType": "ShardedByS3Key"
                                                             if channel == "train" else "FullyReplicated"}}}
                            for channel, uri in channels.items()],
        "OutputDataConfig": {"S3OutputPath": f"s3://{BUCKET}/models"},
        "ResourceConfig": {"InstanceType": "ml.m5.large", "InstanceCount": instances, "VolumeSizeInGB": 10},
        "StoppingCondition": {"MaxRuntimeInSeconds": 300},
        **extra,
    }


def train(s3, name: str, files: dict[str, str], hyperparameters: dict[str, str], channels: dict[str, str],
          **extra) -> tuple[Outcome, list[str]]:
    code = put(s3, f"code/{name}.tar.gz", tar_gz(files))
    lines: list[str] = []
    outcome = finish(TrainingRun(s3, training_request(name, code, hyperparameters, channels, **extra),
                                 lambda host, line: lines.append(line)))
    return outcome, lines


def start_training(s3, name: str, files: dict[str, str], hyperparameters: dict[str, str], channels: dict[str, str],
                   instances: int, on_line=None) -> tuple[TrainingRun, dict[str, list[str]]]:
    """A training job on several instances, and each host's lines."""
    code = put(s3, f"code/{name}.tar.gz", tar_gz(files))
    lines: dict[str, list[str]] = defaultdict(list)

    def heard(host: str, line: str) -> None:
        lines[host].append(line)
        if on_line:
            on_line(host, line)
    return TrainingRun(s3, training_request(name, code, hyperparameters, channels, instances), heard), lines


def transform(s3, name: str, inference: str, inputs: dict[str, str], content_type: str | None = "text/csv",
              accept: str | None = None, max_payload_mb: int = 6, model_uri: str | None = None, instances: int = 1,
              **environment) -> tuple[Outcome, list[str]]:
    code = put(s3, f"code/{name}.tar.gz", tar_gz({"inference.py": inference}))
    model_uri = model_uri or put(s3, f"models/{name}/model.tar.gz", tar_gz({"model.txt": "weights"}))
    for key, body in inputs.items():
        put(s3, f"inputs/{name}/{key}", body)
    transform_input = {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": f"s3://{BUCKET}/inputs/{name}/"}},
                       "SplitType": "Line", **({"ContentType": content_type} if content_type else {})}
    request = {"TransformJobName": name, "ModelName": name, "BatchStrategy": "MultiRecord", "MaxPayloadInMB": max_payload_mb,
               "TransformInput": transform_input,
               "TransformOutput": {"S3OutputPath": f"s3://{BUCKET}/predictions/{name}", "AssembleWith": "Line",
                                   **({"Accept": accept} if accept else {})},
               "TransformResources": {"InstanceType": "ml.m5.large", "InstanceCount": instances}}
    model = {"PrimaryContainer": {"ModelDataUrl": model_uri, "Environment": {
        "SAGEMAKER_PROGRAM": "inference.py", "SAGEMAKER_SUBMIT_DIRECTORY": code, "SAGEMAKER_REGION": REGION,
        **environment}}}
    lines: list[str] = []
    return finish(TransformRun(s3, request, model, lambda host, line: lines.append(line))), lines


def output_lines(s3, name: str, key: str) -> list[str]:
    body = s3.get_object(Bucket=BUCKET, Key=f"predictions/{name}/{key}.out")["Body"].read().decode()
    return body.splitlines()


# ---------------------------------------------------------------- training

def test_the_script_sees_what_the_image_gives_it(s3):
    put(s3, "data/train/part-1.csv", "1,2\n")
    channels = {"train": f"s3://{BUCKET}/data/train/", "validation": put(s3, "data/validation/v.csv", "3,4\n")}
    hyperparameters = {"eta": "0.1", "flag": "True", "lst": "[1, 2]", "name": "abc", "depth": "3", "obj": '{"a": 1}'}
    outcome, lines = train(s3, "reporting", {"train.py": REPORTING_TRAIN, "helper.py": "VALUE = 42\n"},
                           hyperparameters, channels)
    assert outcome == Outcome("Completed"), lines[-20:]
    report = json.loads(next(line for line in lines if line.startswith("REPORT "))[len("REPORT "):])
    env = report["env"]

    # Hyperparameters: json.loads per value, raw string when that fails; sagemaker_* removed; argv sorted
    # (a list as Python prints it, an object as key=value pairs).
    assert json.loads(env["SM_HPS"]) == {"eta": 0.1, "flag": "True", "lst": [1, 2], "name": "abc", "depth": 3,
                                         "obj": {"a": 1}}
    assert report["argv"] == ["--depth", "3", "--eta", "0.1", "--flag", "True", "--lst", "[1, 2]", "--name", "abc",
                              "--obj", "a=1"]
    assert (env["SM_HP_ETA"], env["SM_HP_FLAG"], env["SM_HP_LST"], env["SM_HP_OBJ"]) == ("0.1", "True", "[1,2]", '{"a":1}')
    assert not any(key.startswith("SM_HP_SAGEMAKER") for key in env)

    # inputdataconfig.json is an object keyed by channel name; the channels are downloaded.
    assert report["inputdataconfig"] == {name: {"ContentType": "text/csv", "TrainingInputMode": "File",
                                                "S3DistributionType": distribution, "RecordWrapperType": "None"}
                                         for name, distribution in (("train", "ShardedByS3Key"),
                                                                    ("validation", "FullyReplicated"))}
    assert report["channel_files"] == ["part-1.csv"]
    ml = env["SAGEMAKER_BASE_DIR"]
    assert env["SM_CHANNEL_TRAIN"] == f"{ml}/input/data/train" and json.loads(env["SM_CHANNELS"]) == ["train", "validation"]
    assert (env["SM_MODEL_DIR"], env["SM_OUTPUT_DATA_DIR"]) == (f"{ml}/model", f"{ml}/output/data")
    # Its /tmp is its own, as a container's: what its processes leave there goes with the instance's folder.
    assert env["TMPDIR"] == os.path.join(os.path.dirname(ml), "tmp")
    assert json.loads(env["SM_HOSTS"]) == ["algo-1"] and env["SM_CURRENT_HOST"] == env["CURRENT_HOST"] == "algo-1"
    assert env["SM_NUM_GPUS"] == str(visible_gpus())
    assert env["SM_NUM_CPUS"] == str(os.cpu_count())
    assert env["SM_MODULE_NAME"] == "train" and env["SM_USER_ENTRY_POINT"] == "train.py"
    assert json.loads(env["SM_TRAINING_ENV"])["hyperparameters"]["depth"] == 3
    # The region comes from the sagemaker_region hyperparameter, not from AWS_REGION.
    assert env["SAGEMAKER_REGION"] == REGION and not any(key.startswith("AWS_") for key in env)

    # The bundle is pip-installed, then run as `python -m train` from the code folder.
    assert report["module"] == "train" and report["helper"] == 42
    installed = next(i for i, line in enumerate(lines) if line.startswith("Successfully installed train-1.0.0"))
    command = next(i for i, line in enumerate(lines) if " -m train --depth 3 --eta 0.1 " in line)
    assert installed < command < lines.index(next(line for line in lines if line.startswith("REPORT ")))

    # Every line, stdout and stderr in the order written, tabs intact.
    assert [line for line in lines if line.startswith(("out ", "err "))] == ["out 1\tx", "err 2\ty", "out 3"]
    model = s3.get_object(Bucket=BUCKET, Key="models/reporting/output/model.tar.gz")["Body"].read()
    with tarfile.open(fileobj=io.BytesIO(model)) as archive:
        assert archive.extractfile("model.txt").read() == b"trained"


def test_the_launcher_overwrites_the_scripts_failure_file(s3):
    outcome, lines = train(s3, "failing", {"train.py": FAILING_TRAIN}, {"depth": "3"},
                           {"train": put(s3, "data/train/a.csv", "1,2\n")})
    assert outcome.status == "Failed"
    reason = outcome.failure_reason
    assert reason.startswith('AlgorithmError: ExecuteUserScriptError:\nCommand "') and reason.endswith('", exit code: 1')
    assert " -m train --depth 3" in reason and "own reason" not in reason
    assert "TrainingError: the script's own reason" in lines


# ---------------------------------------------------------------- batch transform

@pytest.mark.parametrize("content_type, accept, environment, body_type, seen_accept", [
    ("text/csv", None, {}, "str", "application/json"),
    ("text/csv", "*/*", {"SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT": "text/csv"}, "str", "text/csv"),
    ("application/json", "application/jsonlines", {}, "str", "application/jsonlines"),
    ("text/csv; charset=utf-8", "text/csv", {}, "bytes", "text/csv"),
    ("application/x-npy", "text/csv", {}, "bytes", "text/csv"),
])
def test_serving_gives_the_handlers_what_the_image_does(s3, content_type, accept, environment, body_type, seen_accept):
    outcome, lines = transform(s3, "serving", REPORTING_INFERENCE, {"part.csv": "1,2\n3,4\n5,6\n"},
                               content_type=content_type, accept=accept, **environment)
    assert outcome == Outcome("Completed"), lines[-20:]
    [response] = [json.loads(line) for line in output_lines(s3, "serving", "part.csv")]
    assert response["type"] == body_type and response["content_type"] == content_type
    assert response["accept"] == seen_accept and response["records"] == 3
    assert response["model_files"] == ["model.txt"]
    assert response["env"] == {"OMP_NUM_THREADS": "1", "SAGEMAKER_BATCH": "true", "SAGEMAKER_MAX_PAYLOAD_IN_MB": "6",
                               "SAGEMAKER_BATCH_STRATEGY": "MultiRecord", "SAGEMAKER_MAX_CONCURRENT_TRANSFORMS": "1"}


def test_the_models_omp_setting_wins_and_requests_hold_whole_lines_up_to_the_payload_limit(s3):
    record = "9" * 99_999 + "\n"                       # 100 kB: ten records fit in 1 MB, eleven do not
    outcome, lines = transform(s3, "batches", REPORTING_INFERENCE, {"big.csv": record * 15}, max_payload_mb=1,
                               OMP_NUM_THREADS="4")
    assert outcome == Outcome("Completed"), lines[-20:]
    responses = [json.loads(line) for line in output_lines(s3, "batches", "big.csv")]
    assert [r["records"] for r in responses] == [10, 5]
    assert responses[0]["env"]["OMP_NUM_THREADS"] == "4" and responses[0]["env"]["SAGEMAKER_MAX_PAYLOAD_IN_MB"] == "1"


def test_a_handler_exception_fails_the_job_naming_the_file_and_status(s3):
    outcome, lines = transform(s3, "exploding", REPORTING_INFERENCE, {"a.csv": "1,2\n", "b.csv": "1,boom\n"})
    assert outcome.status == "Failed"
    assert outcome.failure_reason.startswith("ClientError: b.csv: POST /invocations answered HTTP 500")
    assert "boom in the payload" in outcome.failure_reason
    assert any(line.startswith("Traceback") for line in lines)


# ---------------------------------------------------------------- the project's own scripts

def test_the_real_training_and_inference_scripts(s3):
    rows = [(int(i >= 20), i / 40, (i * 7 % 40) / 40) for i in range(40)]
    csv = "".join(f"{label},{a},{b}\n" for label, a, b in rows)
    channels = {"train": put(s3, "real/train/train.csv", csv), "validation": put(s3, "real/validation/valid.csv", csv)}
    hyperparameters = {"objective": "binary:logistic", "num_round": "12", "checkpoint_interval": "5", "max_depth": "2"}
    checkpoints = {"S3Uri": f"s3://{BUCKET}/checkpoints/real", "LocalPath": "/opt/ml/checkpoints"}
    outcome, lines = train(s3, "real", {"train.py": (ROOT / "training/train.py").read_text()}, hyperparameters,
                           channels, CheckpointConfig=checkpoints)
    assert outcome == Outcome("Completed"), lines[-20:]
    assert any("validation-logloss:" in line for line in lines)
    saved = s3.list_objects_v2(Bucket=BUCKET, Prefix="checkpoints/real/")["Contents"]
    assert [item["Key"] for item in saved] == ["checkpoints/real/checkpoint-10.json"]

    features = "".join(f"{a},{b}\n" for _, a, b in rows)
    outcome, lines = transform(s3, "real-predict", (ROOT / "inference/inference.py").read_text(), {"test.csv": features},
                               accept="text/csv", model_uri=f"s3://{BUCKET}/models/real/output/model.tar.gz")
    assert outcome == Outcome("Completed"), lines[-20:]
    # No schema in this model: the classes are named by index; the last field is P(class 1).
    rows = [line.split(",") for line in output_lines(s3, "real-predict", "test.csv")]
    predictions = [float(row[-1]) for row in rows]
    assert len(predictions) == 40 and predictions[0] < 0.5 < predictions[-1] and (rows[0][0], rows[-1][0]) == ("0", "1")

    # A bundle with only model_fn gets the image's default input_fn (CSV to DMatrix), predict_fn and output_fn.
    # That CSV decoder fails on a trailing newline (encoder.py csv_to_dmatrix): the last record has none here.
    outcome, lines = transform(s3, "defaults", MODEL_FN_ONLY, {"test.csv": features.rstrip()}, accept="text/csv",
                               model_uri=f"s3://{BUCKET}/models/real/output/model.tar.gz")
    assert outcome == Outcome("Completed"), lines[-20:]
    assert [float(line) for line in output_lines(s3, "defaults", "test.csv")] == pytest.approx(predictions, abs=1e-5)
    outcome, _ = transform(s3, "unsupported", MODEL_FN_ONLY, {"test.csv": features}, content_type="application/json",
                           model_uri=f"s3://{BUCKET}/models/real/output/model.tar.gz")
    # The image wraps its own default input_fn like a user's, so an unsupported type is a 500, not a 415.
    assert outcome.failure_reason.startswith("ClientError: test.csv: POST /invocations answered HTTP 500")
    assert "Content type application/json is not supported by this framework" in outcome.failure_reason


# ---------------------------------------------------------------- several instances

HOSTS_TRAIN = """
import json, os, socket
hosts = json.loads(os.environ["SM_HOSTS"])
with open(os.path.join(os.environ["SM_INPUT_CONFIG_DIR"], "resourceconfig.json")) as f:
    resources = json.load(f)
print("HOST " + json.dumps({"current": os.environ["SM_CURRENT_HOST"], "hosts": hosts, "resources": resources,
                            "train": sorted(os.listdir(os.environ["SM_CHANNEL_TRAIN"])),
                            "validation": sorted(os.listdir(os.environ["SM_CHANNEL_VALIDATION"])),
                            "addresses": [socket.gethostbyname(host) for host in hosts]}), flush=True)
"""

FAILING_HOST_TRAIN = """
import os, sys, time
if os.environ["SM_CURRENT_HOST"] == "algo-2":
    print("TrainingError: algo-2's own reason", file=sys.stderr, flush=True)
    sys.exit(3)
time.sleep(110)
print("algo-1 slept", flush=True)
"""

ECHO_INFERENCE = """
import os
HOST = os.path.basename(os.path.dirname(os.environ["SAGEMAKER_BASE_DIR"]))

def model_fn(model_dir):
    return None

def input_fn(data, content_type):
    return data if isinstance(data, str) else data.decode()

def predict_fn(data, model):
    return "".join(f"{HOST},{line}\\n" for line in data.splitlines())

def output_fn(prediction, accept):
    return prediction, accept
"""


ROTATING_CHECKPOINTS = """
import os
directory = os.environ["SAGESTEP_CHECKPOINT_DIR"]
print("RESTORED " + " ".join(sorted(os.listdir(directory))), flush=True)
os.remove(os.path.join(directory, "checkpoint-5.json"))
with open(os.path.join(directory, "checkpoint-10.json"), "w") as f:
    f.write("ten")
with open(os.path.join(os.environ["SM_MODEL_DIR"], "model.txt"), "w") as f:
    f.write("trained")
"""


def test_a_checkpoint_deleted_in_the_container_is_deleted_in_s3(s3):
    """SageMaker syncs the checkpoint folder both ways for deletes (model-checkpoints page): the training role
    has s3:DeleteObject there for it (tests/test_iam.py)."""
    put(s3, "checkpoints/rotate/checkpoint-5.json", "five")
    channels = {"train": put(s3, "rotate/train/part.csv", "1,2\n")}
    checkpoints = {"S3Uri": f"s3://{BUCKET}/checkpoints/rotate", "LocalPath": "/opt/ml/checkpoints"}
    outcome, lines = train(s3, "rotate", {"train.py": ROTATING_CHECKPOINTS}, {}, channels, CheckpointConfig=checkpoints)
    assert outcome == Outcome("Completed"), lines[-20:]
    assert "RESTORED checkpoint-5.json" in lines
    saved = s3.list_objects_v2(Bucket=BUCKET, Prefix="checkpoints/rotate/")["Contents"]
    assert [item["Key"] for item in saved] == ["checkpoints/rotate/checkpoint-10.json"]


def test_objects_are_dealt_whole_in_key_order():
    assert shard(["c", "a", "e", "b", "d"], 2) == [["a", "c", "e"], ["b", "d"]]
    assert shard(["a"], 3) == [["a"], [], []]


def put_parts(s3, prefix: str, rows: np.ndarray, parts: int, fmt: str = "%.6g") -> list[str]:
    """rows as part-00000.csv … under prefix, as the preprocess step writes them."""
    keys = []
    for index, chunk in enumerate(np.array_split(rows, parts)):
        text = "\n".join(",".join(fmt % value for value in row) for row in chunk) + "\n"
        keys.append(put(s3, f"{prefix}/part-{index:05d}.csv", text))
    return keys


def test_each_host_gets_its_share_of_train_and_all_of_validation_and_resolves_the_others(s3):
    put_parts(s3, "sharded/train", np.arange(10.0).reshape(5, 2), 5)
    put(s3, "sharded/validation/part-00000.csv", "1,2\n")
    put(s3, "sharded/validation/schema.json", "{}")
    channels = {"train": f"s3://{BUCKET}/sharded/train/", "validation": f"s3://{BUCKET}/sharded/validation/"}
    run, lines = start_training(s3, "sharded", {"train.py": HOSTS_TRAIN}, {}, channels, instances=2)
    assert finish(run) == Outcome("Completed"), dict(lines)
    seen = {host: json.loads(next(line for line in lines[host] if line.startswith("HOST "))[len("HOST "):])
            for host in ("algo-1", "algo-2")}
    assert seen["algo-1"]["train"] == ["part-00000.csv", "part-00002.csv", "part-00004.csv"]
    assert seen["algo-2"]["train"] == ["part-00001.csv", "part-00003.csv"]
    for host, report in seen.items():
        assert report["current"] == host and report["hosts"] == ["algo-1", "algo-2"]
        assert report["resources"]["current_host"] == host and report["resources"]["hosts"] == ["algo-1", "algo-2"]
        assert report["validation"] == ["part-00000.csv", "schema.json"]
    # Both hosts resolve both names, to two loopback addresses of one block of the job's own.
    first, second = seen["algo-1"]["addresses"]
    assert seen["algo-2"]["addresses"] == [first, second] and first.startswith("127.") and first != "127.0.0.1"
    assert first.rsplit(".", 1) == [second.rsplit(".", 1)[0], "1"] and second.endswith(".2")


def test_a_failing_host_fails_the_job_with_its_reason_and_stops_the_others(s3):
    channels = {"train": put(s3, "failing-host/train/part-00000.csv", "1,2\n")}
    run, lines = start_training(s3, "failing-host", {"train.py": FAILING_HOST_TRAIN}, {}, channels, instances=2)
    outcome = finish(run)
    assert outcome.status == "Failed"
    # algo-2's launcher exited 1 with its ExecuteUserScriptError; algo-1 was stopped (SIGKILL), not waited for.
    assert outcome.failure_reason.startswith("AlgorithmError: ExecuteUserScriptError:")
    assert outcome.failure_reason.endswith(", exit code: 1")
    assert "TrainingError: algo-2's own reason" in lines["algo-2"]
    assert "algo-1 slept" not in lines["algo-1"] and run.hosts[0].process.proc.returncode == -signal.SIGKILL


def test_first_failure_is_the_host_that_ended_first():
    class Ended:
        def __init__(self, code, ended):
            self.code, self.ended = code, ended

        def finished(self):
            return self.code

    class Host:
        def __init__(self, name, code, ended):
            self.name, self.process = name, Ended(code, ended)
    hosts = [Host("algo-1", 1, 5.0), Host("algo-2", 3, 2.0), Host("algo-3", None, None)]
    assert [(host.name, code) for host, code in [first_failure(hosts)]] == [("algo-2", 3)]
    assert first_failure([Host("algo-1", 0, 1.0), Host("algo-2", None, None)]) is None


def binary_dataset(s3, name: str) -> dict[str, str]:
    """4,000 rows: train in 5 part files, validation with its schema.json, test features in 3 parts."""
    x, y = make_classification(n_samples=4000, n_features=8, n_informative=5, random_state=7)
    rows = np.column_stack([y, x])
    put_parts(s3, f"{name}/train", rows[:2800], 5)
    put_parts(s3, f"{name}/validation", rows[2800:3400], 2)
    put(s3, f"{name}/validation/schema.json", json.dumps({"label": {"name": "y", "classes": ["no", "yes"]}}))
    put_parts(s3, f"{name}/test-features", x[3400:], 3)
    return {"train": f"s3://{BUCKET}/{name}/train/", "validation": f"s3://{BUCKET}/{name}/validation/"}


def model_files(s3, name: str) -> tarfile.TarFile:
    body = s3.get_object(Bucket=BUCKET, Key=f"models/{name}/output/model.tar.gz")["Body"].read()
    return tarfile.open(fileobj=io.BytesIO(body))


def test_two_hosts_train_one_model_as_good_as_one_host(s3):
    """Two instances predicting it end to end: test_local.py's two-host run; sharing objects between
    instances: the next test."""
    channels = binary_dataset(s3, "data")
    hyperparameters = {"objective": "binary:logistic", "eval_metric": "logloss", "num_round": "60", "max_depth": "4"}
    script = {"train.py": (ROOT / "training/train.py").read_text()}
    single, single_lines = start_training(s3, "single", script, hyperparameters, channels, instances=1)
    assert finish(single) == Outcome("Completed"), single_lines["algo-1"][-20:]

    logs = boto3.client("logs", region_name=REGION)
    log = JobLogs(logs, "training", "pair", ["algo-1", "algo-2"])
    pair, lines = start_training(s3, "pair", script, hyperparameters, channels, instances=2, on_line=log.add)
    while pair.poll_running():
        time.sleep(0.05)
    assert [host.process.finished() for host in pair.hosts] == [0, 0], dict(lines)
    # Only the first host writes the model.
    assert sorted(p.name for p in (pair.hosts[0].ml / "model").iterdir()) == ["metrics.json", "schema.json",
                                                                              "xgboost-model.json"]
    assert not any((pair.hosts[1].ml / "model").iterdir())
    assert finish(pair) == Outcome("Completed")

    # One model across both hosts, as good as on one host.
    metrics = {name: json.load(model_files(s3, name).extractfile("metrics.json"))["metrics"]
               for name in ("single", "pair")}
    assert metrics["pair"]["validation:logloss"] == pytest.approx(metrics["single"]["validation:logloss"], rel=0.01)
    assert metrics["pair"]["validation:logloss"] < 0.35
    # Only the first host prints the metric lines the console scrapes, in its own stream, as SageMaker names it.
    log.flush()
    streams = [s["logStreamName"] for s in logs.describe_log_streams(logGroupName="/aws/sagemaker/TrainingJobs")[
        "logStreams"]]
    assert sorted(stream.rsplit("-", 1)[0] for stream in streams) == ["pair/algo-1", "pair/algo-2"]
    assert all(re.fullmatch(r"pair/algo-[12]-\d{10}", stream) for stream in streams)
    rounds = [line for line in log.streams["algo-1"].stored if "#011validation-logloss:" in line]
    assert len(rounds) == json.load(model_files(s3, "pair").extractfile("metrics.json"))["rounds"]
    printed = {host: [line for line in log.streams[host].stored
                      if "validation-logloss" in line or line.startswith("final ")] for host in ("algo-1", "algo-2")}
    assert printed["algo-1"][-1].startswith("final {") and printed["algo-2"] == []


def test_a_transform_on_two_instances_shares_whole_objects_and_keeps_outputs_aligned(s3):
    inputs = {f"part-{index:05d}.csv": "".join(f"{index},{row}\n" for row in range(index + 2)) for index in range(5)}
    outcome, lines = transform(s3, "shared", ECHO_INFERENCE, inputs, accept="text/csv", instances=2)
    assert outcome == Outcome("Completed"), lines[-20:]
    served = {}
    for key, text in inputs.items():
        rows = [line.split(",", 1) for line in output_lines(s3, "shared", key)]
        assert [row[1] for row in rows] == text.splitlines(), key
        [served[key]] = {row[0] for row in rows}          # one instance served the whole object
    assert served == {"part-00000.csv": "algo-1", "part-00001.csv": "algo-2", "part-00002.csv": "algo-1",
                      "part-00003.csv": "algo-2", "part-00004.csv": "algo-1"}


# ---------------------------------------------------------------- the environment itself

@pytest.fixture
def small_env(tmp_path, monkeypatch):
    """image_env() with a requirements file that installs only pip (a script to relocate): the build machinery,
    in seconds."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text(next(line for line in image.REQUIREMENTS.read_text().splitlines()
                                 if line.startswith("pip==")) + "\n")
    monkeypatch.setattr(image, "REQUIREMENTS", requirements)
    monkeypatch.setattr(image, "ENV_DIR", tmp_path / "env" / "image-env")
    return requirements


def test_the_environment_is_built_once_and_again_when_its_requirements_change(small_env, capsys):
    built: list[object] = []
    threads = [threading.Thread(target=lambda: built.append(image.image_env())) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    env = image.ENV_DIR
    assert built == [env, env] and capsys.readouterr().err.count("building the SageMaker XGBoost image") == 1
    assert (env / "bin/pip").read_text().startswith(f"#!{env}/bin/python")
    assert sorted(p.name for p in env.parent.iterdir()) == ["image-env", "image-env.lock"]
    image.image_env()
    assert capsys.readouterr().err == ""
    small_env.write_text("# nothing, but changed\n")
    image.image_env()
    assert "building" in capsys.readouterr().err and (env / "bin/python").exists()


def test_a_failed_build_is_one_clear_line(small_env):
    small_env.write_text("this is not = a requirement\n")
    with pytest.raises(image.ImageEnvError) as raised:
        image.image_env()
    message = str(raised.value)
    assert message.startswith("building the SageMaker XGBoost image environment failed at uv pip install")
    assert "\n" not in message and not image.ENV_DIR.exists()
