"""A tuned run end to end on the embedded engine: the stack's sagestep:tuning, real trials through the image's
launcher, the best trial's model predicted with, the trials in --json, the summary, the cost and the report."""
import pytest

from sagestep.local import run as local_run
from sagestep.synth import synthesize
from tests.test_local import IRIS, run_cli, summary_of
from tests.test_run_report import assert_renders, browser, open_report  # noqa: F401  (browser is a fixture)

RANGES = {"eta": {"min": 0.1, "max": 0.5, "scaling": "Logarithmic"}, "max_depth": {"min": 2, "max": 5}}


def tuned(monkeypatch, strategy: str, **limits):
    stack = synthesize(f"tuned-{strategy.lower()}", {
        "sagestep:tuning": {"strategy": strategy, "ranges": RANGES, **limits},
        "sagestep:hyperparameters": {"num_round": 10}})
    monkeypatch.setattr(local_run, "synthesize_stack", lambda *args, **kwargs: stack)
    return stack


def test_a_random_search_of_four_trials_two_at_a_time_predicts_with_the_best_trial_s_model(
        tmp_path, capsys, monkeypatch, browser):
    tuned(monkeypatch, "Random", maxJobs=4, maxParallelJobs=2)
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
    seen = open_report(browser, tmp_path / "out/report.html")
    assert_renders(seen, tmp_path / "out/report.html", {"chart-tuning"})
    assert "Tuning" in seen["text"] and best["name"] in seen["text"]
    assert f"tuning job\t{tuning['job']}" in seen["text"] and f"training job\t{best['name']}" in seen["text"]


def test_a_bayesian_search_runs_and_the_model_made_is_the_best_trial_s(monkeypatch):
    """Bayesian (optuna's TPE locally): two trials one at a time, the second told the first one's objective."""
    import json

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
