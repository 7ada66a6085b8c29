"""Failure notifications: the topic, its subscriptions, the rule and the topic policy as deployed (pinned),
and a local run that fails publishing exactly one message through the emulated EventBridge and SNS."""
import json
import time

import pytest

from infra.settings import ConfigError, read_settings
from sagestep import ROOT
from sagestep.local.engine import LocalEngine
from sagestep.runner import follow
from sagestep.synth import synthesize

EMAILS = '["ml@example.com", "ops@example.com"]'
KEY = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
TOPIC = "arn:aws:sns:us-east-1:123456789012:sagestep-n-notify-topic"
RULE = "arn:aws:events:us-east-1:123456789012:rule/sagestep-n-notify-rule"


@pytest.fixture(scope="module")
def notified():
    return synthesize("n", {"sagestep:notifyEmails": EMAILS})


def test_no_address_no_notification_resource(stack):
    assert not [r for r in stack.resources if r["type"].startswith(("aws:sns", "aws:cloudwatch/event"))]
    assert "notificationTopicArn" not in stack.outputs


def test_the_topic_a_subscription_per_address_and_the_rule_on_this_state_machine(notified):
    assert notified.outputs["notificationTopicArn"] == TOPIC
    assert notified.one("aws:sns/topic:Topic")["inputs"] == {"name": "sagestep-n-notify-topic"}
    # In the order Pulumi registered them, which its runtime does not fix: compared by address.
    subscriptions = sorted((s["inputs"] for s in notified.of_type("aws:sns/topicSubscription:TopicSubscription")),
                           key=lambda inputs: inputs["endpoint"])
    assert subscriptions == [{"topic": TOPIC, "protocol": "email", "endpoint": email}
                             for email in ("ml@example.com", "ops@example.com")]
    rule = notified.one("aws:cloudwatch/eventRule:EventRule")["inputs"]
    assert json.loads(rule["eventPattern"]) == {
        "source": ["aws.states"], "detail-type": ["Step Functions Execution Status Change"],
        "detail": {"stateMachineArn": [notified.outputs["stateMachineArn"]], "status": ["FAILED", "TIMED_OUT", "ABORTED"]}}
    target = notified.one("aws:cloudwatch/eventTarget:EventTarget")["inputs"]
    assert (target["rule"], target["arn"]) == ("sagestep-n-notify-rule", TOPIC)
    assert target["inputTransformer"]["inputPaths"] == {
        "name": "$.detail.name", "status": "$.detail.status", "execution": "$.detail.executionArn",
        "error": "$.detail.error", "cause": "$.detail.cause"}


def test_only_the_rule_may_publish_to_the_topic(notified):
    policy = json.loads(notified.one("aws:sns/topicPolicy:TopicPolicy")["inputs"]["policy"])
    assert policy == {"Version": "2012-10-17", "Statement": [{
        "Sid": "StatusChangeRuleOnly", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sns:Publish", "Resource": TOPIC, "Condition": {"ArnEquals": {"aws:SourceArn": RULE}}}]}


def test_with_a_key_eventbridge_delivers_through_a_role_that_may_publish_and_use_that_key_only(notified):
    stack = synthesize("n", {"sagestep:notifyEmails": EMAILS, "sagestep:kmsKeyArn": KEY})
    assert stack.one("aws:sns/topic:Topic")["inputs"]["kmsMasterKeyId"] == KEY
    roles = [r for r in stack.of_type("aws:iam/role:Role") if r["name"] == "sagestep-n-notify-delivery"]
    assert len(roles) == 1
    assert json.loads(roles[0]["inputs"]["assumeRolePolicy"]) == {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
        "Condition": {"ArnEquals": {"aws:SourceArn": RULE}}}]}
    policy = stack.one("aws:iam/rolePolicy:RolePolicy", "sagestep-n-notify-delivery-policy")["inputs"]
    assert json.loads(policy["policy"]) == {"Version": "2012-10-17", "Statement": [
        {"Sid": "PublishToTheTopic", "Effect": "Allow", "Action": "sns:Publish", "Resource": TOPIC},
        {"Sid": "EncryptWithTheStackKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": KEY}]}
    target = stack.one("aws:cloudwatch/eventTarget:EventTarget")["inputs"]
    assert ":role/sagestep-n-notify-delivery-" in target["roleArn"]          # its physical name: Pulumi adds a suffix
    # Without a key, EventBridge publishes under the topic policy alone: no role to hold.
    assert "roleArn" not in notified.one("aws:cloudwatch/eventTarget:EventTarget")["inputs"]
    assert not [r for r in notified.of_type("aws:iam/role:Role") if "notify" in r["name"]]


@pytest.mark.parametrize("values, key, allowed", [
    ({"notifyEmails": '["not-an-address"]'}, "notifyEmails", "a list of e-mail addresses"),
    ({"notifyEmails": '"ml@example.com"'}, "notifyEmails", "a list"),
    ({"notifyOn": '["FAILED", "BROKEN"]'}, "notifyOn", "distinct statuses among SUCCEEDED, FAILED, TIMED_OUT, ABORTED"),
    ({"notifyOn": "[]"}, "notifyOn", "distinct statuses"),
])
def test_bad_notification_settings_are_refused(values, key, allowed):
    with pytest.raises(ConfigError) as caught:
        read_settings(lambda name: values.get(name), "dev")
    assert str(caught.value).startswith(f"invalid config sagestep:{key} = ") and allowed in str(caught.value)


def run(engine, name, execution_input):
    sfn = engine.client("stepfunctions")
    arn = sfn.start_execution(stateMachineArn=engine.state_machine_arn, name=name,
                              input=json.dumps(execution_input))["executionArn"]
    description, _ = follow(sfn, arn, timeout_seconds=120)
    return arn, description["status"]


def test_a_failed_local_run_publishes_exactly_one_message_with_the_failed_state_and_cause():
    stack = synthesize("n", {"sagestep:notifyEmails": EMAILS, "sagestep:notifyOn": '["FAILED", "SUCCEEDED"]'})
    with LocalEngine(stack) as engine:
        iris = engine.upload_dataset(ROOT / "examples/iris.csv")
        failed, status = run(engine, "wrong-label", {"datasetUri": iris, "labelColumn": "colour"})
        assert status == "FAILED"
        [message] = engine.notifications(failed, status)
        # A JSON object: the cause is JSON text full of quotes, which EventBridge escapes as a JSON value.
        told = json.loads(message)
        assert told["message"] == "sagestep stack n: execution wrong-label ended FAILED"
        assert told["failedState"] == "PreprocessFailed"
        assert json.loads(told["cause"])["Error"] == "MissingLabelColumn"
        assert "labelColumn 'colour' is not a column" in told["cause"]
        assert told["console"].endswith(f"#/v2/executions/details/{failed}")
        succeeded, status = run(engine, "fine", {"datasetUri": iris, "labelColumn": "species"})
        [message] = engine.notifications(succeeded, status)          # SUCCEEDED is in this stack's notifyOn
        assert json.loads(message) | {"console": None} == {
            "message": "sagestep stack n: execution fine ended SUCCEEDED", "failedState": None, "cause": None,
            "console": None}
        assert len(engine.notifications(failed, "FAILED")) == 1, "each execution is told once"


def test_a_status_the_stack_does_not_notify_publishes_nothing():
    """A stack told of successes only: a run that fails (at Preprocess, before any job) publishes nothing."""
    with LocalEngine(synthesize("n", {"sagestep:notifyEmails": EMAILS, "sagestep:notifyOn": '["SUCCEEDED"]'})) as engine:
        iris = engine.upload_dataset(ROOT / "examples/iris.csv")
        arn, status = run(engine, "quiet", {"datasetUri": iris, "labelColumn": "colour"})
        assert status == "FAILED" and engine.notifications(arn, status, wait_seconds=1.0) == []


def test_an_engine_closed_as_a_run_ends_still_sends_its_status_change_first(monkeypatch):
    """The end is visible before the status change is sent (on the execution's thread): closing the engine
    at once waits for it, so it never reaches for a real EventBridge after the emulator has gone."""
    sent = []

    def slow_status_change(engine, detail):
        time.sleep(0.5)
        sent.append(detail["status"])
    monkeypatch.setattr(LocalEngine, "_status_changed", slow_status_change)
    with LocalEngine(synthesize("n", {"sagestep:notifyEmails": EMAILS})) as engine:
        _, status = run(engine, "closing", {"datasetUri": engine.upload_dataset(ROOT / "examples/iris.csv"),
                                            "labelColumn": "colour"})
    assert status == "FAILED" and sent == ["FAILED"]


def test_sagestep_local_prints_the_notification_it_would_have_sent(tmp_path, capsys, monkeypatch):
    import sagestep.local.run as local_run
    from sagestep.cli import main
    monkeypatch.setattr(local_run, "synthesize_stack", lambda *args, **kwargs: synthesize("n", {"sagestep:notifyEmails": EMAILS}))
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n" + "\n".join(f"{i},{i}" for i in range(20)))
    assert main(["local", str(bad), "--out", str(tmp_path / "out")]) == 1
    text = capsys.readouterr().out
    assert "notification (the stack's SNS topic, to notifyEmails):" in text
    assert "  failedState: PreprocessFailed" in text and "  cause: " in text
