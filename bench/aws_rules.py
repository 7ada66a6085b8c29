"""What AWS's server-side rules cost the local engine per request, beside botocore's own validator.

  python bench/aws_rules.py            # the stack's CreateTrainingJob / CreateTransformJob / StartExecution

Each request is the one the synthesized stack sends (resolved as at run time), checked 2,000 times:
the catalogue (sagestep/local/aws_rules.refusal: every min/max/pattern/enum plus the documented
rules) against botocore's ParamValidator (types, required members, min), in the same process.
"""
from __future__ import annotations

import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RUNS = 2000


def requests() -> dict[str, tuple[str, dict]]:
    from sagestep.synth import synthesize

    states = json.loads(synthesize("dev", {}).definition)["States"]
    image = states["Train"]["Parameters"]["AlgorithmSpecification"]["TrainingImage"]
    role = states["Train"]["Parameters"]["RoleArn"]
    uri = "s3://sagestep-dev-data/runs/bench/"
    train = {**{k: v for k, v in states["Train"]["Parameters"].items() if not k.endswith(".$")},
             "TrainingJobName": "sagestep-dev--bench-0123abcd-train-0",
             "HyperParameters": {"objective": "multi:softprob", "num_class": "3", "sagemaker_program": "train.py"},
             "AlgorithmSpecification": {"TrainingImage": image, "TrainingInputMode": "File"}, "RoleArn": role,
             "Tags": [{"Key": "sagestep:stack", "Value": "dev"}, {"Key": "sagestep:execution", "Value": "bench"}]}
    train["InputDataConfig"] = [{**channel, "DataSource": {"S3DataSource": {
        "S3DataType": "S3Prefix", "S3Uri": uri + channel["ChannelName"] + "/",
        "S3DataDistributionType": "FullyReplicated"}}} for channel in train["InputDataConfig"]]
    predict = {**{k: v for k, v in states["BatchPredict"]["Parameters"].items() if not k.endswith(".$")},
               "TransformJobName": "sagestep-dev--bench-0123abcd-predict-0",
               "ModelName": "sagestep-dev--bench-0123abcd-model-0",
               "TransformInput": {"DataSource": {"S3DataSource": {"S3DataType": "S3Prefix", "S3Uri": uri}},
                                  "ContentType": "text/csv", "SplitType": "Line", "CompressionType": "None"},
               "TransformOutput": {"S3OutputPath": uri + "predictions/", "Accept": "text/csv",
                                   "AssembleWith": "Line"},
               "Tags": [{"Key": "sagestep:stack", "Value": "dev"}]}
    start = {"stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:sagestep-dev-pipeline",
             "name": "local-20261127-150000-abcdef", "input": json.dumps({"datasetUri": uri + "data.csv"})}
    return {"CreateTrainingJob": ("sagemaker", train), "CreateTransformJob": ("sagemaker", predict),
            "StartExecution": ("stepfunctions", start)}


def per_request(check) -> float:
    started = time.perf_counter()
    for _ in range(RUNS):
        check()
    return (time.perf_counter() - started) / RUNS * 1e6


def main() -> None:
    from botocore.validate import ParamValidator

    from sagestep.local import aws_rules

    aws_rules.algorithm_repositories()          # loaded once when the engine starts
    print(f"{'request':20} {'catalogue':>12} {'botocore':>12}   (µs per request, {RUNS} runs)")
    for operation, (service, params) in requests().items():
        assert aws_rules.refusal(service, operation, params) is None, operation
        shape = aws_rules.service_model(service).operation_model(operation).input_shape
        ours = per_request(lambda s=service, o=operation, p=params: aws_rules.refusal(s, o, p))
        botocore = per_request(lambda p=params, t=shape: ParamValidator().validate(p, t))
        print(f"{operation:20} {ours:12.1f} {botocore:12.1f}")


if __name__ == "__main__":
    main()
