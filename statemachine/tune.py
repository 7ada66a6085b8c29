"""Tune: sagemaker:createHyperParameterTuningJob.sync in Train's place when the stack sets sagestep:tuning.

Each trial is a training job exactly as Train runs one (train.job_definition): the same image, channels, role,
output path, stopping condition, spot and KMS settings. The preprocess step resolves the run's tuning ($.run.tuning:
ParameterRanges, ResourceLimits, the objective {Type, MetricName} and the static hyperparameters, every one but the
tuned ones) and names the job ($.run.tuningName: tuning names allow 32 characters). No MetricDefinitions: the
first-party XGBoost image refuses custom ones and reports validation:<metric> itself (docs/training.md, "Tuning").

The .sync result is DescribeHyperParameterTuningJob, which has no ModelArtifacts: a describeTrainingJob of the best
trial follows (guarded: BestTrainingJob is optional), and then the same $.training Train leaves (jobName,
modelArtifacts, finalMetrics) for the gate, CreateModel and BatchPredict, plus $.tuning {job, objective, best}.
No Retry, as Train: a SageMaker API error can also come from a poll after the job was created.
"""
from __future__ import annotations

from . import errors, instances, train
from .iam import allow, list_tags, pass_role, sync_rule
from .naming import job_name, tags
from .refs import Refs
from .settings import PipelineSettings
from .step import Job, JobUse, Step, then

NAME = "Tune"
HAS_BEST = "HasBestTrainingJob"
NO_BEST = "NoBestTrainingJob"


def cost(job: dict, estimate: bool) -> JobUse | None:
    """A tuning job bills nothing of its own: each trial is a training job, billed as one (its billable seconds ×
    its instances). Every trial shares the tuning job's instance type."""
    trials = job.get("trials")
    if not trials:
        return None
    resources = trials[0]["ResourceConfig"]
    seconds = sum(trial.get("BillableTimeInSeconds") or 0 for trial in trials)
    return JobUse(f"tuning ({len(trials)} trial{'s' if len(trials) > 1 else ''})", resources["InstanceType"],
                  resources["InstanceCount"], seconds, "training", f"{seconds} s billable in all")


# botocore's sagemaker model: HyperParameterTuningJobName at most 32 characters, so it starts with the Lambda's
# shorter tuningName; its trials' Describe responses price it.
JOB = Job("tuning", "createHyperParameterTuningJob.sync", "HyperParameterTuningJobName", "-", 32, base="tuningName",
          describe="DescribeHyperParameterTuningJob", console="/hyper-tuning-jobs/", log_group=train.LOG_GROUP,
          cost=cost, trials=True, local="sagestep.local.sagemaker_task:tuning_job")
DESCRIBE_BEST = "DescribeBestTrainingJob"
HAS_METRICS = "HasBestJobMetrics"
NO_METRICS = "NoBestJobMetrics"
BEST_RESULT = "BestTrainingResult"
RESULT = "TuningResult"
TUNING = "$.run.tuning"
# A describe of a finished job is safe to repeat; local (moto) and AWS name its errors differently, so any.
DESCRIBE_RETRY = {"ErrorEquals": ["States.TaskFailed"], "IntervalSeconds": 5, "MaxAttempts": 2, "BackoffRate": 2.0}


def trial_definition(refs: Refs, settings: PipelineSettings) -> dict:
    """Train's job, less CheckpointConfig: the definition is every trial's, so with spot all would share one
    checkpoint prefix and a trial could resume from another's model; an interrupted trial starts afresh."""
    definition = train.job_definition(refs, settings)
    definition.pop("CheckpointConfig", None)
    return definition


def parameters(refs: Refs, settings: PipelineSettings) -> dict:
    return {
        "HyperParameterTuningJobName.$": job_name(JOB),
        "HyperParameterTuningJobConfig": {
            "Strategy": settings.tuning["strategy"],
            "HyperParameterTuningJobObjective.$": f"{TUNING}.objective",
            "ResourceLimits.$": f"{TUNING}.resourceLimits",
            "ParameterRanges.$": f"{TUNING}.parameterRanges",
            "TrainingJobEarlyStoppingType": "Off",
        },
        "TrainingJobDefinition": {
            # Script mode, as Train: the code bundle location overrides anything of the same name.
            "StaticHyperParameters.$": f"States.JsonMerge({TUNING}.staticHyperParameters, $.run.trainingCode, false)",
            **trial_definition(refs, settings),
        },
        "Tags": tags(refs),
    }


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    cause = errors.failure_cause_state_name(NAME)
    return {
        NAME: {
            "Type": "Task",
            "Comment": "Trains up to maxJobs models over the ranges; the whole DescribeHyperParameterTuningJob lands "
                       "in $.tuning.",
            "Resource": refs.integration("sagemaker:createHyperParameterTuningJob.sync"),
            "Parameters": parameters(refs, settings),
            "Catch": errors.catch_all(NAME, via_job_cause=True),
            "ResultPath": "$.tuning",
            "Next": HAS_BEST,
        },
        HAS_BEST: {
            "Type": "Choice",
            "Comment": "BestTrainingJob is absent when no trial reported the objective metric.",
            "Choices": [{"Variable": "$.tuning.BestTrainingJob", "IsPresent": False, "Next": NO_BEST}],
            "Default": DESCRIBE_BEST,
        },
        NO_BEST: {
            "Type": "Pass",
            "Comment": "A path to the missing field would be an uncatchable States.Runtime error: fail by name.",
            "Parameters": {"Error": NO_BEST,
                           "Cause.$": f"States.Format('the tuning job ended with no best training job: no trial "
                                      f"reported {{}}', {TUNING}.objective.MetricName)"},
            "ResultPath": "$.error",
            "Next": cause,
        },
        DESCRIBE_BEST: {
            "Type": "Task",
            "Comment": "The tuning job's result has no ModelArtifacts: the best trial's DescribeTrainingJob has.",
            "Resource": refs.integration("aws-sdk:sagemaker:describeTrainingJob"),
            "Parameters": {"TrainingJobName.$": "$.tuning.BestTrainingJob.TrainingJobName"},
            "Retry": [DESCRIBE_RETRY],
            "Catch": errors.catch_all(NAME, via_job_cause=True),
            "ResultPath": "$.training",
            "Next": HAS_METRICS,
        },
        **train.result_states(HAS_METRICS, NO_METRICS, BEST_RESULT, RESULT),
        RESULT: {
            "Type": "Pass",
            "Comment": "What the output keeps of the tuning job: its name, objective and best trial.",
            "Parameters": {"job.$": "$.tuning.HyperParameterTuningJobName", "objective.$": f"{TUNING}.objective",
                           "best.$": "$.tuning.BestTrainingJob"},
            "ResultPath": "$.tuning",
            **then(next_state),
        },
        # Tune never retries: its job is attempt 0.
        **errors.job_fail_states(NAME, job_name(JOB, attempt="0"), train.LOG_GROUP),
    }


def statements(refs: Refs) -> list[dict]:
    """The tuning job, its trials (training jobs named after it: "<tuning name>-<NNN>-<8 hex>", so this stack's
    prefix covers them), the training role passed to SageMaker and the .sync rule for tuning jobs
    (docs/aws.md, "Tuning")."""
    return [
        allow("TuningJobs", ["sagemaker:AddTags", "sagemaker:CreateHyperParameterTuningJob",
                             "sagemaker:DescribeHyperParameterTuningJob",
                             "sagemaker:ListTrainingJobsForHyperParameterTuningJob",
                             "sagemaker:StopHyperParameterTuningJob"],
              [refs.sagemaker_arn("hyper-parameter-tuning-job")]),
        allow("TuningTrials", ["sagemaker:DescribeTrainingJob"], [refs.sagemaker_arn("training-job")]),
        list_tags(),
        pass_role("PassTrainingRole", refs.role_arn(train.ROLE_KEY)),
        sync_rule(refs, "TuningJobEvents", "StepFunctionsGetEventsForSageMakerTuningJobsRule"),
    ]


def training_job(states: dict[str, dict]) -> dict:
    """What a training job of a built definition runs with (ResourceConfig, StoppingCondition, OutputDataConfig):
    Train's parameters, or, when the stack tunes, each of Tune's trials'."""
    return states[NAME]["Parameters"]["TrainingJobDefinition"] if NAME in states else states[train.NAME]["Parameters"]


def summary(rendered: dict[str, dict]) -> list[str]:
    parameters = rendered[NAME]["Parameters"]
    definition = parameters["TrainingJobDefinition"]
    return instances.summary("training (each tuning trial)", definition["ResourceConfig"],
                             "KmsKeyId" in definition["OutputDataConfig"]) + [
        f"tuning: {parameters['HyperParameterTuningJobConfig']['Strategy']} search (sagestep:tuning, or the "
        "execution's maxJobs / maxParallelJobs / ranges); the best trial's model goes on to the gate"]


STEP = Step(NAME, states, statements, job=JOB, summary=summary, when=lambda settings: bool(settings.tuning), outputs={
    "trainingJobName.$": "$.training.jobName", "metrics.$": "$.training.finalMetrics",
    "modelArtifacts.$": "$.training.modelArtifacts", "tuningJobName.$": "$.tuning.job", "tuning.$": "$.tuning"})
