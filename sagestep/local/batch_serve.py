"""Stands in for the serving container of a batch transform job (run as a subprocess).

Imports the model's inference module the way the SageMaker XGBoost container does, then for each
input file: splits it into lines (SplitType Line), groups lines into requests of at most
MaxPayloadInMB (BatchStrategy MultiRecord), calls input_fn/predict_fn/output_fn per request and
joins the responses with newlines (AssembleWith Line) into <file>.out.
"""
from __future__ import annotations

import argparse
import importlib.util
import sys
from pathlib import Path


def load_module(code_dir: Path, program: str):
    sys.path.insert(0, str(code_dir))
    spec = importlib.util.spec_from_file_location(Path(program).stem, code_dir / program)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


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


def main() -> int:
    parser = argparse.ArgumentParser()
    for name in ("code", "program", "model", "input", "output", "content_type", "accept"):
        parser.add_argument(f"--{name.replace('_', '-')}", required=True)
    parser.add_argument("--max-payload-mb", type=int, default=6)
    args = parser.parse_args()
    module = load_module(Path(args.code), args.program)
    model = module.model_fn(args.model)
    source, target = Path(args.input), Path(args.output)
    for path in sorted(p for p in source.rglob("*") if p.is_file()):
        responses = []
        for body in requests(path.read_bytes(), args.max_payload_mb * 1024 * 1024):
            try:
                prediction = module.predict_fn(module.input_fn(body, args.content_type), model)
                text, _ = module.output_fn(prediction, args.accept)
            except Exception as error:  # noqa: BLE001 - reported as the job's failure reason
                print(f"ClientError: {path.relative_to(source)}: {type(error).__name__}: {error}", file=sys.stderr)
                return 1
            text = text if isinstance(text, str) else text.decode()
            responses.append(text if text.endswith("\n") or not text else text + "\n")
        out = target / f"{path.relative_to(source)}.out"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("".join(responses))
    return 0


if __name__ == "__main__":
    sys.exit(main())
