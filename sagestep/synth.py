"""Run __main__.py under Pulumi's mocks: what `pulumi up` would create, with no CLI and no AWS.

Computed outputs (ARNs, autonamed buckets) are filled the way the provider would, in moto's default
account, so the local engine can apply the result to moto unchanged.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import runpy
import sys
from dataclasses import asdict, dataclass, field
from importlib.metadata import version
from pathlib import Path

import yaml

from infra.prices import PRICES_VARIABLE
from statemachine.console import partition_of
from statemachine.naming import PROJECT
from statemachine.tune import training_job

from . import DEFAULT_STACK, ROOT

ACCOUNT_ID = "123456789012"        # moto's default account
DEFAULT_REGION = "us-east-1"
STATE_MACHINE = "aws:sfn/stateMachine:StateMachine"
# What a synthesis reads besides the stack file and the config: the program, the stack's code and the code
# it bundles, and the environment settings.load() and the price table consult.
SOURCES = ("__main__.py", "Pulumi.yaml", "infra", "statemachine", "preprocess", "training", "inference")
ENVIRONMENT = ("AWS_REGION", "AWS_DEFAULT_REGION", PRICES_VARIABLE)
CACHE_DIR = Path(".sagestep/synth-cache")
# The Lambda's pyarrow layer: built for a deployment only (infra/parser.py); a local run uses the environment's.
LAYERS = ".sagestep/layers/"


class StackFileError(Exception):
    """A Pulumi.<stack>.yaml that cannot be read."""


@dataclass
class Synthesis:
    stack: str
    region: str
    resources: list[dict] = field(default_factory=list)
    outputs: dict = field(default_factory=dict)
    physical: dict[str, str] = field(default_factory=dict)    # logical name -> the id the provider returns
    options: dict[str, dict] = field(default_factory=dict)    # logical name -> resource options that matter

    def of_type(self, type_token: str) -> list[dict]:
        return [r for r in self.resources if r["type"] == type_token]

    def one(self, type_token: str, name: str | None = None) -> dict:
        found = [r for r in self.of_type(type_token) if name is None or r["name"] == name]
        if len(found) != 1:
            raise LookupError(f"expected one {type_token} named {name!r}, found {len(found)}")
        return found[0]

    @property
    def definition(self) -> str:
        return self.one(STATE_MACHINE)["inputs"]["definition"]


def read_stack_config(stack: str, root: Path = ROOT) -> dict[str, object]:
    """The `config:` map of Pulumi.<stack>.yaml, as the CLI reads it; empty when there is no file, as for a
    stack with no config set: every part of a stack settings file, config included, is optional
    (https://www.pulumi.com/docs/iac/concepts/projects/stack-settings-file/)."""
    path = root / f"Pulumi.{stack}.yaml"
    if not path.exists():
        return {}
    try:
        document = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as error:
        raise StackFileError(yaml_error(path.name, error)) from None
    if not isinstance(document, dict):
        raise StackFileError(f"{path.name}: expected a map with a 'config:' section")
    stray = sorted(key for key in document if isinstance(key, str) and ":" in key)
    if stray:
        raise StackFileError(f"{path.name}: {stray[0]} must be indented under 'config:' (see Pulumi.example.yaml)")
    config = document.get("config") or {}
    if not isinstance(config, dict):
        raise StackFileError(f"{path.name}: 'config' must be a map of key: value")
    for key, value in config.items():
        if isinstance(value, dict) and "secure" in value:
            raise StackFileError(f"{path.name}: {key} is an encrypted secret; synth reads plain values only")
    return config


def yaml_error(name: str, error: yaml.YAMLError) -> str:
    """Where the parser stopped, as editors take it (file:line:column, from 1; PyYAML's marks count from 0),
    and its short problem."""
    mark = getattr(error, "problem_mark", None)
    where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
    problem = getattr(error, "problem", None) or str(error).splitlines()[0]
    return f"{where}: not valid YAML: {problem}"


def _config_strings(config: dict[str, object]) -> dict[str, str]:
    """Pulumi hands every config value to the program as a string; structured ones as JSON."""
    out = {}
    for key, value in config.items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        out[full] = value if isinstance(value, str) else json.dumps(value)
    return out


def _short_hash(*parts: str) -> str:
    return hashlib.sha256("/".join(parts).encode()).hexdigest()[:7]


def _plain(value):
    """Resource inputs as JSON: assets become their paths."""
    import pulumi

    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, pulumi.AssetArchive):
        return {"archive": {k: _plain(v) for k, v in value.assets.items()}}
    if isinstance(value, (pulumi.FileAsset, pulumi.FileArchive)):
        return {"file": str(Path(value.path).resolve().relative_to(ROOT))}
    return value


def _make_mocks(stack: str, region: str, synthesis: Synthesis):
    import pulumi

    partition = partition_of(region)
    dns_suffix = "amazonaws.com.cn" if partition == "aws-cn" else "amazonaws.com"

    class StackMocks(pulumi.runtime.Mocks):
        def new_resource(self, args: pulumi.runtime.MockResourceArgs):
            synthesis.resources.append({"type": args.typ, "name": args.name, "inputs": _plain(dict(args.inputs)),
                                        **({"options": synthesis.options[args.name]}
                                           if args.name in synthesis.options else {})})
            out = dict(args.inputs)
            arn_base = f"arn:{partition}:{{}}:{region}:{ACCOUNT_ID}:"
            if args.typ == "aws:s3/bucket:Bucket":
                bucket = out.get("bucket") or f"{args.name}-{_short_hash(stack, args.name)}"
                out.update(bucket=bucket, arn=f"arn:{partition}:s3:::{bucket}", region=region)
                synthesis.physical[args.name] = bucket
                return bucket, out
            name = out.get("name") or f"{args.name}-{_short_hash(stack, args.name)}"
            out["name"] = name
            arns = {
                "aws:iam/role:Role": f"arn:{partition}:iam::{ACCOUNT_ID}:role/{name}",
                "aws:lambda/function:Function": arn_base.format("lambda") + f"function:{name}",
                "aws:lambda/layerVersion:LayerVersion": arn_base.format("lambda") + f"layer:{out.get('layerName')}:1",
                "aws:cloudwatch/logGroup:LogGroup": arn_base.format("logs") + f"log-group:{name}",
                STATE_MACHINE: arn_base.format("states") + f"stateMachine:{name}",
                "aws:sns/topic:Topic": arn_base.format("sns") + name,
                "aws:cloudwatch/eventRule:EventRule": arn_base.format("events") + f"rule/{name}",
                "aws:sagemaker/modelPackageGroup:ModelPackageGroup": arn_base.format("sagemaker") +
                f"model-package-group/{out.get('modelPackageGroupName')}",
            }
            if args.typ in arns:
                out["arn"] = arns[args.typ]
            synthesis.physical[args.name] = name
            return name, out

        def call(self, args: pulumi.runtime.MockCallArgs):
            if args.token == "aws:index/getCallerIdentity:getCallerIdentity":
                return {"accountId": ACCOUNT_ID, "arn": f"arn:{partition}:iam::{ACCOUNT_ID}:user/sagestep",
                        "userId": "AIDASAGESTEP", "id": ACCOUNT_ID}
            if args.token == "aws:index/getRegion:getRegion":
                return {"region": region, "name": region, "id": region,
                        "endpoint": f"ec2.{region}.{dns_suffix}", "description": region}
            if args.token == "aws:index/getPartition:getPartition":
                return {"partition": partition, "dnsSuffix": dns_suffix, "id": partition,
                        "reverseDnsPrefix": ".".join(reversed(dns_suffix.split(".")))}
            raise NotImplementedError(f"no mock for invoke {args.token}")

    return StackMocks()


def synthesize(stack: str = DEFAULT_STACK, config: dict[str, object] | None = None, root: Path = ROOT) -> Synthesis:
    """Run the program once; config is the stack file's `config:` map (read from disk when None)."""
    import pulumi
    from pulumi.runtime import settings as runtime_settings

    config = read_stack_config(stack, root) if config is None else config
    strings = _config_strings(config)
    region = strings.setdefault("aws:region", DEFAULT_REGION)
    synthesis = Synthesis(stack=stack, region=region)

    asyncio.set_event_loop(asyncio.new_event_loop())
    runtime_settings.set_root_resource(None)
    pulumi.runtime.set_mocks(_make_mocks(stack, region, synthesis),
                             project=PROJECT, stack=stack, preview=False)
    pulumi.runtime.set_all_config(strings)

    def record_options(args: pulumi.ResourceTransformationArgs):
        """The mocks see no resource options; keep the ones a deploy depends on (kept on delete)."""
        if args.opts and args.opts.retain_on_delete:
            synthesis.options[args.name] = {"retainOnDelete": True}
        return None

    @pulumi.runtime.test
    def run():
        pulumi.runtime.register_stack_transformation(record_options)
        runpy.run_path(str(root / "__main__.py"), run_name="__main__")
        exports = runtime_settings.get_root_resource().outputs
        return pulumi.Output.all(**exports).apply(synthesis.outputs.update)

    run()
    return synthesis


def write(synthesis: Synthesis, out_dir: Path) -> list[Path]:
    """resources.json and statemachine.asl.json, each written whole (temp file, then rename)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / "resources.json": json.dumps(synthesis.resources, indent=2, sort_keys=True) + "\n",
        out_dir / "statemachine.asl.json": synthesis.definition,
        out_dir / "outputs.json": json.dumps(synthesis.outputs, indent=2, sort_keys=True) + "\n",
    }
    for path, text in files.items():
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return list(files)


def synthesize_stack(stack: str, root: Path = ROOT) -> Synthesis:
    """synthesize() of the stack file, as the local engine's commands need it: reused while nothing it reads
    has changed (the program, the stack's code, the stack file, Pulumi's versions), so a warm `sagestep local`
    skips the Pulumi SDK's import and the program's run."""
    config = read_stack_config(stack, root)
    key = _inputs_digest(stack, config, root)
    cached = root / CACHE_DIR / f"{stack}.json"
    try:
        entry = json.loads(cached.read_text())
        if entry["key"] == key:
            synthesis = Synthesis(**entry["synthesis"])
            if all((ROOT / path).is_file() for path in _files_of(synthesis.resources) if not path.startswith(LAYERS)):
                return synthesis
    except (OSError, ValueError, KeyError, TypeError):
        pass
    synthesis = synthesize(stack, config, root)
    cached.parent.mkdir(parents=True, exist_ok=True)
    temporary = cached.with_name(f".{cached.name}.{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"key": key, "synthesis": asdict(synthesis)}))
    temporary.replace(cached)
    return synthesis


def _inputs_digest(stack: str, config: dict[str, object], root: Path) -> str:
    digest = hashlib.sha256(json.dumps([stack, config, sys.version, version("pulumi"), version("pulumi_aws"),
                                        [os.environ.get(name) for name in ENVIRONMENT]], sort_keys=True,
                                       default=str).encode())
    prices = os.environ.get(PRICES_VARIABLE)
    files = [Path(prices)] if prices and Path(prices).is_file() else []
    for source in SOURCES:
        path = root / source
        if path.is_dir():
            files += sorted(f for f in path.rglob("*") if f.is_file() and "__pycache__" not in f.parts)
        elif path.is_file():
            files.append(path)
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def _files_of(value) -> list[str]:
    """The local files a synthesis refers to (code bundles under .sagestep/bundles), relative to ROOT as
    _plain writes them."""
    if isinstance(value, dict):
        return [value["file"]] if isinstance(value.get("file"), str) and len(value) == 1 else \
            [path for child in value.values() for path in _files_of(child)]
    if isinstance(value, list):
        return [path for child in value for path in _files_of(child)]
    return []


def settings_summary(synthesis: Synthesis) -> list[str]:
    """What `synth --summary` says of the settings every run lives with, read from what would be deployed: the
    KMS key, the stack's quality gate (the Lambda's QUALITY_GATE) and the notifications (subscriptions, rule)."""
    key = training_job(json.loads(synthesis.definition)["States"])["OutputDataConfig"].get("KmsKeyId")
    emails = synthesis.of_type("aws:sns/topicSubscription:TopicSubscription")
    topic = ", the notification topic" if emails else ""
    lines = [f"KMS: {key} (SSE-KMS on both buckets, the jobs' outputs and volumes{topic})" if key
             else "KMS: AWS-managed keys (no kmsKeyArn: SSE-S3 on both buckets, SageMaker's default for the jobs)"]
    environment = synthesis.one("aws:lambda/function:Function")["inputs"]["environment"]["variables"]
    gate = json.loads(environment["QUALITY_GATE"])
    if gate["metric"]:
        comparison = ">=" if gate["metric"].removeprefix("validation:") in gate["maximize"] else "<="
        lines.append(f"the stack's quality gate: {gate['metric']} {comparison} {gate['threshold']:g}")
    else:
        lines.append("the stack's quality gate: none (qualityMetric is empty)")
    rules = synthesis.of_type("aws:cloudwatch/eventRule:EventRule")
    if emails and rules:
        statuses = json.loads(rules[0]["inputs"]["eventPattern"])["detail"]["status"]
        lines.append(f"notifications: {len(emails)} e-mail address{'es' if len(emails) > 1 else ''} when a run ends "
                     f"{', '.join(statuses)} (each confirms its SNS subscription first)")
    else:
        lines.append("notifications: none (notifyEmails is empty)")
    return lines
