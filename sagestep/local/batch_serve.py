"""A batch transform job's platform side, run with the image environment's Python (containers.py).

The container side is the image's own: what `serve` does before gunicorn starts (sagemaker-containers
_server.start: install the code bundle, SAGEMAKER_SUBMIT_DIRECTORY, as a module), then its WSGI app
(SAGEMAKER_SERVING_MODULE) answers each request, called in-process instead of behind gunicorn/nginx.
The platform side is ours: each input object is split into lines (SplitType Line), whole lines are
grouped into requests of at most MaxPayloadInMB (BatchStrategy MultiRecord), each is POSTed to
/invocations with the job's ContentType and Accept, and the responses are joined with newlines
(AssembleWith Line) into <object>.out. A response other than 200 fails the job.

Imports only the standard library and the image environment (sagemaker-containers, Werkzeug).
"""
from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from pathlib import Path
from typing import Callable

from sagemaker_containers.beta.framework import env, modules
from werkzeug.test import Client
from werkzeug.wrappers import Response


def serving_app() -> Callable:
    """The image's `serve`, up to the point where gunicorn would load the app."""
    module_name, app_name = os.environ["SAGEMAKER_SERVING_MODULE"].split(":")
    serving = importlib.import_module(module_name)
    serving.set_default_serving_env_if_unspecified()
    serving_env = env.ServingEnv()
    if serving_env.module_name:
        modules.import_module(serving_env.module_dir, serving_env.module_name)
    sys.path.append(env.code_dir)          # gunicorn --pythonpath: sys.path + code_dir
    return getattr(serving, app_name)


def requests(data: bytes, max_bytes: int) -> list[bytes]:
    """MultiRecord: whole lines, as many as fit in one request."""
    batches, current, size = [], [], 0
    for line in data.splitlines(keepends=True):
        if len(line) > max_bytes:
            raise ValueError(f"a record of {len(line)} bytes is larger than MaxPayloadInMB")
        if size + len(line) > max_bytes and current:
            batches.append(b"".join(current))
            current, size = [], 0
        current.append(line)
        size += len(line)
    if current:
        batches.append(b"".join(current))
    return batches


def invoke(client: Client, body: bytes, headers: dict[str, str]) -> tuple[int, bytes, str]:
    """POST /invocations: status, body, mimetype. An exception out of the app is what gunicorn makes
    of it: a 500, logged."""
    try:
        response = client.post("/invocations", data=body, headers=headers)
    except Exception:  # noqa: BLE001 - gunicorn's "Error handling request"
        print("Error handling request /invocations", file=sys.stderr)
        traceback.print_exc()
        return 500, b"", "text/html"
    return response.status_code, response.get_data(), response.mimetype


def transform(path: Path, name: str, client: Client, headers: dict[str, str], max_bytes: int) -> bytes | str:
    """The object's assembled output, or the reason the job fails."""
    responses = []
    for body in requests(path.read_bytes(), max_bytes):
        status, data, mimetype = invoke(client, body, headers)
        if status != 200:
            detail = "" if mimetype == "text/html" else ": " + " ".join(data.decode("utf-8", "replace").split())[:300]
            return f"ClientError: {name}: POST /invocations answered HTTP {status}{detail}"
        responses.append(data if data.endswith(b"\n") or not data else data + b"\n")
    return b"".join(responses)


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("input", "output", "failure"):
        parser.add_argument(f"--{name}", type=Path, required=True)
    parser.add_argument("--content-type")
    parser.add_argument("--accept")
    parser.add_argument("--max-payload-mb", type=int, required=True)
    args = parser.parse_args()
    headers = {key: value for key, value in (("Content-Type", args.content_type), ("Accept", args.accept)) if value}
    client = Client(serving_app(), Response)
    for path in sorted(p for p in args.input.rglob("*") if p.is_file()):
        name = str(path.relative_to(args.input))
        result = transform(path, name, client, headers, args.max_payload_mb * 1024 * 1024)
        if isinstance(result, str):
            print(result, file=sys.stderr, flush=True)
            args.failure.write_text(result)
            return 1
        out = args.output / f"{name}.out"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
