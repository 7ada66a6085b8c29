"""A tuned run end to end on the embedded engine: the stack's sagestep:tuning, real trials through the image's
launcher, the best trial's model predicted with, the trials in --json, the summary, the cost, the report and the
version registered."""
import pytest

from sagestep.local import run as local_run
from sagestep.synth import synthesize
from tests.test_iam import ACCOUNT, REGION
from tests.test_local import IRIS, run_cli, summary_of

RANGES = {"eta": {"min": 0.1, "max": 0.5, "scaling": "Logarithmic"}, "max_depth": {"min": 2, "max": 5}}


def tuned(monkeypatch, strategy: str, config: dict | None = None, **limits):
    stack = synthesize(f"tuned-{strategy.lower()}", {
        "sagestep:tuning": {"strategy": strategy, "ranges": RANGES, **limits},
        "sagestep:hyperparameters": {"num_round": 10}, **(config or {})})
    monkeypatch.setattr(local_run, "synthesize_stack", lambda *args, **kwargs: stack)
    return stack


def test_a_random_search_of_four_trials_two_at_a_time_predicts_with_the_best_trial_s_model_and_registers_it(
        tmp_path, capsys, monkeypatch):
    tuned(monkeypatch, "Random", {"sagestep:registerModels": True, "sagestep:modelApprovalStatus": "Approved"},
          maxJobs=4, maxParallelJobs=2)
    code, result = run_cli(capsys, IRIS, "--label", "species", "--out", tmp_path / "out", "--report")
    assert code == 0, result
    names = [state["name"] for state in result["states"]]
    assert "Tune" in names and "Train" not in names and "CreateModel" in names
    tuning = result["tuning"]
    assert tuning["objective"] == {"Type": "Minimize", "MetricName": "validation:mlogloss"}
    trials = tuning["trials"]
    assert [trial["name"] for trial in trials] == [f"{tuning['job']}-{n:03d}-{trial['name'][-8:]}"
                                                    for n, trial in zip(range(1, 5), trials)]
    assert all(trial["status"] == "Completed" and set(trial["hyperparameters"]) == {"eta", "max_depth"}
               for trial in trials)
    best = min(trials, key=lambda trial: trial["objective"])
    assert tuning["best"] == best["name"]
    # The run trained with the best trial: its metrics and its job are the run's, its model the one predicted with.
    assert result["metrics"]["validation:mlogloss"] == pytest.approx(best["objective"])
    assert result["outputs"]["trainingJob"] == best["name"]
    assert result["hyperparameters"]["eval_metric"]["value"] == "mlogloss"
    printed = summary_of(result)
    assert f"tuning job {tuning['job']}: validation:mlogloss (Minimize), best {best['name']}\n" in printed
    line = next(line for line in printed.splitlines() if line.startswith(f"  {best['name'].rsplit('-', 2)[-2]}  "))
    assert line.split()[1:3] == [f"{best['objective']:.4f}", "Completed"] and line.endswith("← best")
    # Every trial's billable time, at the training instance's price; no separate training item.
    items = {item["item"]: item for item in result["cost"]["items"]}
    assert "tuning (4 trials)" in items and "training" not in items
    assert items["tuning (4 trials)"]["usd"] is not None
    # The best trial's model became version 1 of the stack's group (the report's charts: tests/test_run_report.py).
    assert names[-2:] == ["Register", "Summarize"]
    assert result["registered"] == {
        "group": "sagestep-tuned-random-models", "version": 1, "status": "Approved",
        "arn": f"arn:aws:sagemaker:{REGION}:{ACCOUNT}:model-package/sagestep-tuned-random-models/1"}
    assert "registered: sagestep-tuned-random-models version 1 (Approved); sagestep models lists" in printed
    page = (tmp_path / "out/report.html").read_text()
    assert "<h2>Tuning</h2>" in page and 'id="chart-tuning"' in page and f"<tr class=best><td>{best['name']}<" in page
    assert (f"<th>tuning job</th><td>{tuning['job']}</td>" in page
            and f"<th>training job</th><td>{best['name']}</td>" in page)
    assert "<th>registered</th><td>sagestep-tuned-random-models version 1 (Approved)</td>" in page


def test_a_bayesian_search_runs_and_the_model_made_is_the_best_trial_s(monkeypatch):
    """Bayesian (optuna's TPE locally): two trials one at a time, the second told the first one's objective; the
    search is seeded from the tuning job's name, so the same job proposes the same first trial."""
    import json

    from sagestep.local import tuning
    from sagestep.local.engine import LocalEngine
    from sagestep.runner import follow

    stack = tuned(monkeypatch, "Bayesian", maxJobs=2, maxParallelJobs=1)
    with LocalEngine(stack) as engine:
        sfn, sagemaker = engine.client("stepfunctions"), engine.client("sagemaker")
        arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name="bayes", input=json.dumps(
            {"datasetUri": engine.upload_dataset(IRIS), "labelColumn": "species"}))["executionArn"]
        description, _ = follow(sfn, arn, timeout_seconds=300)
        assert description["status"] == "SUCCEEDED", description.get("cause")
        output = json.loads(description["output"])
        job = sagemaker.describe_hyper_parameter_tuning_job(HyperParameterTuningJobName=output["tuningJobName"])
        assert job["HyperParameterTuningJobConfig"]["Strategy"] == "Bayesian"
        assert job["HyperParameterTuningJobStatus"] == "Completed"
        assert job["TrainingJobStatusCounters"]["Completed"] == 2
        best = job["BestTrainingJob"]["TrainingJobName"]
        model = sagemaker.describe_model(ModelName=output["modelName"])
        artifacts = sagemaker.describe_training_job(TrainingJobName=best)["ModelArtifacts"]["S3ModelArtifacts"]
        assert model["PrimaryContainer"]["ModelDataUrl"] == artifacts and f"/{best}/" in artifacts
        name, config = output["tuningJobName"], job["HyperParameterTuningJobConfig"]
        first = sagemaker.list_training_jobs_for_hyper_parameter_tuning_job(
            HyperParameterTuningJobName=name, SortBy="Name", SortOrder="Ascending")["TrainingJobSummaries"][0]
    again, _ = tuning.search_for(name, config).ask()
    other, _ = tuning.search_for(f"{name}x", config).ask()
    assert first["TunedHyperParameters"] == again != other
