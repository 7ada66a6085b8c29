"""Failure notifications: an EventBridge rule on this state machine's status changes publishes one readable
message to an SNS topic with an e-mail subscription per address. Only that rule may publish to the topic.

The pure parts (the event pattern, the message, the topic policy) are also what the local engine applies to
its emulated EventBridge and SNS, through the synthesized resources.
"""
from __future__ import annotations

import json
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws

from statemachine.console import console_url
from statemachine.iam import document

STATUS_CHANGE = "Step Functions Execution Status Change"
STATUSES = ("SUCCEEDED", "FAILED", "TIMED_OUT", "ABORTED")
# The event's fields the message names; error and cause are present when the execution failed.
MESSAGE_PATHS = {"name": "$.detail.name", "status": "$.detail.status", "execution": "$.detail.executionArn",
                 "error": "$.detail.error", "cause": "$.detail.cause"}


def event_pattern(state_machine_arn: str, statuses: tuple[str, ...]) -> dict:
    """This state machine's executions ending in one of statuses (no other state machine's)."""
    return {"source": ["aws.states"], "detail-type": [STATUS_CHANGE],
            "detail": {"stateMachineArn": [state_machine_arn], "status": list(statuses)}}


def message_template(stack: str, region: str) -> str:
    """The InputTemplate: a JSON object, so EventBridge writes each value as a JSON value (a cause is
    JSON text full of quotes, which a string template would break). The failed state is the error's name:
    every step fails through its own <Step>Failed state."""
    link = console_url(region, "states", "/v2/executions/details/")
    return ('{"message": "sagestep stack ' + stack + ': execution <name> ended <status>", '
            '"failedState": <error>, "cause": <cause>, "console": "' + link + '<execution>"}')


def target_role_trust(rule_arn: str) -> dict:
    """Only EventBridge, delivering for this rule (aws:SourceArn is "the ARN of the rule that sent the event",
    EventBridge's condition keys), may assume the target role."""
    return document([{"Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"}, "Action": "sts:AssumeRole",
                      "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}}])


def target_role_policy(topic_arn: str, key_arn: str) -> dict:
    """What EventBridge's "Amazon SNS topic target" page gives a delivery role: sns:Publish on the topic and, for a
    topic encrypted with a customer managed key, kms:GenerateDataKey and kms:Decrypt on that key. The role is the
    account's, so a key policy that delegates to IAM (AWS's default) needs nothing more, where the service
    principal events.amazonaws.com would need a statement in the user's key policy, which no stack can add."""
    return document([
        {"Sid": "PublishToTheTopic", "Effect": "Allow", "Action": "sns:Publish", "Resource": topic_arn},
        {"Sid": "EncryptWithTheStackKey", "Effect": "Allow", "Action": ["kms:Decrypt", "kms:GenerateDataKey"],
         "Resource": key_arn},
    ])


def topic_policy(topic_arn: str, rule_arn: str) -> dict:
    """EventBridge may publish to the topic for this rule only (aws:SourceArn); nothing else may."""
    return document([{
        "Sid": "StatusChangeRuleOnly", "Effect": "Allow", "Principal": {"Service": "events.amazonaws.com"},
        "Action": "sns:Publish", "Resource": topic_arn, "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}},
    }])


@dataclass
class NotificationsArgs:
    stack: str
    region: pulumi.Input[str]
    state_machine_arn: pulumi.Input[str]
    emails: tuple[str, ...]
    statuses: tuple[str, ...]
    kms_key_arn: str | None = None


class Notifications(pulumi.ComponentResource):
    """The topic, one e-mail subscription per address, the rule and its target, the topic policy."""

    def __init__(self, name: str, args: NotificationsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sagestep:notifications:Notifications", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        # SNS encrypts at rest with the stack's key when there is one; EventBridge then delivers through a role
        # that may use the key (target_role_policy).
        self.topic = aws.sns.Topic(f"{name}-topic", name=f"{name}-topic", kms_master_key_id=args.kms_key_arn, opts=child)
        for index, email in enumerate(args.emails):
            aws.sns.TopicSubscription(f"{name}-email-{index}", topic=self.topic.arn, protocol="email", endpoint=email,
                                      opts=child)
        rule = aws.cloudwatch.EventRule(
            f"{name}-rule", name=f"{name}-rule", description="sagestep: this pipeline's executions ending",
            event_pattern=pulumi.Output.from_input(args.state_machine_arn).apply(
                lambda arn: json.dumps(event_pattern(arn, args.statuses))), opts=child)
        role_arn = self._delivery_role(name, rule, args.kms_key_arn, child) if args.kms_key_arn else None
        aws.cloudwatch.EventTarget(
            f"{name}-target", rule=rule.name, arn=self.topic.arn, role_arn=role_arn,
            input_transformer=aws.cloudwatch.EventTargetInputTransformerArgs(
                input_paths=MESSAGE_PATHS,
                input_template=pulumi.Output.from_input(args.region).apply(
                    lambda region: message_template(args.stack, region))), opts=child)
        aws.sns.TopicPolicy(f"{name}-topic-policy", arn=self.topic.arn, policy=pulumi.Output.all(
            self.topic.arn, rule.arn).apply(lambda a: json.dumps(topic_policy(a[0], a[1]))), opts=child)
        self.register_outputs({"topicArn": self.topic.arn})

    def _delivery_role(self, name: str, rule: aws.cloudwatch.EventRule, key_arn: str,
                       child: pulumi.ResourceOptions) -> pulumi.Output[str]:
        role = aws.iam.Role(f"{name}-delivery", description="sagestep: EventBridge publishes run notifications to the "
                            "encrypted topic", assume_role_policy=rule.arn.apply(
                                lambda arn: json.dumps(target_role_trust(arn))), opts=child)
        aws.iam.RolePolicy(f"{name}-delivery-policy", role=role.id, policy=self.topic.arn.apply(
            lambda topic: json.dumps(target_role_policy(topic, key_arn))), opts=child)
        return role.arn
