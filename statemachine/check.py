"""A static check of a definition: what AWS rejects at create time and moto's interpreter accepts.

Transition targets, JSONPath and intrinsic syntax, and each SageMaker task's Parameters against
botocore's service model for its API (names, required members, literal types).
"""
from __future__ import annotations

import re
from functools import lru_cache

import botocore.session
from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext import parse as parse_jsonpath

# An optimized integration (sagemaker:createModel) or an AWS SDK one (aws-sdk:sagemaker:stopTransformJob).
SAGEMAKER_RESOURCE = re.compile(r"^arn:aws[a-z-]*:states:::(?:aws-sdk:)?sagemaker:(\w+?)(\.sync|\.waitForTaskToken)?$")
INTRINSIC = re.compile(r"^States\.\w+\(.*\)$", re.S)
PATH_FIELDS = ("InputPath", "OutputPath", "ResultPath")
_TYPES = {"string": str, "integer": int, "long": int, "boolean": bool, "float": (int, float),
          "double": (int, float), "structure": dict, "list": list, "map": dict, "timestamp": (str, int)}


def _check_path(path: str, where: str, problems: list[str]) -> None:
    if INTRINSIC.match(path):
        for argument in re.findall(r"(\$\$?[.\w\[\]]*)", path):
            _check_path(argument, where, problems)
        return
    if not path.startswith("$"):
        problems.append(f"{where}: {path!r} is neither a JSONPath nor an intrinsic function")
        return
    try:
        parse_jsonpath(path[1:] if path.startswith("$$") else path)
    except (JsonPathParserError, Exception) as error:  # jsonpath_ng raises bare Exceptions too
        problems.append(f"{where}: invalid JSONPath {path!r} ({error})")


def _check_template(template, where: str, problems: list[str]) -> None:
    if isinstance(template, dict):
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    problems.append(f"{where}.{key}: a '.$' field must hold a path string")
                else:
                    _check_path(value, f"{where}.{key}", problems)
            else:
                _check_template(value, f"{where}.{key}", problems)
    elif isinstance(template, list):
        for index, item in enumerate(template):
            _check_template(item, f"{where}[{index}]", problems)


def _check_shape(template, shape, where: str, problems: list[str]) -> None:
    """Parameters against a botocore shape; '.$' members are known only at run time."""
    if shape.type_name == "structure":
        if not isinstance(template, dict):
            problems.append(f"{where}: expected an object for {shape.name}")
            return
        given = {key[:-2] if key.endswith(".$") else key: key for key in template}
        for name in given:
            if name not in shape.members:
                problems.append(f"{where}: unknown parameter {name!r}; valid: {', '.join(shape.members)}")
        for name in shape.required_members:
            if name not in given:
                problems.append(f"{where}: missing required parameter {name!r}")
        for name, key in given.items():
            if name in shape.members and not key.endswith(".$"):
                _check_shape(template[key], shape.members[name], f"{where}.{name}", problems)
    elif shape.type_name == "list":
        if not isinstance(template, list):
            problems.append(f"{where}: expected a list")
            return
        for index, item in enumerate(template):
            _check_shape(item, shape.member, f"{where}[{index}]", problems)
    elif shape.type_name == "map":
        if not isinstance(template, dict):
            problems.append(f"{where}: expected a map")
    else:
        expected = _TYPES.get(shape.type_name)
        wrong_bool = isinstance(template, bool) and shape.type_name != "boolean"
        if expected and (not isinstance(template, expected) or wrong_bool):
            problems.append(f"{where}: {template!r} is not a {shape.type_name}")
        elif isinstance(template, str) and shape.metadata.get("enum") and template not in shape.enum:
            problems.append(f"{where}: {template!r} is not one of {', '.join(shape.enum)}")


@lru_cache(maxsize=1)
def sagemaker_model():
    """botocore's SageMaker service model (loading it takes a few hundred milliseconds: once)."""
    return botocore.session.get_session().get_service_model("sagemaker")


def sagemaker_operation(resource: str):
    match = SAGEMAKER_RESOURCE.match(resource)
    if not match:
        return None
    action = match.group(1)
    model = sagemaker_model()
    name = action[0].upper() + action[1:]
    return model.operation_model(name) if name in model.operation_names else name


def check_definition(definition: dict) -> list[str]:
    """Every problem found, as 'State.Field: what is wrong'; empty when the definition is sound."""
    problems: list[str] = []
    states = definition.get("States", {})
    if definition.get("StartAt") not in states:
        problems.append(f"StartAt: no state named {definition.get('StartAt')!r}")
    for name, state in states.items():
        targets = [state.get("Next"), state.get("Default")]
        targets += [c.get("Next") for c in state.get("Catch", []) + state.get("Choices", [])]
        for target in filter(None, targets):
            if target not in states:
                problems.append(f"{name}: transition to unknown state {target!r}")
        if not state.get("Next") and not state.get("End") and state.get("Type") not in ("Fail", "Succeed", "Choice"):
            problems.append(f"{name}: neither Next nor End")
        for field in PATH_FIELDS:
            if isinstance(state.get(field), str):
                _check_path(state[field], f"{name}.{field}", problems)
        for field in ("Parameters", "ResultSelector"):
            _check_template(state.get(field), f"{name}.{field}", problems)
        for field in ("CausePath", "ErrorPath"):
            if field in state:
                _check_path(state[field], f"{name}.{field}", problems)
        if state.get("Type") == "Task":
            operation = sagemaker_operation(state.get("Resource", ""))
            if isinstance(operation, str):
                problems.append(f"{name}.Resource: SageMaker has no operation {operation!r}")
            elif operation is not None:
                _check_shape(state.get("Parameters", {}), operation.input_shape, f"{name}.Parameters", problems)
    return problems
