"""SageMaker script-mode training for the XGBoost framework container (Python 3.10, xgboost 3.0.5).

Imports only the standard library, numpy and xgboost. Contract: channels in SM_CHANNEL_TRAIN and
SM_CHANNEL_VALIDATION (CSV, label first, no header; schema.json beside the validation data),
hyperparameters in SM_HPS and as --key value, the model to SM_MODEL_DIR. On failure: one line
"<Error>: <reason>" on stderr and exit 1 (the image's launcher overwrites /opt/ml/output/failure with
its own text, so the log is where the reason shows).

On several instances (SM_HOSTS), one model is trained across them with XGBoost's collective, as the
image's own distributed.py does: the tracker on the first host at port 9099, every host its share of
the train channel (ShardedByS3Key) and the whole validation channel; only the first host prints the
metric lines, writes checkpoints and saves the model.
"""
from __future__ import annotations

import argparse
import contextlib
import glob
import json
import os
import re
import shutil
import socket
import sys
import time
from dataclasses import dataclass
from typing import Iterator

import numpy as np
import xgboost as xgb
from xgboost import collective
from xgboost.tracker import RabitTracker

MODEL_FILE = "xgboost-model.json"
SCHEMA_FILE = "schema.json"
CHECKPOINT_DIR = "/opt/ml/checkpoints"
CHECKPOINT = re.compile(r"^checkpoint-(\d+)\.json$")
# Ours, not XGBoost's: rounds and early stopping are arguments of xgb.train.
TRAINING_KEYS = {"num_round": 300, "early_stopping_rounds": 20, "checkpoint_interval": 10}
DEFAULT_PARAMS = {"max_depth": 6, "eta": 0.1, "subsample": 1.0, "min_child_weight": 1, "tree_method": "hist"}
# The image's distributed.py: its tracker listens on the first host at 9099 (Rabit's first_port).
TRACKER_PORT = 9099
# How long a host waits for the first host's name to resolve and its tracker to answer: SageMaker's
# instances boot, download their data and install the code bundle each at their own pace.
JOIN_SECONDS = 600


class TrainingError(Exception):
    """A problem with the data or the hyperparameters; its message is the line the script ends with."""


class EmptyChannel(TrainingError):
    """A channel without rows: an error on one host; on several, a host whose train share is empty."""


@dataclass(frozen=True)
class Cluster:
    """The job's instances (SM_HOSTS) and this one (SM_CURRENT_HOST)."""
    hosts: tuple[str, ...]
    current: str

    @property
    def distributed(self) -> bool:
        return len(self.hosts) > 1

    @property
    def first(self) -> bool:
        """The host that runs the tracker and alone prints, checkpoints and saves (the launcher's master)."""
        return self.current == self.hosts[0]


def read_cluster() -> Cluster:
    hosts = tuple(json.loads(os.environ.get("SM_HOSTS", '["algo-1"]')))
    return Cluster(hosts, os.environ.get("SM_CURRENT_HOST", hosts[0]))


def _number(text: str) -> object:
    try:
        return int(text)
    except ValueError:
        try:
            return float(text)
        except ValueError:
            return text


def read_hyperparameters(argv: list[str]) -> dict[str, object]:
    """SM_HPS (JSON) overlaid with --key value arguments; numbers as numbers."""
    raw = {k: str(v) for k, v in json.loads(os.environ.get("SM_HPS", "{}")).items()}
    parser = argparse.ArgumentParser(add_help=False)
    _, rest = parser.parse_known_args(argv)
    for key, value in zip(rest[::2], rest[1::2]):
        raw[key.lstrip("-")] = value
    return {k: _number(v) for k, v in raw.items() if not k.startswith("sagemaker_")}


def read_channel(name: str) -> tuple[np.ndarray, np.ndarray]:
    """All CSV files of a channel: the label first, empty fields as missing values."""
    directory = os.environ.get(f"SM_CHANNEL_{name.upper()}")
    if not directory or not os.path.isdir(directory):
        raise TrainingError(f"channel {name!r} is missing (SM_CHANNEL_{name.upper()} is not a folder)")
    files = sorted(glob.glob(os.path.join(directory, "**", "*.csv"), recursive=True))
    if not files:
        raise EmptyChannel(f"channel {name!r} has no .csv files in {directory}")
    parts = []
    for path in files:
        try:
            # numpy's C parser; empty fields (missing values) make it fail, and genfromtxt takes over.
            data = np.loadtxt(path, delimiter=",", dtype=np.float32, ndmin=2)
        except ValueError:
            try:
                data = np.genfromtxt(path, delimiter=",", dtype=np.float32, filling_values=np.nan, ndmin=2,
                                     invalid_raise=True)
            except ValueError as error:
                detail = " ".join(str(error).replace("Some errors were detected !", "").split())
                raise TrainingError(f"channel {name!r}, file {os.path.basename(path)}: {detail}") from None
        if data.size:
            parts.append(data)
    if not parts:
        raise EmptyChannel(f"channel {name!r} has no rows")
    widths = {p.shape[1] for p in parts}
    if len(widths) != 1:
        raise TrainingError(f"channel {name!r}: files have different column counts {sorted(widths)}")
    data = np.vstack(parts)
    labels = data[:, 0]
    if np.isnan(labels).any():
        row = int(np.argmax(np.isnan(labels))) + 1
        raise TrainingError(f"channel {name!r}, row {row}: the label (first column) is missing")
    return data[:, 1:], labels


def booster_params(hyperparameters: dict[str, object], num_gpus: int) -> dict[str, object]:
    params = {**DEFAULT_PARAMS, **{k: v for k, v in hyperparameters.items() if k not in TRAINING_KEYS}}
    if isinstance(params.get("eval_metric"), str) and "," in params["eval_metric"]:
        # Several metrics, "mlogloss,auc": the launcher passes every hyperparameter as one string.
        params["eval_metric"] = [name.strip() for name in params["eval_metric"].split(",")]
    if "objective" not in params:
        raise TrainingError("no objective hyperparameter (the preprocess step sets it from the labels)")
    params["device"] = "cuda" if num_gpus > 0 else "cpu"
    params.setdefault("nthread", os.cpu_count() or 1)
    return params


class PrintMetrics(xgb.callback.TrainingCallback):
    """XGBoost's own evaluation line, "[<round>]\ttrain-<metric>:<value>\tvalidation-<metric>:<value>",
    one line per metric so that validation comes last: the image's metric regex
    ".*\\[[0-9]+\\].*#011validation-<metric>:(\\S+)" captures up to the next whitespace, and in
    CloudWatch a tab is "#011", not whitespace."""

    def __init__(self, done: int = 0):
        super().__init__()
        self.done = done      # rounds finished before a resume, so round numbers continue

    def after_iteration(self, model, epoch, evals_log) -> bool:
        # One write per line: stdout and the launcher's stderr share one pipe, and an unbuffered print()
        # writes the text and its newline separately, which another writer could split.
        for line in metric_lines(self.done + epoch, evals_log):
            sys.stdout.write(line + "\n")
            sys.stdout.flush()
        return False


def metric_lines(round_number: int, evals_log: dict) -> list[str]:
    """One line per metric, the train value before the validation one."""
    metrics = dict.fromkeys(metric for history in evals_log.values() for metric in history)
    return [f"[{round_number}]" + "".join(f"\t{split}-{metric}:{evals_log[split][metric][-1]:.6f}"
                                          for split in ("train", "validation") if metric in evals_log.get(split, {}))
            for metric in metrics]


class SaveCheckpoints(xgb.callback.TrainingCallback):
    """Managed spot training: save every `interval` rounds, keeping only the latest."""

    def __init__(self, directory: str, interval: int, done: int):
        super().__init__()
        self.directory, self.interval, self.done = directory, interval, done

    def after_iteration(self, model, epoch, evals_log) -> bool:
        rounds = self.done + epoch + 1
        if rounds % self.interval == 0:
            path = os.path.join(self.directory, f"checkpoint-{rounds}.json")
            partial = os.path.join(self.directory, f"checkpoint-{rounds}.partial.json")   # JSON format by suffix
            model.save_model(partial)
            os.replace(partial, path)
            for old in os.listdir(self.directory):
                match = CHECKPOINT.match(old)
                if match and int(match.group(1)) < rounds:
                    os.remove(os.path.join(self.directory, old))
        return False


class InOrder(xgb.callback.TrainingCallback):
    """Callbacks called in this order, every one every round. XGBoost keeps its callbacks in a set and
    stops at the first that asks to stop (any() over it), so the early stopping callback could come
    first in the final round and the metric line of that round went unprinted, now and then."""

    def __init__(self, callbacks: list[xgb.callback.TrainingCallback]):
        super().__init__()
        self.callbacks = callbacks

    def before_training(self, model):
        for callback in self.callbacks:
            model = callback.before_training(model)
        return model

    def after_training(self, model):
        for callback in self.callbacks:
            model = callback.after_training(model)
        return model

    def after_iteration(self, model, epoch, evals_log) -> bool:
        return any([callback.after_iteration(model, epoch, evals_log) for callback in self.callbacks])


def latest_checkpoint(directory: str) -> tuple[str | None, int]:
    """The newest checkpoint and how many rounds it holds (read from the model, not the name)."""
    found = [(int(m.group(1)), name) for name in os.listdir(directory) if (m := CHECKPOINT.match(name))]
    if not found:
        return None, 0
    path = os.path.join(directory, max(found)[1])
    return path, xgb.Booster(model_file=path).num_boosted_rounds()


def xgboost_reason(error: xgb.core.XGBoostError) -> str:
    """The innermost cause of a collective error ("- [socket.h:79|…]: Failed to bind socket…"), without
    the stack trace; XGBoost's first line names only its own source file."""
    lines = str(error).split("Stack trace:")[0].strip().splitlines()
    return re.sub(r"^- \[[^]]*\]:\s*", "", lines[-1].strip()) if lines else "unknown error"


def resolve(host: str, deadline: float) -> str:
    """The host's IP address: SageMaker's names resolve only once every instance is up (its docs on
    distributed training; the image's launcher retries its lookups too)."""
    while True:
        try:
            return socket.gethostbyname(host)
        except OSError as error:
            if time.monotonic() > deadline:
                raise TrainingError(f"cannot resolve host {host!r}: {error}") from None
            time.sleep(1)


def join(args: dict[str, object], deadline: float) -> None:
    """collective.init, retried until the tracker answers: XGBoost does not wait for a tracker that is
    not listening yet (the image's distributed.py retries the same way)."""
    while True:
        try:
            collective.init(**args)
            return
        except xgb.core.XGBoostError as error:
            if time.monotonic() > deadline:
                raise TrainingError(f"cannot join the training cluster through the tracker at "
                                    f"{args['dmlc_tracker_uri']}:{args['dmlc_tracker_port']}: "
                                    f"{xgboost_reason(error)}") from None
            time.sleep(1)


@contextlib.contextmanager
def communicator(cluster: Cluster) -> Iterator[None]:
    """XGBoost's collective across the hosts, for the DMatrix and the training: the first host runs the
    tracker, every host joins it with its index as task id (zero-padded: the tracker sorts task ids as
    text). On one host, nothing. After an error the process just exits: finalizing would wait for peers."""
    if not cluster.distributed:
        yield
        return
    deadline = time.monotonic() + JOIN_SECONDS
    address = resolve(cluster.hosts[0], deadline)
    tracker = None
    if cluster.first:
        try:
            tracker = RabitTracker(n_workers=len(cluster.hosts), host_ip=address, port=TRACKER_PORT, sortby="task")
            tracker.start()
        except xgb.core.XGBoostError as error:
            raise TrainingError(f"cannot start the tracker on {cluster.current} ({address}:{TRACKER_PORT}): "
                                f"{xgboost_reason(error)}") from None
    join({"dmlc_tracker_uri": address, "dmlc_tracker_port": TRACKER_PORT,
          "dmlc_task_id": f"{cluster.hosts.index(cluster.current):05d}"}, deadline)
    yield
    collective.finalize()
    if tracker is not None:
        tracker.wait_for()
        tracker.free()


def read_train_share(cluster: Cluster) -> tuple[np.ndarray, np.ndarray] | None:
    """This host's train rows; None for a host of several whose ShardedByS3Key share is empty (more
    instances than train objects): it joins the training with no rows, as XGBoost allows."""
    try:
        return read_channel("train")
    except EmptyChannel:
        if not cluster.distributed:
            raise
        print(f"{cluster.current}: no train rows in this host's share of the train channel", flush=True)
        return None


def train(hyperparameters: dict[str, object], cluster: Cluster) -> dict[str, object]:
    settings = {k: int(hyperparameters.get(k, v)) for k, v in TRAINING_KEYS.items()}
    params = booster_params(hyperparameters, int(os.environ.get("SM_NUM_GPUS", "0")))
    share = read_train_share(cluster)
    x_valid, y_valid = read_channel("validation")
    x_train, y_train = share or (np.empty((0, x_valid.shape[1]), np.float32), np.empty(0, np.float32))
    if x_train.shape[1] != x_valid.shape[1]:
        raise TrainingError(f"train has {x_train.shape[1]} features, validation {x_valid.shape[1]}")

    checkpoint_dir = os.environ.get("SAGESTEP_CHECKPOINT_DIR", CHECKPOINT_DIR)
    resume_from, done = (None, 0)
    callbacks: list[xgb.callback.TrainingCallback] = []
    if os.path.isdir(checkpoint_dir):
        # Every host resumes from the same checkpoint; only the first one writes them.
        resume_from, done = latest_checkpoint(checkpoint_dir)
        if cluster.first:
            callbacks.append(SaveCheckpoints(checkpoint_dir, settings["checkpoint_interval"], done))
        if resume_from:
            print(f"resuming from {os.path.basename(resume_from)} ({done} rounds done)", flush=True)
    # The round's line and checkpoint first, the decision to stop last; the metric lines from the first host
    # only, or the console's curves would count every round once per host.
    callbacks = [*([PrintMetrics(done)] if cluster.first else []), *callbacks,
                 xgb.callback.EarlyStopping(rounds=settings["early_stopping_rounds"])]
    started = time.perf_counter()
    with communicator(cluster):
        # Inside the collective: a DMatrix agrees on its columns with the other hosts' ones.
        dtrain = xgb.DMatrix(x_train, label=y_train, missing=np.nan)
        dvalid = xgb.DMatrix(x_valid, label=y_valid, missing=np.nan)
        try:
            booster = xgb.train(params, dtrain, num_boost_round=max(settings["num_round"] - done, 0),
                                evals=[(dtrain, "train"), (dvalid, "validation")],
                                callbacks=[InOrder(callbacks)], verbose_eval=False, xgb_model=resume_from)
        except xgb.core.XGBoostError as error:
            raise TrainingError(f"XGBoost rejected the training: {str(error).splitlines()[0]}") from None
        seconds = time.perf_counter() - started
        # A collective call too: the train metric is over every host's rows.
        scores = booster.eval_set([(dtrain, "train"), (dvalid, "validation")],
                                  iteration=booster.num_boosted_rounds() - 1)
    # "validation-aft-nloglik:0.1" -> "validation:aft-nloglik": only the first "-" separates the split.
    final = {pair.split(":")[0].replace("-", ":", 1): float(pair.split(":")[1]) for pair in scores.split()[1:]}
    return {"booster": booster, "metrics": final, "seconds": seconds, "params": params,
            "rounds": booster.num_boosted_rounds(), "best_iteration": getattr(booster, "best_iteration", None)}


def save(result: dict[str, object], model_dir: str) -> None:
    os.makedirs(model_dir, exist_ok=True)
    result["booster"].save_model(os.path.join(model_dir, MODEL_FILE))
    metrics = {"metrics": result["metrics"], "rounds": result["rounds"], "best_iteration": result["best_iteration"],
               "training_seconds": round(result["seconds"], 3), "device": result["params"]["device"],
               "objective": result["params"]["objective"], "xgboost": xgb.__version__}
    with open(os.path.join(model_dir, "metrics.json"), "w") as f:
        json.dump(metrics, f, indent=2)
    # In validation, not train: validation is FullyReplicated, so every host has it.
    schema = os.path.join(os.environ.get("SM_CHANNEL_VALIDATION", ""), SCHEMA_FILE)
    if os.path.isfile(schema):
        shutil.copyfile(schema, os.path.join(model_dir, SCHEMA_FILE))
    output_dir = os.environ.get("SM_OUTPUT_DATA_DIR")
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        shutil.copyfile(os.path.join(model_dir, "metrics.json"), os.path.join(output_dir, "metrics.json"))


def fail(reason: str) -> int:
    """The reason, as one line on stderr: the job's log is where people read it (R9)."""
    print(" ".join(reason.split()), file=sys.stderr, flush=True)
    return 1


def main(argv: list[str] | None = None) -> int:
    try:
        cluster = read_cluster()
        result = train(read_hyperparameters(sys.argv[1:] if argv is None else argv), cluster)
        if not cluster.first:
            return 0
        save(result, os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    except Exception as error:  # noqa: BLE001 - a TrainingError or anything else: one line with the reason
        return fail(f"{type(error).__name__}: {error}")
    print(f"final {json.dumps(result['metrics'])}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
