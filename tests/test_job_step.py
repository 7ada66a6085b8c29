"""A job step is one module: a throwaway Profile step (sagemaker:createProcessingJob.sync) declares its states, IAM,
Job (name budget, Describe call, cost, local runner) and summary here, and one line adds it to the pipeline; the
local engine runs it, its name fits its budget, and the record, the cost, the role and the summary pick it up."""
import json
from datetime import datetime, timedelta

import pytest

from sagestep import ROOT
from sagestep.local.engine import LocalEngine
from sagestep.local.sagemaker_task import to_sfn_json
from sagestep.record import attach_cost, jobs_in
from sagestep.runner import follow
from sagestep.synth import synthesize
from statemachine import Job, JobUse, Refs, PipelineSettings, Step, definition, evaluate, summary
from statemachine.iam import allow, sync_rule
from statemachine.naming import job_name, longest_name, tags
from statemachine.step import then
from tests.conftest import statements_by_sid
from tests.test_iam import policy

# ---------------------------------------------------------------- the step's module

NAME = "Profile"
PROFILE_SECONDS = 30            # what the local runner says the job ran for: its cost follows from it
INSTANCE = {"InstanceCount": 1, "InstanceType": "ml.m5.large", "VolumeSizeInGB": 1}


def cost(job: dict, estimate: bool) -> JobUse:
    resources = job["ProcessingResources"]["ClusterConfig"]
    seconds = (to_sfn_json(job["ProcessingEndTime"]) - to_sfn_json(job["ProcessingStartTime"])) // 1000
    return JobUse("profiling", resources["InstanceType"], resources["InstanceCount"], seconds, "training",
                  f"{seconds} s")


def run_locally(task, env, jobs, request: dict):
    """The local engine's runner of a Profile job: writes the profile where the request says and completes."""
    name = request["ProcessingJobName"]
    bucket, prefix = request["ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"][5:].split("/", 1)
    jobs.client("s3").put_object(Bucket=bucket, Key=f"{prefix}/profile.txt", Body=f"profiled by {name}".encode())
    job = jobs.backend().processing_jobs[name]
    job.processing_resources = request["ProcessingResources"]
    job.processing_start_time = datetime.now().astimezone()
    job.processing_end_time = job.processing_start_time + timedelta(seconds=PROFILE_SECONDS)
    return lambda: to_sfn_json(jobs.client("sagemaker").describe_processing_job(ProcessingJobName=name))


JOB = Job("profile", "createProcessingJob.sync", "ProcessingJobName", "-profile-", 63,
          describe="DescribeProcessingJob", console="/processing-jobs/", cost=cost,
          local=f"{__name__}:run_locally")


def states(refs: Refs, settings: PipelineSettings, next_state: str | None) -> dict[str, dict]:
    return {NAME: {
        "Type": "Task",
        "Resource": f"arn:{refs.partition}:states:::sagemaker:createProcessingJob.sync",
        "Parameters": {
            "ProcessingJobName.$": job_name(JOB),
            "RoleArn": refs.role_arn("training"),
            "AppSpecification": {"ImageUri": refs.training_image},
            "ProcessingResources": {"ClusterConfig": INSTANCE},
            "ProcessingOutputConfig": {"Outputs": [{"OutputName": "profile", "S3Output": {
                "S3Uri.$": f"States.Format('s3://{refs.data_bucket}/profiles/{{}}', $.run.runName)",
                "LocalPath": "/opt/ml/processing/output", "S3UploadMode": "EndOfJob"}}]},
            "Tags": tags(refs),
        },
        "ResultSelector": {"jobName.$": "$.ProcessingJobName"},
        "ResultPath": "$.profile",
        **then(next_state),
    }}


def statements(refs: Refs) -> list[dict]:
    return [allow("ProfileJobs", ["sagemaker:AddTags", "sagemaker:CreateProcessingJob",
                                  "sagemaker:DescribeProcessingJob", "sagemaker:StopProcessingJob"],
                  [refs.sagemaker_arn("processing-job")]),
            sync_rule(refs, "ProfileJobEvents", "StepFunctionsGetEventsForSageMakerProcessingJobsRule")]


STEP = Step(NAME, states, statements, job=JOB, outputs={"profileJobName.$": "$.profile.jobName"},
            summary=lambda rendered: [f"profiling: {INSTANCE['InstanceType']} x{INSTANCE['InstanceCount']}"])

# ---------------------------------------------------------------- the test


@pytest.fixture
def with_profile(monkeypatch):
    """The one line that adds the step: after Evaluate."""
    steps = definition.STEPS
    at = steps.index(evaluate.STEP) + 1
    monkeypatch.setattr(definition, "STEPS", steps[:at] + (STEP,) + steps[at:])


def test_a_job_step_declared_in_one_module_runs_end_to_end_and_is_named_priced_and_permitted(with_profile):
    assert longest_name(JOB) <= JOB.limit
    synthesis = synthesize("profiled", {})
    built = json.loads(synthesis.definition)
    assert built["States"]["Evaluate"]["Next"] == NAME
    assert "profiling: ml.m5.large x1" in summary(built)
    role = statements_by_sid(policy(synthesis, "sagestep-profiled-states-policy"))
    assert "sagemaker:CreateProcessingJob" in role["ProfileJobs"]["Action"] and "ProfileJobEvents" in role
    with LocalEngine(synthesis) as engine:
        sfn, s3 = engine.client("stepfunctions"), engine.client("s3")
        run_input = {"datasetUri": engine.upload_dataset(ROOT / "examples/iris.csv"), "labelColumn": "species"}
        arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name="profiled",
                                  input=json.dumps(run_input))["executionArn"]
        description, progress = follow(sfn, arn, timeout_seconds=300)
        assert description["status"] == "SUCCEEDED", (description.get("error"), description.get("cause"))
        events = progress.events
        entered = [e["stateExitedEventDetails"]["name"] for e in events if e["type"] == "TaskStateExited"]
        assert NAME in entered
        name = json.loads(description["output"])["profileJobName"]
        assert name == jobs_in(events)["profile"] and len(name) <= JOB.limit
        assert name.startswith("sagestep-profiled--") and name.endswith("-profile-0")
        bucket, prefix = engine.client("sagemaker").describe_processing_job(ProcessingJobName=name)[
            "ProcessingOutputConfig"]["Outputs"][0]["S3Output"]["S3Uri"][5:].split("/", 1)
        assert s3.get_object(Bucket=bucket, Key=f"{prefix}/profile.txt")["Body"].read() == \
            f"profiled by {name}".encode()
        result = {}
        described = attach_cost(result, events, engine.client, engine.region, estimate=True)
    assert described["profile"]["ProcessingJobName"] == name
    items = {item["item"]: item for item in result["cost"]["items"]}
    assert list(items)[:3] == ["training", "batch transform", "profiling"]
    assert items["profiling"]["detail"].startswith(f"ml.m5.large x1, {PROFILE_SECONDS} s")
