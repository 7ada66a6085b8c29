"""Config validation: a bad value stops the program before any resource, with one line."""
import json
import re
import subprocess
import sys

import pytest

from infra.settings import ConfigError, read_settings
from statemachine.naming import name_prefix
from sagestep import ROOT
from sagestep.synth import synthesize
from statemachine import framework


def settings_from(values: dict):
    return read_settings(lambda key: values.get(key), "dev")


def test_defaults_come_from_pulumi_yaml():
    s = settings_from({})
    assert s.pipeline.training_instance_type == "ml.m5.xlarge"
    assert s.pipeline.transform_instance_type == "ml.m5.large"
    assert (s.preprocess_memory_mb, s.preprocess_timeout_seconds, s.xgboost_version) == (1769, 900, "3.0-5")
    assert s.hyperparameters == {} and s.dataset_buckets == () and s.pipeline.kms_key_arn is None


def test_training_runs_on_up_to_20_instances():
    assert settings_from({"trainingInstanceCount": "20"}).pipeline.training_instance_count == 20


def test_values_arrive_as_strings_like_the_cli_passes_them():
    s = settings_from({"trainingVolumeSizeGb": "50", "useSpotTraining": "true", "hyperparameters": '{"max_depth": 8, "eta": 0.1}',
                       "datasetBuckets": '["raw-data"]', "logRetentionDays": "90"})
    assert s.pipeline.training_volume_size_gb == 50 and s.pipeline.use_spot_training is True
    assert s.hyperparameters == {"max_depth": "8", "eta": "0.1"}
    assert s.dataset_buckets == ("raw-data",) and s.log_retention_days == 90


@pytest.mark.parametrize("key, value, allowed", [
    ("trainingInstanceType", "m5.xlarge", "ml.<family>.<size>"),
    ("trainingInstanceType", "ml.bogus.huge", "known to botocore"),
    ("transformInstanceType", "ML.M5.LARGE", "ml.<family>.<size>"),
    ("trainingInstanceCount", "0", "an integer from 1 to 20"),
    ("trainingInstanceCount", "21", "a common default quota per training job"),
    ("transformInstanceCount", "-1", "an integer from 1 to 100"),
    ("transformInstanceCount", "two", "an integer"),
    ("trainingVolumeSizeGb", "-5", "an integer from 1 to 16384"),
    ("trainingMaxRuntimeSeconds", "0", "an integer from 1"),
    ("useSpotTraining", "yes", "true or false"),
    ("xgboostVersion", "1.7-1", "one of 3.0-5"),
    ("xgboostVersion", "9.9", "the SageMaker SDK knows"),
    ("hyperparameters", "not json", "a JSON dict"),
    ("hyperparameters", '{"sagemaker_program": "x.py"}', "not sagemaker_*"),
    ("hyperparameters", '{"max_depth": [1, 2]}', "numbers or strings"),
    ("preprocessMemoryMb", "64", "an integer from 128 to 10240"),
    ("preprocessTimeoutSeconds", "901", "an integer from 1 to 900"),
    ("datasetBuckets", '["s3://raw"]', "bucket names"),
    ("datasetBuckets", '"raw"', "a list"),
    ("logRetentionDays", "10", "one of 1, 3, 5"),
    ("runDataExpirationDays", "0", "an integer from 1"),
    ("kmsKeyArn", "alias/mine", "a KMS key ARN"),
])
def test_bad_values_name_key_value_and_what_is_allowed(key, value, allowed):
    with pytest.raises(ConfigError) as caught:
        settings_from({key: value})
    message = str(caught.value)
    assert f"sagestep:{key}" in message and value in message and allowed in message
    assert "\n" not in message


def test_a_bad_value_stops_the_program_before_any_resource(monkeypatch):
    import pulumi

    def no_resources(*args, **kwargs):
        raise AssertionError("a resource was created before the config was validated")
    monkeypatch.setattr(pulumi.CustomResource, "__init__", no_resources)
    with pytest.raises(ConfigError):
        synthesize("bad", {"trainingInstanceCount": 0})


@pytest.mark.parametrize("stack, prefix", [
    ("dev", "sagestep-dev"), ("Prod_EU", "sagestep-prod-eu"), ("dev--2", "sagestep-dev-2"), ("__", "sagestep-stack")])
def test_name_prefix_is_short_lowercase_and_valid(stack, prefix):
    assert name_prefix(stack) == prefix


def test_long_stack_names_keep_distinct_prefixes():
    first, second = name_prefix("team-analytics-prod-eu-1"), name_prefix("team-analytics-prod-eu-2")
    assert first != second and len(first) <= 24 and len(second) <= 24 and "--" not in first + second


def test_one_stack_cannot_reach_anothers_jobs():
    import fnmatch
    from preprocess.naming import owned_by, run_name
    dev, dev2 = name_prefix("dev"), name_prefix("dev-2")
    job = run_name(dev2, "nightly", "arn:x") + "-train-0"
    assert not fnmatch.fnmatchcase(job, owned_by(dev))
    assert fnmatch.fnmatchcase(run_name(dev, "nightly", "arn:x") + "-train-0", owned_by(dev))


def cli(*args, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "sagestep", *args], capture_output=True, text=True, cwd=cwd)


@pytest.fixture
def stack_file():
    """A Pulumi.<stack>.yaml beside Pulumi.yaml, as `pulumi config set` would write it."""
    written = []

    def write(stack: str, text: str):
        path = ROOT / f"Pulumi.{stack}.yaml"
        path.write_text(text)
        written.append(path)
        return stack
    yield write
    for path in written:
        path.unlink()


def test_cli_synth_reads_the_stack_file(stack_file, tmp_path):
    import json
    stack = stack_file("cicheck-gpu", "config:\n  aws:region: eu-west-1\n  sagestep:trainingInstanceType: ml.g5.xlarge\n"
                                      "  sagestep:transformInstanceType: ml.c5.xlarge\n  sagestep:transformInstanceCount: 2\n")
    result = cli("synth", "--stack", stack, "--out", str(tmp_path))
    assert result.returncode == 0, result.stderr
    definition = json.loads((tmp_path / "statemachine.asl.json").read_text())
    assert definition["States"]["Train"]["Parameters"]["ResourceConfig"]["InstanceType"] == "ml.g5.xlarge"
    assert definition["States"]["BatchPredict"]["Parameters"]["TransformResources"] == {
        "InstanceType": "ml.c5.xlarge", "InstanceCount": 2}
    resources = json.loads((tmp_path / "resources.json").read_text())
    machine = next(r for r in resources if r["type"] == "aws:sfn/stateMachine:StateMachine")
    assert machine["inputs"]["definition"] == (tmp_path / "statemachine.asl.json").read_text()
    assert "eu-west-1" in machine["inputs"]["definition"]


def test_cli_synth_bad_config_is_one_line_and_exit_2(stack_file, tmp_path):
    stack = stack_file("cicheck-bad", "config:\n  sagestep:trainingInstanceType: large\n")
    result = cli("synth", "--stack", stack, "--out", str(tmp_path / "out"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "sagestep synth: invalid config sagestep:trainingInstanceType = large; "
        "allowed: an instance type of the form ml.<family>.<size>, e.g. ml.m5.xlarge"]
    assert "Traceback" not in result.stderr and not (tmp_path / "out").exists()


@pytest.mark.parametrize("text, where", [
    ("config:\n  sagestep:trainingInstanceCount: 2\n  sagestep:seed: a: b\n", "3:19: not valid YAML: mapping values "
     "are not allowed here"),
    ("config: [unclosed\n", "2:1: not valid YAML: expected ',' or ']', but got '<stream end>'"),
])
def test_cli_synth_unreadable_stack_file_names_the_line_column_and_problem(stack_file, tmp_path, text, where):
    stack = stack_file("cicheck-yaml", text)
    result = cli("synth", "--stack", stack, "--out", str(tmp_path / "out"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"sagestep synth: Pulumi.{stack}.yaml:{where}"]


def test_an_unknown_key_is_named_with_the_likely_one():
    with pytest.raises(ConfigError) as caught:
        synthesize("typo", {"trainingInstanceTyp": "ml.g5.xlarge"})
    assert str(caught.value) == ("invalid config sagestep:trainingInstanceTyp = ml.g5.xlarge; allowed: did you mean "
                                 "sagestep:trainingInstanceType? a key Pulumi.yaml declares (Pulumi.example.yaml "
                                 "lists them)")


def test_spot_max_wait_is_checked_only_with_spot():
    assert settings_from({"trainingMaxRuntimeSeconds": "40000"}).pipeline.training_max_runtime_seconds == 40000
    with pytest.raises(ConfigError, match="sagestep:spotMaxWaitSeconds = 28800; allowed: an integer from 40000"):
        settings_from({"trainingMaxRuntimeSeconds": "40000", "useSpotTraining": "true"})


def test_a_region_without_the_image_is_the_region_s_error():
    with pytest.raises(ConfigError) as caught:
        synthesize("mars", {"aws:region": "mars-east-1"})
    message = str(caught.value)
    assert message.startswith("invalid config aws:region = mars-east-1; allowed: an AWS region where SageMaker "
                              "publishes the xgboost 3.0-5 image")
    assert len(message) < 200 and "xgboostVersion" not in message


@pytest.mark.parametrize("text, fragment", [
    ("sagestep:trainingInstanceType: ml.g5.xlarge\n", "sagestep:trainingInstanceType must be indented under 'config:'"),
    ("- config\n", "expected a map with a 'config:' section"),
])
def test_a_stack_file_in_the_wrong_shape_is_named(stack_file, text, fragment):
    result = cli("synth", "--stack", stack_file("cicheck-shape", text))
    assert result.returncode == 2 and fragment in result.stderr and "Traceback" not in result.stderr


def test_a_named_stack_without_its_file_has_the_defaults_as_pulumi_gives_a_stack_with_no_config(tmp_path):
    import yaml
    assert not (ROOT / "Pulumi.nosuchstack.yaml").exists()
    result = cli("synth", "--stack", "nosuchstack", "--out", str(tmp_path / "out"), "--summary")
    assert result.returncode == 0 and not result.stderr, result.stderr
    assert "stack nosuchstack (us-east-1)" in result.stdout
    definition = json.loads((tmp_path / "out/statemachine.asl.json").read_text())
    assert definition["States"]["Train"]["Parameters"]["ResourceConfig"]["InstanceType"] == (
        yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]["sagestep:trainingInstanceType"]["default"])


def test_the_example_stack_file_lists_every_key_with_its_default():
    import yaml
    declared = yaml.safe_load((ROOT / "Pulumi.yaml").read_text())["config"]
    example = (ROOT / "Pulumi.example.yaml").read_text()
    assert yaml.safe_load(example) == {"config": None}, "every key commented out"
    uncommented = yaml.safe_load(re.sub(r"(?m)^  # ([a-z]+:[A-Za-z]+: )", r"  \1", example))["config"]
    assert set(uncommented) == {"aws:region", *declared}
    for key, spec in declared.items():
        assert uncommented[key] == spec["default"], key
        assert f"  # {spec['description']}\n  # {key}:" in example
    assert read_settings(lambda key: uncommented.get(f"sagestep:{key}"), "example") == read_settings(lambda key: None,
                                                                                                     "example")


@pytest.mark.parametrize("hyperparameters, reason", [
    ('{"max_depth": -3}', "max_depth must be a whole number ≥ 0, got '-3'"),
    ('{"max_dept": 8}', "max_dept is not a hyperparameter XGBoost 3.0.5 or train.py knows (did you mean max_depth?)"),
    ('{"eta": "abc"}', "eta must be a number ≥ 0, got 'abc'"),
    ('{"num_round": "ten"}', "num_round must be a whole number ≥ 1, got 'ten'"),
    ('{"num_class": 3}', "num_class is not yours to set: the preprocess step sets it from the labels"),
])
def test_hyperparameters_xgboost_refuses_are_refused_at_synth(hyperparameters, reason):
    with pytest.raises(ConfigError) as caught:
        settings_from({"hyperparameters": hyperparameters})
    assert str(caught.value).endswith(f"allowed: hyperparameters XGBoost takes ({reason})")


def test_hyperparameters_xgboost_takes_pass():
    hps = '{"max_depth": 8, "eta": 0.2, "subsample": 0.8, "num_round": 50, "eval_metric": "auc", "scale_pos_weight": 3}'
    assert settings_from({"hyperparameters": hps}).hyperparameters["num_round"] == "50"


@pytest.mark.parametrize("values, key, allowed", [
    ({"qualityMetric": "auc"}, "qualityMetric", "validation:<metric> of the metrics a run can report"),
    ({"qualityMetric": "validation:accuracy_score"}, "qualityMetric", "validation:<metric> of the metrics a run can "
     "report (logloss, auc, aucpr, error, map, ndcg, mlogloss, merror, rmse, mae, mape, mphe, rmsle, poisson-nloglik,"),
    # The image scrapes accuracy, but XGBoost's training does not compute it.
    ({"qualityMetric": "validation:accuracy"}, "qualityMetric", "validation:<metric> of the metrics a run can report"),
    # A regression objective never reports AUC.
    ({"qualityMetric": "validation:auc", "qualityThreshold": "0.8", "hyperparameters": '{"objective": "reg:gamma"}'},
     "qualityMetric", "a metric objective reg:gamma reports (rmse, mae, mape, mphe, rmsle, gamma-nloglik, "
     "gamma-deviance)"),
    ({"qualityMetric": "validation:logloss"}, "qualityThreshold", "a number, the value validation:logloss must reach"),
    ({"qualityMetric": "validation:logloss", "qualityThreshold": "high"}, "qualityThreshold", "a number"),
])
def test_a_quality_gate_no_run_can_pass_is_refused_at_synth(values, key, allowed):
    with pytest.raises(ConfigError) as caught:
        settings_from(values)
    assert str(caught.value).startswith(f"invalid config sagestep:{key} = ") and allowed in str(caught.value)


def test_a_gate_on_a_metric_some_problem_reports_needs_no_eval_metric():
    """The preprocess step adds it to eval_metric, and refuses it for a problem that cannot report it."""
    s = settings_from({"qualityMetric": "validation:auc", "qualityThreshold": "0.8"})
    assert (s.quality_metric, s.hyperparameters) == ("validation:auc", {})


def test_the_quality_gate_reaches_the_function_with_the_metric_directions():
    s = settings_from({"qualityMetric": "validation:auc", "qualityThreshold": "0.8",
                       "hyperparameters": '{"eval_metric": "logloss,auc"}'})
    assert (s.quality_metric, s.quality_threshold) == ("validation:auc", 0.8)
    assert (settings_from({}).quality_metric, settings_from({}).quality_threshold) == ("", None)
    stack = synthesize("gate", {"sagestep:qualityMetric": "validation:rmse", "sagestep:qualityThreshold": "12.5"})
    environment = stack.one("aws:lambda/function:Function", "sagestep-gate-preprocess")["inputs"]["environment"]
    gate = json.loads(environment["variables"]["QUALITY_GATE"])
    assert (gate["metric"], gate["threshold"]) == ("validation:rmse", 12.5)
    assert "auc" in gate["maximize"] and "rmse" in gate["minimize"] and not set(gate["maximize"]) & set(gate["minimize"])


@pytest.fixture
def priced(tmp_path, monkeypatch):
    """Made-up prices for the default instance types laid over the shipped ones through $SAGESTEP_PRICES, so
    the caps are checked against figures the test knows."""
    from infra import prices as cost
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"sagemaker": {"training": {"us-east-1": {"ml.m5.xlarge": 0.25}},
                                                "transform": {"us-east-1": {"ml.m5.large": 0.125}}}}))
    monkeypatch.setenv(cost.PRICES_VARIABLE, str(prices))
    cost.price_table.cache_clear()
    yield
    cost.price_table.cache_clear()


@pytest.mark.parametrize("spot", [False, True])
def test_a_budget_caps_what_a_run_s_instances_can_cost(priced, spot):
    values = {"maxRunCostUsd": "1", **({"useSpotTraining": "true"} if spot else {})}
    s = read_settings(lambda key: values.get(key), "dev", region="us-east-1").pipeline
    # $0.80 of training at $0.25/h is 3.2 h (under the 4 h default); $0.20 of prediction at $0.125/h, 1.6 h.
    assert (s.training_max_runtime_seconds, s.transform_timeout_seconds) == (11520, 5760)
    assert 11520 / 3600 * 0.25 + 5760 / 3600 * 0.125 == pytest.approx(1.0)
    if spot:   # spot bills less than on demand for the same runtime; waiting for capacity is not billed
        assert s.use_spot_training and s.spot_max_wait_seconds >= s.training_max_runtime_seconds
    stack = synthesize("budget", {"sagestep:maxRunCostUsd": "1", **({"sagestep:useSpotTraining": "true"} if spot else {})})
    definition = json.loads(stack.definition)
    stopping = definition["States"]["Train"]["Parameters"]["StoppingCondition"]
    assert stopping["MaxRuntimeInSeconds"] == 11520 and definition["States"]["BatchPredict"]["TimeoutSeconds"] == 5760
    assert ("MaxWaitTimeInSeconds" in stopping) is spot


def test_a_budget_never_raises_the_configured_runtime(priced):
    values = {"maxRunCostUsd": "100", "trainingMaxRuntimeSeconds": "3600"}
    assert read_settings(lambda key: values.get(key), "dev", region="us-east-1").pipeline.training_max_runtime_seconds == 3600


@pytest.mark.parametrize("budget, allowed", [
    ("0.03", "$0.03 pays for 5 min of training on ml.m5.xlarge x1 ($0.25/h); at least 10 min needs $0.06"),
    ("-1", "empty, or a number of US dollars above 0"),
    ("lots", "empty, or a number of US dollars above 0"),
])
def test_a_budget_too_small_for_a_useful_run_is_one_line(priced, budget, allowed):
    with pytest.raises(ConfigError) as caught:
        read_settings(lambda key: {"maxRunCostUsd": budget}.get(key), "dev", region="us-east-1")
    assert str(caught.value).startswith(f"invalid config sagestep:maxRunCostUsd = {budget}; allowed: ")
    assert allowed in str(caught.value) and "\n" not in str(caught.value)


def test_a_budget_without_prices_for_the_instance_types_is_refused(monkeypatch):
    from infra import prices
    unpriced = {"source": [], "date": "2000-01-01", "sagemaker": {"training": {"us-east-1": {}}, "transform": {}}}
    monkeypatch.setattr(prices, "price_table", lambda: unpriced)
    with pytest.raises(ConfigError, match=r"needs training prices and the price table has no price for ml\.m5\.xlarge "
                                          r"in us-east-1; add it with \$SAGESTEP_PRICES"):
        read_settings(lambda key: {"maxRunCostUsd": "5"}.get(key), "dev", region="us-east-1")


def test_synth_summary_shows_the_budget_s_caps_and_the_prices(priced):
    from rich.console import Console

    from sagestep.cli import print_summary
    console = Console(record=True, width=300)
    print_summary(synthesize("budget", {"sagestep:maxRunCostUsd": "1"}), console)
    text = console.export_text()
    assert "training: ml.m5.xlarge x1 at $0.25/h on demand (us-east-1" in text
    assert ("maxRunCostUsd: training may run 192 min (MaxRuntimeInSeconds 11520), batch prediction 96 min "
            "(its task's TimeoutSeconds 5760)") in text
