"""Hyperparameter tuning jobs run locally as SageMaker runs them: every trial a real training job.

CreateHyperParameterTuningJob, through any client (recorded by moto, which would complete it at once with a made-up
best job), starts a TuningRun: trials named `<tuning-name>-<NNN>-<8 hex>` (reference/tuning-registry.md §1.2), each a
CreateTrainingJob built from TrainingJobDefinition, its StaticHyperParameters and the trial's tuned values (strings,
categorical values exactly as listed), tagged with the tuning job's Tags, recorded in moto with its TuningJobArn and
run through the image's launcher (sagemaker_task.start_training); at most MaxParallelTrainingJobs at once,
MaxNumberOfTrainingJobs in all. A trial's objective is the last value of the objective metric scraped from its log
with the image's metric definitions; DescribeHyperParameterTuningJob tells the truth throughout (status, counters,
BestTrainingJob). StopHyperParameterTuningJob and ListTrainingJobsForHyperParameterTuningJob, which moto lacks,
are answered here (answer), through the engine's clients and the served endpoint alike.
"""
from __future__ import annotations

import hashlib
import itertools
import json
import math
import random
import threading
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from botocore.exceptions import ClientError

from . import sagemaker_task as tasks
from .containers import Outcome
from .moto_adapter import task_timed_out

POLL_SECONDS = 0.1
# "No training job succeeded after 5 attempts. Please take a look at the training job failures to get more details."
# (a tuning job's FailureReason, https://github.com/aws/amazon-sagemaker-examples/issues/2437): SageMaker ends a
# tuning job Failed once its first 5 trials all failed. That it also fails one whose every trial (fewer than 5)
# failed is this engine's reading, not documented.
FIRST_ATTEMPTS = 5
# SageMaker passes the objective's name to every trial (reference/tuning-registry.md §1.5); the image's launcher
# strips it from the script's arguments (§1.10).
OBJECTIVE_HYPERPARAMETER = "_tuning_objective_metric"
HYPERBAND_REFUSED = ("the local engine does not run the Hyperband strategy: its early stopping of trials by "
                     "resource (StrategyConfig.HyperbandStrategyConfig) is not emulated; tune with Bayesian, Random "
                     "or Grid locally, or run this tuning job on AWS")
# What a trial request copies from HyperParameterTrainingJobDefinition, where both shapes have the member.
DEFINITION_MEMBERS = ("RoleArn", "InputDataConfig", "VpcConfig", "OutputDataConfig", "ResourceConfig",
                      "StoppingCondition", "EnableNetworkIsolation", "EnableInterContainerTrafficEncryption",
                      "EnableManagedSpotTraining", "CheckpointConfig", "RetryStrategy", "Environment")
ALGORITHM_MEMBERS = ("TrainingImage", "AlgorithmName", "TrainingInputMode", "MetricDefinitions")


# ---------------------------------------------------------------- the search space and the strategies

@dataclass(frozen=True)
class Range:
    """One tuned hyperparameter: Integer, Continuous (low, high, scaling) or Categorical (values)."""
    name: str
    kind: str
    low: float = 0.0
    high: float = 0.0
    scaling: str = "Auto"
    values: tuple[str, ...] = ()


def ranges_of(config: dict) -> list[Range]:
    """ParameterRanges in request order: integer, continuous, then categorical ranges."""
    ranges = config.get("ParameterRanges", {})
    numeric = [Range(r["Name"], kind, float(r["MinValue"]), float(r["MaxValue"]), r.get("ScalingType", "Auto"))
               for kind in ("Integer", "Continuous") for r in ranges.get(f"{kind}ParameterRanges", [])]
    return numeric + [Range(r["Name"], "Categorical", values=tuple(r["Values"]))
                      for r in ranges.get("CategoricalParameterRanges", [])]


def as_hyperparameter(item: Range, value: float) -> str:
    """The string a trial receives: an integer's digits, a float's shortest repr."""
    return str(int(round(value))) if item.kind == "Integer" else repr(float(value))


def sample(item: Range, rng: random.Random) -> str:
    """Random search: uniform on the range's scale (Logarithmic: uniform in log x; ReverseLogarithmic: uniform in
    log(1 - x)); Auto is taken as Linear here (SageMaker chooses; what it chooses is not documented). Integer ranges
    include both ends."""
    if item.kind == "Categorical":
        return rng.choice(item.values)
    if item.scaling == "Logarithmic":
        value = math.exp(rng.uniform(math.log(item.low), math.log(item.high)))
    elif item.scaling == "ReverseLogarithmic":
        value = 1 - math.exp(rng.uniform(math.log(1 - item.high), math.log(1 - item.low)))
    elif item.kind == "Integer":
        return str(rng.randint(int(item.low), int(item.high)))
    else:
        value = rng.uniform(item.low, item.high)
    return as_hyperparameter(item, min(max(value, item.low), item.high))


def grid(ranges: list[Range]) -> list[dict[str, str]]:
    """Every combination of the categorical values, in a fixed order: the first range varies slowest."""
    return [dict(zip([r.name for r in ranges], combination)) for combination in
            itertools.product(*[r.values for r in ranges])]


def seed_of(name: str, config: dict) -> int:
    """The request's RandomSeed, else one derived from the tuning job's name: the same job draws the same trials."""
    if "RandomSeed" in config:
        return int(config["RandomSeed"])
    return int.from_bytes(hashlib.sha256(name.encode()).digest()[:4], "big")


class RandomSearch:
    def __init__(self, ranges: list[Range], seed: int):
        self.ranges, self.rng = ranges, random.Random(seed)

    def ask(self) -> tuple[dict[str, str], Any] | None:
        return {r.name: sample(r, self.rng) for r in self.ranges}, None

    def tell(self, token: Any, value: float | None) -> None:
        """Random search learns nothing from a result."""


class GridSearch:
    def __init__(self, ranges: list[Range]):
        self.combinations = iter(grid(ranges))

    def ask(self) -> tuple[dict[str, str], Any] | None:
        combination = next(self.combinations, None)
        return None if combination is None else (combination, None)

    def tell(self, token: Any, value: float | None) -> None:
        """Grid search learns nothing from a result."""


class BayesianSearch:
    """Bayesian strategy, locally: optuna's TPE sampler (a Tree-structured Parzen Estimator), seeded, asked for
    each trial as a slot frees and told each trial's objective (a trial without one is a failed trial). SageMaker
    treats tuning as a regression problem with its own implementation of Bayesian optimisation ("How Hyperparameter
    Tuning Works", SageMaker developer guide; a Gaussian-process surrogate, as its references describe, though the
    guide does not say so): it models the objective itself, where TPE models the densities of good and of bad values
    and proposes where their ratio is highest. TPE's first 10 trials are uniform draws; the trials differ from
    AWS's, the search is of the same kind (ReverseLogarithmic is searched as log(1 - x))."""

    def __init__(self, ranges: list[Range], seed: int, maximize: bool):
        import optuna      # heavy: only when a Bayesian tuning job runs
        from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
        optuna.logging.set_verbosity(optuna.logging.WARNING)
        self.ranges = ranges
        self.study = optuna.create_study(direction="maximize" if maximize else "minimize",
                                         sampler=optuna.samplers.TPESampler(seed=seed))
        self.distributions = {}
        for r in ranges:
            if r.kind == "Categorical":
                self.distributions[r.name] = CategoricalDistribution(list(r.values))
            elif r.scaling == "ReverseLogarithmic":
                self.distributions[r.name] = FloatDistribution(1 - r.high, 1 - r.low, log=True)
            elif r.kind == "Integer":
                self.distributions[r.name] = IntDistribution(int(r.low), int(r.high), log=r.scaling == "Logarithmic")
            else:
                self.distributions[r.name] = FloatDistribution(r.low, r.high, log=r.scaling == "Logarithmic")

    def ask(self) -> tuple[dict[str, str], Any] | None:
        trial = self.study.ask(self.distributions)
        values = {}
        for r in self.ranges:
            drawn = trial.params[r.name]
            values[r.name] = drawn if r.kind == "Categorical" else as_hyperparameter(
                r, 1 - drawn if r.scaling == "ReverseLogarithmic" else drawn)
        return values, trial

    def tell(self, token: Any, value: float | None) -> None:
        from optuna.trial import TrialState
        if value is None:
            self.study.tell(token, state=TrialState.FAIL)
        else:
            self.study.tell(token, value)


def search_for(name: str, config: dict):
    """The strategy's search (Hyperband is refused before it gets here)."""
    ranges, strategy = ranges_of(config), config["Strategy"]
    if strategy == "Grid":
        return GridSearch(ranges)
    if strategy == "Bayesian":
        maximize = config["HyperParameterTuningJobObjective"]["Type"] == "Maximize"
        return BayesianSearch(ranges, seed_of(name, config), maximize)
    return RandomSearch(ranges, seed_of(name, config))


def max_trials(config: dict) -> int:
    """MaxNumberOfTrainingJobs; a Grid job without it runs every combination (reference/tuning-registry.md §1.4)."""
    limit = config.get("ResourceLimits", {}).get("MaxNumberOfTrainingJobs")
    if config["Strategy"] == "Grid":
        combinations = math.prod(len(r.values) for r in ranges_of(config))
        return combinations if limit is None else min(limit, combinations)
    return limit if limit is not None else 1


def trial_name(tuning_name: str, number: int) -> str:
    """SageMaker's name for a tuning job's training job: `<tuning-name>-<NNN>-<8 hex>`, NNN from 001."""
    return f"{tuning_name}-{number:03d}-{uuid.uuid4().hex[:8]}"


def trial_request(name: str, definition: dict, tuned: dict[str, str], objective: str, tags: list | None) -> dict:
    """The CreateTrainingJob SageMaker makes for a trial: the definition, its static hyperparameters with the tuned
    values (strings, as the tuning job passes them) and the objective's name, the tuning job's tags."""
    algorithm = definition["AlgorithmSpecification"]
    request = {"TrainingJobName": name,
               "AlgorithmSpecification": {k: algorithm[k] for k in ALGORITHM_MEMBERS if k in algorithm},
               "HyperParameters": {**definition.get("StaticHyperParameters", {}), **tuned,
                                   OBJECTIVE_HYPERPARAMETER: objective},
               **{k: definition[k] for k in DEFINITION_MEMBERS if k in definition}}
    if tags:
        request["Tags"] = tags
    return request


def hyperband_refusal(params: dict) -> str | None:
    config = params.get("HyperParameterTuningJobConfig")
    return HYPERBAND_REFUSED if isinstance(config, dict) and config.get("Strategy") == "Hyperband" else None


# ---------------------------------------------------------------- a tuning job's run

@dataclass
class Trial:
    name: str
    tuned: dict[str, str]
    token: Any
    job: Any = None                  # moto's training job
    run: Any = None
    log: Any = None
    request: dict = field(default_factory=dict)
    launched: datetime | None = None
    done: bool = False
    objective: float | None = None

    @property
    def objective_status(self) -> str:
        if not self.done:
            return "Pending"
        return "Succeeded" if self.objective is not None else "Failed"


class TuningRun:
    """One tuning job's trials, started and collected by a thread of its own until the job ends."""

    def __init__(self, jobs, name: str):
        self.jobs, self.name = jobs, name
        self.record = jobs.backend().hyper_parameter_tuning_jobs[name]
        self.config = self.record.hyper_parameter_tuning_job_config
        self.definition = self.record.training_job_definition
        objective = self.config["HyperParameterTuningJobObjective"]
        self.metric, self.maximize = objective["MetricName"], objective["Type"] == "Maximize"
        self.parallel = self.config["ResourceLimits"]["MaxParallelTrainingJobs"]
        self.limit = max_trials(self.config)
        self.trials: list[Trial] = []
        self.running = True
        self.closed = False
        self._lock = threading.RLock()
        self._exhausted = False
        self._started = datetime.now().astimezone()
        record = self.record
        record.hyper_parameter_tuning_job_status = "InProgress"
        record.hyper_parameter_tuning_end_time = None
        record.best_training_job = record.OverallBestTrainingJob = None
        record.tuning_job_completion_details = record.consumed_resources = None
        record.failure_reason = None
        self._refresh()
        self.search = search_for(name, self.config)
        threading.Thread(target=self._loop, daemon=True).start()

    # -- the thread

    def _loop(self) -> None:
        try:
            while True:
                with self._lock:
                    if not self.running or self.closed:
                        return
                    self._collect()
                    while self._can_start():
                        self._start_next()
                    if not self._active():
                        self._end()
                        return
                threading.Event().wait(POLL_SECONDS)
        except Exception as error:  # noqa: BLE001 - a trial SageMaker would not create fails the tuning job
            with self._lock:
                if self.running and not self.closed:
                    self._end(f"{type(error).__name__}: {error}")

    def _failed_first_attempts(self) -> bool:
        ended = [t for t in self.trials if t.done]
        return not any(t.objective is not None for t in ended) and len(ended) >= min(FIRST_ATTEMPTS, self.limit)

    def _can_start(self) -> bool:
        return (not self._exhausted and len(self.trials) < self.limit and not self._failed_first_attempts()
                and sum(not t.done for t in self.trials) < self.parallel)

    def _active(self) -> bool:
        return any(not t.done for t in self.trials) or self._can_start()

    def _start_next(self) -> None:
        asked = self.search.ask()
        if asked is None:
            self._exhausted = True
            return
        tuned, token = asked
        trial = Trial(trial_name(self.name, len(self.trials) + 1), tuned, token)
        trial.request = trial_request(trial.name, self.definition, tuned, self.metric, self.record.tags)
        try:
            self.jobs.client("sagemaker").create_training_job(**trial.request)
        except ClientError as error:
            raise RuntimeError(f"trial {trial.name}: {error.response['Error']['Message']}") from None
        self.jobs.backend().training_jobs[trial.name].tuning_job_arn = self.record.arn
        trial.job, trial.run, trial.log = tasks.start_training(self.jobs, trial.request)
        trial.launched = None if isinstance(trial.run, tasks._NotStarted) else datetime.now().astimezone()
        self.trials.append(trial)
        self._refresh()

    def _collect(self) -> None:
        """Every trial that ended since: its end recorded (unless a stop took it), its objective told."""
        for trial in self.trials:
            if trial.done:
                continue
            outcome = trial.run.poll()
            if outcome is None:
                continue
            trial.log.flush()
            if self.jobs.release(trial.run):
                tasks.record_training(trial.job, outcome, trial.request, trial.log, trial.launched)
            self._ended(trial)

    def _ended(self, trial: Trial) -> None:
        trial.done = True
        metrics = {m["MetricName"]: m["Value"] for m in trial.job.final_metric_data_list or []}
        completed = trial.job.training_job_status == "Completed"
        trial.objective = metrics.get(self.metric) if completed else None
        self.search.tell(trial.token, trial.objective)
        self._refresh()

    def _end(self, failure: str | None = None, status: str | None = None) -> None:
        """The tuning job's end: Completed with a best trial, else Failed (or the given status)."""
        self.running = False
        if failure is None and status is None and self._best() is None:
            failure = (f"No training job succeeded after {len(self.trials)} attempts. Please take a look at the "
                       f"training job failures to get more details.")
        record = self.record
        record.hyper_parameter_tuning_job_status = status or ("Failed" if failure else "Completed")
        record.failure_reason = failure
        now = datetime.now().astimezone()
        record.hyper_parameter_tuning_end_time = record.last_modified_time = now
        record.consumed_resources = {"RuntimeInSeconds": max(1, math.ceil((now - self._started).total_seconds()))}
        self._refresh()

    # -- what others ask

    def stop(self) -> None:
        """StopHyperParameterTuningJob, or the execution that waits on it stopped: every running trial ends Stopped
        and the tuning job Stopped (SageMaker passes through Stopping; here at once)."""
        with self._lock:
            if not self.running:
                return
            for trial in self.trials:
                if not trial.done:
                    self.jobs.stop(trial.name, lambda t=trial: tasks.record_training(
                        t.job, Outcome("Stopped"), t.request, t.log, t.launched))
                    trial.log.flush()
                    self._ended(trial)
            self._end(status="Stopped")

    def close(self) -> None:
        """The engine is closing: nothing more is started or recorded (its jobs stop with it)."""
        with self._lock:
            self.closed = True

    # -- what moto shows

    def summary(self, trial: Trial) -> dict:
        """HyperParameterTrainingJobSummary of a trial (BestTrainingJob, ListTrainingJobsFor…)."""
        job = trial.job
        summary = {"TrainingJobName": trial.name, "TrainingJobArn": job.arn, "TuningJobName": self.name,
                   "CreationTime": job.creation_time, "TrainingJobStatus": job.training_job_status,
                   "TunedHyperParameters": trial.tuned, "ObjectiveStatus": trial.objective_status}
        if trial.launched:
            summary["TrainingStartTime"] = trial.launched
        if trial.done:
            summary["TrainingEndTime"] = job.training_end_time
        if getattr(job, "failure_reason", None):
            summary["FailureReason"] = job.failure_reason
        if trial.objective is not None:
            summary["FinalHyperParameterTuningJobObjectiveMetric"] = {
                "Type": "Maximize" if self.maximize else "Minimize", "MetricName": self.metric,
                "Value": trial.objective}
        return summary

    def summaries(self) -> list[dict]:
        with self._lock:
            return [self.summary(trial) for trial in self.trials]

    def _best(self) -> Trial | None:
        scored = [t for t in self.trials if t.objective is not None]
        if not scored:
            return None
        return (max if self.maximize else min)(scored, key=lambda t: t.objective)

    def _refresh(self) -> None:
        """Counters and BestTrainingJob as DescribeHyperParameterTuningJob shows them now. A failed trial counts
        as NonRetryableError (a local failure is the algorithm's or the request's, never SageMaker's own)."""
        statuses = [t.job.training_job_status if t.done else "InProgress" for t in self.trials]
        objectives = [t.objective_status for t in self.trials]
        record = self.record
        record.training_job_status_counters = {
            "Completed": statuses.count("Completed"), "InProgress": statuses.count("InProgress"),
            "RetryableError": 0, "NonRetryableError": statuses.count("Failed"), "Stopped": statuses.count("Stopped")}
        record.objective_status_counters = {key: objectives.count(key) for key in ("Succeeded", "Pending", "Failed")}
        best = self._best()
        record.best_training_job = None if best is None else self.summary(best)
        record.last_modified_time = datetime.now().astimezone()


def start_tuning(name: str) -> None:
    """The tuning job moto just recorded, run here while the engine runs."""
    jobs = tasks.JOBS
    if jobs is not None:
        jobs.tunings[name] = TuningRun(jobs, name)


def tuning_resolver(task, env, jobs, name: str):
    """The .sync end of createHyperParameterTuningJob: DescribeHyperParameterTuningJob once the job ended, or
    States.TaskFailed with it as the cause unless it Completed. A stopped execution stops the tuning job and its
    trials; a Task timeout does not (as for training, sagemaker_task's watch)."""
    tuning = jobs.tunings[name]

    def watch() -> None:
        while env.is_running() and tuning.running:
            threading.Event().wait(POLL_SECONDS)
        if tuning.running and not task_timed_out(env):
            tuning.stop()
    threading.Thread(target=watch, daemon=True).start()

    def resolver():
        if tuning.running:
            return None
        described = tasks.to_sfn_json(jobs.client("sagemaker").describe_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name))
        if described["HyperParameterTuningJobStatus"] != "Completed":
            raise task.task_failed(env, json.dumps(described))
        return described
    return resolver


# ---------------------------------------------------------------- the operations moto lacks

def _epoch(value: Any) -> Any:
    """The JSON protocol's timestamps: epoch seconds."""
    if isinstance(value, datetime):      # moto's own times are naive UTC
        return (value if value.tzinfo else value.replace(tzinfo=timezone.utc)).timestamp()
    if isinstance(value, dict):
        return {k: _epoch(v) for k, v in value.items()}
    return value


SORT_KEYS = {"Name": lambda s: s["TrainingJobName"], "CreationTime": lambda s: s["CreationTime"],
             "Status": lambda s: s["TrainingJobStatus"],
             "FinalObjectiveMetricValue": lambda s: s["FinalHyperParameterTuningJobObjectiveMetric"]["Value"]}


def list_trials(summaries: list[dict], params: dict) -> dict:
    """ListTrainingJobsForHyperParameterTuningJob's answer, per botocore's model: StatusEquals filters; SortBy
    defaults to Name, SortOrder to Ascending; sorting by FinalObjectiveMetricValue leaves out the jobs without an
    objective; MaxResults defaults to 10; NextToken (here the index of the next summary) pages on."""
    chosen = [s for s in summaries if params.get("StatusEquals") in (None, s["TrainingJobStatus"])]
    sort_by = params.get("SortBy", "Name")
    if sort_by == "FinalObjectiveMetricValue":
        chosen = [s for s in chosen if "FinalHyperParameterTuningJobObjectiveMetric" in s]
    chosen.sort(key=SORT_KEYS[sort_by], reverse=params.get("SortOrder", "Ascending") == "Descending")
    start, size = int(params.get("NextToken") or 0), params.get("MaxResults", 10)
    answer: dict = {"TrainingJobSummaries": [_epoch(s) for s in chosen[start:start + size]]}
    if start + size < len(chosen):
        answer["NextToken"] = str(start + size)
    return answer


def answer(service: str, operation: str, params: dict) -> tuple[int, dict, str] | None:
    """StopHyperParameterTuningJob and ListTrainingJobsForHyperParameterTuningJob (moto raises NotImplementedError),
    for a tuning job this engine runs; an unknown one: ResourceNotFound, the error both list (its message is not
    documented). Stopping a job that already ended leaves it as it is (AWS's answer then is not documented).
    A Hyperband CreateHyperParameterTuningJob, which AWS accepts, is refused here with a 400 that says so."""
    jobs = tasks.JOBS
    headers = {"Content-Type": "application/x-amz-json-1.1"}
    if service == "sagemaker" and operation == "CreateHyperParameterTuningJob" and hyperband_refusal(params):
        return 400, headers, json.dumps({"__type": "ValidationException",
                                         "message": f"sagestep local: {HYPERBAND_REFUSED}"})
    if service != "sagemaker" or jobs is None or operation not in (
            "StopHyperParameterTuningJob", "ListTrainingJobsForHyperParameterTuningJob"):
        return None
    name = params.get("HyperParameterTuningJobName")
    tuning = jobs.tunings.get(name)
    if tuning is None:
        return 400, headers, json.dumps({"__type": "ResourceNotFound",
                                         "message": f"Amazon SageMaker can't find a tuning job with name {name}"})
    if operation == "StopHyperParameterTuningJob":
        tuning.stop()
        return 200, headers, "{}"
    return 200, headers, json.dumps(list_trials(tuning.summaries(), params))
