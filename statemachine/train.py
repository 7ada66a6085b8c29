"""Train: sagemaker:createTrainingJob.sync in script mode on the SageMaker XGBoost framework image.

No MetricDefinitions: the image is a first-party algorithm, CreateTrainingJob refuses custom ones,
and the console's metrics come from the image's own definitions (statemachine/framework.py).
No Retry: a SageMaker API error can also come from a poll after the job was created (README, "Retries").
"""
from __future__ import annotations

from preprocess import layout

from . import errors, instances
from .iam import (RUN_OBJECTS, allow, document, job_common, list_run_data, list_tags, pass_role, sagemaker_trust,
                  sync_rule)
from .naming import job_name, tags
from .refs import Refs
from .settings import PipelineSettings
from .step import Job, JobRole, JobUse, Step, then

NAME = "Train"
HAS_METRICS = "HasTrainingMetrics"
NO_METRICS = "NoTrainingMetrics"
RESULT = "TrainingResult"
LOG_GROUP = "/aws/sagemaker/TrainingJobs"
ROLE_KEY = "training"
TRAINING_BUNDLE = "training"
CHECKPOINT_DIR = "/opt/ml/checkpoints"


def cost(job: dict, estimate: bool) -> JobUse:
    """SageMaker bills BillableTimeInSeconds × instance count, per second; with managed spot the
    billable time is already the discounted one, so the saving shows against TrainingTimeInSeconds."""
    resources = job["ResourceConfig"]
    billable, trained = job.get("BillableTimeInSeconds"), job.get("TrainingTimeInSeconds")
    spot, notes = "", ()
    if job.get("EnableManagedSpotTraining"):
        if estimate:
            spot = " (spot, priced as on demand)"
            notes = ("training used managed spot: a local run cannot know the spot discount, so its "
                     "billable time is the training time (on demand)",)
        elif billable is not None and trained:
            spot = f" (spot, {round(100 * (1 - billable / trained))}% saved)"
        else:
            spot = " (spot)"
    detail = f"no billable time{spot}" if billable is None else f"{billable} s billable{spot}"
    return JobUse("training", resources["InstanceType"], resources["InstanceCount"], billable, "training", detail,
                  "the job reports no billable time (it may never have started)", notes)


# botocore's sagemaker model: TrainingJobName at most 63 characters.
JOB = Job("training", "createTrainingJob.sync", "TrainingJobName", "-train-", 63, describe="DescribeTrainingJob",
          console="/jobs/", log_group=LOG_GROUP, cost=cost, local="sagestep.local.sagemaker_task:training_job")
# On several instances each one gets a share of the train objects (training/train.py trains one model across
# them, so FullyReplicated would count every row once per instance) and all of the validation ones.
CHANNELS = {"train": "ShardedByS3Key", "validation": "FullyReplicated"}


def _channel(name: str, distribution: str) -> dict:
    return {
        "ChannelName": name,
        "ContentType": "text/csv",
        "CompressionType": "None",
        "InputMode": "File",
        "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix",
            "S3Uri.$": f"$.run.channels.{name}",
            "S3DataDistributionType": distribution,
        }},
    }


def job_definition(refs: Refs, settings: PipelineSettings) -> dict:
    """What a training job runs on and with: Train's CreateTrainingJob and each of Tune's trials (its
    TrainingJobDefinition) share it, so a tuned model is trained exactly as an untuned one."""
    stopping = {"MaxRuntimeInSeconds": settings.training_max_runtime_seconds}
    output = {"S3OutputPath": refs.models_s3_uri}
    if settings.kms_key_arn:
        output["KmsKeyId"] = settings.kms_key_arn
    resources = instances.with_volume_key({
        "InstanceType": settings.training_instance_type,
        "InstanceCount": settings.training_instance_count,
        "VolumeSizeInGB": settings.training_volume_size_gb,
    }, settings.kms_key_arn)
    result = {
        "RoleArn": refs.role_arn(ROLE_KEY),
        "AlgorithmSpecification": {"TrainingImage": refs.training_image, "TrainingInputMode": "File"},
        "InputDataConfig": [_channel(name, distribution) for name, distribution in CHANNELS.items()],
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": stopping,
        "RetryStrategy": {"MaximumRetryAttempts": 2},
    }
    if settings.use_spot_training:
        result["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = settings.spot_max_wait_seconds
        result["CheckpointConfig"] = {"S3Uri.$": "$.run.checkpointsUri", "LocalPath": CHECKPOINT_DIR}
    return result


def parameters(refs: Refs, settings: PipelineSettings) -> dict:
    return {
        "TrainingJobName.$": job_name(JOB),
        # Script mode: the code bundle location overrides anything of the same name.
        "HyperParameters.$": "States.JsonMerge($.run.hyperparameters, $.run.trainingCode, false)",
        **job_definition(refs, settings),
        "Tags": tags(refs),
    }


def result_states(has_metrics: str, no_metrics: str, result: str, next_state: str | None) -> dict[str, dict]:
    """From a DescribeTrainingJob in $.training to what the later steps and the output read of it (jobName,
    modelArtifacts, finalMetrics), through a guard: DescribeTrainingJob leaves FinalMetricDataList out when no
    metric was scraped, and a path to a missing field is an uncatchable States.Runtime error after a paid job."""
    return {
        has_metrics: {
            "Type": "Choice",
            "Comment": "FinalMetricDataList is absent when the log held no metric line.",
            "Choices": [{"Variable": "$.training.FinalMetricDataList", "IsPresent": False, "Next": no_metrics}],
            "Default": result,
        },
        no_metrics: {
            "Type": "Pass",
            "Comment": "No metric was scraped: an empty list, so the result always has one.",
            "Result": [],
            "ResultPath": "$.training.FinalMetricDataList",
            "Next": result,
        },
        result: {
            "Type": "Pass",
            "Comment": "Keeps what the later steps and the output need of the job.",
            "Parameters": {
                "jobName.$": "$.training.TrainingJobName",
                "modelArtifacts.$": "$.training.ModelArtifacts.S3ModelArtifacts",
                "finalMetrics.$": "$.training.FinalMetricDataList",
            },
            "ResultPath": "$.training",
            **then(next_state),
        },
    }


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    """The job, then its result through the guard (result_states)."""
    return {
        NAME: {
            "Type": "Task",
            "Comment": "Trains the model; the whole DescribeTrainingJob lands in $.training for the guard.",
            "Resource": refs.integration("sagemaker:createTrainingJob.sync"),
            "Parameters": parameters(refs, settings),
            "Catch": errors.catch_all(NAME, via_job_cause=True),
            "ResultPath": "$.training",
            "Next": HAS_METRICS,
        },
        **result_states(HAS_METRICS, NO_METRICS, RESULT, next_state),
        # Train never retries (R7): its job is attempt 0.
        **errors.job_fail_states(NAME, job_name(JOB, attempt="0"), LOG_GROUP),
    }


def statements(refs: Refs) -> list[dict]:
    return [
        allow("TrainingJobs", ["sagemaker:AddTags", "sagemaker:CreateTrainingJob",
                               "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
              [refs.sagemaker_arn("training-job")]),
        list_tags(),
        pass_role("PassTrainingRole", refs.role_arn(ROLE_KEY)),
        sync_rule(refs, "TrainingJobEvents", "StepFunctionsGetEventsForSageMakerTrainingJobsRule"),
    ]


def role_trust(refs: Refs) -> dict:
    """Only this stack's training jobs may assume the role."""
    return sagemaker_trust(refs, refs.sagemaker_arn("training-job"))


def role_policy(refs: Refs, settings: PipelineSettings) -> dict:
    """Read the channels and every training bundle (an execution started before a deploy still names an
    earlier one), write models; checkpoints only with spot."""
    statements = [
        allow("ReadTrainingChannels", ["s3:GetObject"],
              [refs.s3(refs.data_bucket, f"{RUN_OBJECTS}{layout.TRAIN_DIR}*"),
               refs.s3(refs.data_bucket, f"{RUN_OBJECTS}{layout.VALIDATION_DIR}*")]),
        list_run_data(refs),
        allow("ReadTrainingCode", ["s3:GetObject"],
              [refs.s3(refs.artifacts_bucket, f"{layout.code_key_prefix(TRAINING_BUNDLE)}*")]),
        allow("WriteModelArtifacts", ["s3:AbortMultipartUpload", "s3:PutObject"],
              [refs.s3(refs.artifacts_bucket, "models/*")]),
    ]
    if settings.use_spot_training:
        # SageMaker mirrors a checkpoint deleted in the container (training/train.py keeps only the latest) to
        # S3: "If a checkpoint is deleted in the SageMaker container, it will also be deleted in the S3 folder"
        # (https://docs.aws.amazon.com/sagemaker/latest/dg/model-checkpoints.html).
        statements.append(allow("Checkpoints", ["s3:DeleteObject", "s3:GetObject", "s3:PutObject"],
                                [refs.s3(refs.data_bucket, f"{RUN_OBJECTS}{layout.CHECKPOINTS_DIR}*")]))
    return document(statements + job_common(refs, settings.kms_key_arn, LOG_GROUP, refs.training_image))


def summary(rendered: dict[str, dict]) -> list[str]:
    parameters = rendered[NAME]["Parameters"]
    stopping = parameters["StoppingCondition"]
    wait = stopping.get("MaxWaitTimeInSeconds", 0)
    spot = (f"spot training: on, waits up to {wait} s ({wait / 3600:g} h) for capacity and the job "
            "(MaxWaitTimeInSeconds), resumes from checkpoints" if parameters.get("EnableManagedSpotTraining")
            else "spot training: off (on-demand instances)")
    return instances.summary("training", parameters["ResourceConfig"],
                             "KmsKeyId" in parameters["OutputDataConfig"]) + [spot]


ROLE = JobRole(ROLE_KEY, "sagestep training jobs: read train/validation and code, write models",
               role_trust, role_policy)
STEP = Step(NAME, states, statements, role=ROLE, job=JOB, summary=summary, when=lambda settings: not settings.tuning, outputs={
    "trainingJobName.$": "$.training.jobName", "metrics.$": "$.training.finalMetrics",
    "modelArtifacts.$": "$.training.modelArtifacts"})
