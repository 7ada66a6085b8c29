"""Train: sagemaker:createTrainingJob.sync in script mode on the SageMaker XGBoost framework image."""
from __future__ import annotations

from . import errors
from .iam import allow, list_tags, pass_role, sync_rule
from .naming import job_name, tags
from .refs import Refs
from .settings import PipelineSettings

NAME = "Train"
CHECKPOINT_DIR = "/opt/ml/checkpoints"

# training/train.py prints "[<round>] train-<metric>:<value> validation-<metric>:<value>" each round.
# One definition per (channel, metric) so the console plots whichever the objective uses.
EVAL_METRICS = ("logloss", "auc", "error", "mlogloss", "merror", "rmse", "mae")
CHANNELS = ("train", "validation")
_FLOAT = r"([-+]?[0-9]*\.?[0-9]+(?:[eE][-+]?[0-9]+)?)"


def metric_definitions() -> list[dict]:
    return [{"Name": f"{channel}:{metric}", "Regex": rf"\b{channel}-{metric}:{_FLOAT}"}
            for channel in CHANNELS for metric in EVAL_METRICS]


def _channel(name: str) -> dict:
    return {
        "ChannelName": name,
        "ContentType": "text/csv",
        "CompressionType": "None",
        "InputMode": "File",
        "DataSource": {"S3DataSource": {
            "S3DataType": "S3Prefix",
            "S3Uri.$": f"$.run.channels.{name}",
            "S3DataDistributionType": "FullyReplicated",
        }},
    }


def state(refs: Refs, settings: PipelineSettings, next_state: str) -> dict:
    stopping = {"MaxRuntimeInSeconds": settings.training_max_runtime_seconds}
    output = {"S3OutputPath": refs.models_s3_uri}
    if settings.kms_key_arn:
        output["KmsKeyId"] = settings.kms_key_arn
    parameters = {
        "TrainingJobName.$": job_name("train"),
        "RoleArn": refs.training_role_arn,
        "AlgorithmSpecification": {
            "TrainingImage": refs.training_image,
            "TrainingInputMode": "File",
            "MetricDefinitions": metric_definitions(),
            "EnableSageMakerMetricsTimeSeries": True,
        },
        # Script mode: the code bundle location overrides anything of the same name.
        "HyperParameters.$": "States.JsonMerge($.run.hyperparameters, $.run.trainingCode, false)",
        "InputDataConfig": [_channel(name) for name in CHANNELS],
        "OutputDataConfig": output,
        "ResourceConfig": {
            "InstanceType": settings.training_instance_type,
            "InstanceCount": settings.training_instance_count,
            "VolumeSizeInGB": settings.training_volume_size_gb,
            **({"VolumeKmsKeyId": settings.kms_key_arn} if settings.kms_key_arn else {}),
        },
        "StoppingCondition": stopping,
        "RetryStrategy": {"MaximumRetryAttempts": 2},
        "Tags": tags(refs),
    }
    if settings.use_spot_training:
        parameters["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = settings.spot_max_wait_seconds
        parameters["CheckpointConfig"] = {"S3Uri.$": "$.run.checkpointsUri", "LocalPath": CHECKPOINT_DIR}
    return {
        "Type": "Task",
        "Comment": "Trains the model; the job name carries the retry count so a retry never collides.",
        "Resource": "arn:aws:states:::sagemaker:createTrainingJob.sync",
        "Parameters": parameters,
        "Retry": errors.sagemaker_api_retry(),
        "Catch": errors.catch_all(NAME),
        "ResultSelector": {
            "jobName.$": "$.TrainingJobName",
            "modelArtifacts.$": "$.ModelArtifacts.S3ModelArtifacts",
            "finalMetrics.$": "$.FinalMetricDataList",
        },
        "ResultPath": "$.training",
        "Next": next_state,
    }


def statements(refs: Refs) -> list[dict]:
    return [
        allow("TrainingJobs", ["sagemaker:AddTags", "sagemaker:CreateTrainingJob",
                               "sagemaker:DescribeTrainingJob", "sagemaker:StopTrainingJob"],
              [refs.sagemaker_arn("training-job")]),
        list_tags(),
        pass_role("PassTrainingRole", refs.training_role_arn),
        sync_rule(refs, "TrainingJobEvents", "StepFunctionsGetEventsForSageMakerTrainingJobsRule"),
    ]
