"""The preprocess Lambda with its own role and log group."""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_aws as aws

from . import parser, policies

ROOT = Path(__file__).resolve().parent.parent
CODE_DIR = ROOT / "preprocess"
HANDLER = "preprocess.handler.handler"


def code_archive() -> pulumi.AssetArchive:
    """The preprocess package, at preprocess/ in the zip (boto3 is the runtime's; pyarrow, the layer's)."""
    files = sorted(p for p in CODE_DIR.glob("*.py"))
    return pulumi.AssetArchive({f"preprocess/{p.name}": pulumi.FileAsset(str(p)) for p in files})


@dataclass
class PreprocessFunctionArgs:
    function_name: str
    refs: pulumi.Output                   # Output[statemachine.Refs]
    dataset_buckets: tuple[str, ...]
    kms_key_arn: str | None
    memory_mb: int
    timeout_seconds: int
    log_retention_days: int
    environment: dict[str, pulumi.Input[str]]


class PreprocessFunction(pulumi.ComponentResource):
    def __init__(self, name: str, args: PreprocessFunctionArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("sagestep:preprocess:Function", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        log_group_name = f"/aws/lambda/{args.function_name}"
        self.log_group = aws.cloudwatch.LogGroup(
            f"{name}-logs", name=log_group_name, retention_in_days=args.log_retention_days, opts=child)
        self.role = aws.iam.Role(
            f"{name}-role", description="sagestep preprocess Lambda: read datasets, write runs/",
            assume_role_policy=json.dumps(policies.lambda_trust()), opts=child)
        self.policy = aws.iam.RolePolicy(
            f"{name}-policy", role=self.role.id,
            policy=args.refs.apply(lambda refs: json.dumps(
                policies.preprocess_policy(refs, args.dataset_buckets, log_group_name, args.kms_key_arn))), opts=child)
        # pyarrow, the parser an item of text is read with (preprocess/arrowcsv.py), for the function's runtime.
        self.parser = aws.lambda_.LayerVersion(
            f"{name}-parser", layer_name=f"{args.function_name}-pyarrow",
            description=f"pyarrow for sagestep's preprocess: {parser.PYARROW.name}",
            code=pulumi.FileArchive(str(parser.layer_archive())),
            compatible_runtimes=[parser.RUNTIME], compatible_architectures=[parser.ARCHITECTURE], opts=child)
        self.function = aws.lambda_.Function(
            name,
            name=args.function_name,
            description="sagestep: validate and split the dataset, plan the training run",
            runtime=parser.RUNTIME,
            architectures=[parser.ARCHITECTURE],
            layers=[self.parser.arn],
            handler=HANDLER,
            code=code_archive(),
            role=self.role.arn,
            memory_size=args.memory_mb,
            timeout=args.timeout_seconds,
            environment=aws.lambda_.FunctionEnvironmentArgs(variables=args.environment),
            logging_config=aws.lambda_.FunctionLoggingConfigArgs(log_format="JSON", log_group=self.log_group.name),
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.policy, self.log_group]))
        self.register_outputs({"arn": self.function.arn})
