"""SAGEMAKER_SERVING_MODULE: the script-mode branch of the image's serving.py (a WSGI app).

Mirrors aws/sagemaker-xgboost-container v3.0-5 src/sagemaker_xgboost_container/serving.py (logging setup,
set_default_serving_env_if_unspecified, default_*_fn, _user_module_transformer, main) and, for the
default input_fn, encoder.py (csv_to_dmatrix, libsvm_to_dmatrix). Left out: algorithm mode, multi-model
serving and RecordIO-Protobuf input, which need the image's mlio build.
"""
from __future__ import annotations

import csv
import importlib
import logging
import os
import tempfile

import numpy as np
import xgboost as xgb
from sagemaker_containers.beta.framework import content_types, encoders, env, errors, transformer, worker

logging.basicConfig(format="%(asctime)s %(levelname)s - %(name)s - %(message)s", level=logging.INFO)
logging.getLogger("boto3").setLevel(logging.INFO)
logging.getLogger("s3transfer").setLevel(logging.INFO)
logging.getLogger("botocore").setLevel(logging.WARN)

logger = logging.getLogger(__name__)
logger.setLevel(logging.DEBUG)

LIBSVM_TYPES = ("text/libsvm", "text/x-libsvm")


def set_default_serving_env_if_unspecified() -> None:
    """Single-thread processes by default (the image's OMP_NUM_THREADS=1)."""
    os.environ.setdefault("OMP_NUM_THREADS", "1")


def csv_to_dmatrix(data) -> xgb.DMatrix:
    text = data.decode() if isinstance(data, bytes) else data
    sniffed = csv.Sniffer().sniff(text.split("\n")[0][:512]).delimiter
    delimiter = "," if sniffed.isalnum() else sniffed
    logging.info("Determined delimiter of CSV input is '{}'".format(delimiter))
    rows = [["nan" if x == "" else x for x in line.split(delimiter)] for line in text.split("\n")]
    return xgb.DMatrix(np.array(rows).astype(None))


def libsvm_to_dmatrix(data: bytes) -> xgb.DMatrix:
    with tempfile.NamedTemporaryFile(delete=False) as libsvm_file:
        libsvm_file.write(data)
    try:
        return xgb.DMatrix(f"{libsvm_file.name}?format=libsvm")
    finally:
        os.remove(libsvm_file.name)


def default_model_fn(model_dir: str):
    return transformer.default_model_fn(model_dir)


def default_input_fn(input_data, content_type: str) -> xgb.DMatrix:
    media_type = content_type.split(";")[0].strip()   # the image's cgi.parse_header (gone in 3.13)
    if media_type == content_types.CSV:
        return csv_to_dmatrix(input_data)
    if media_type in LIBSVM_TYPES:
        return libsvm_to_dmatrix(input_data)
    raise errors.UnsupportedFormatError(media_type)


def default_predict_fn(input_data, model):
    return model.predict(input_data, validate_features=False)


def default_output_fn(prediction, accept: str):
    return worker.Response(encoders.encode(prediction, accept), mimetype=accept)


def _user_module_transformer(user_module) -> transformer.Transformer:
    model_fn = getattr(user_module, "model_fn", default_model_fn)
    input_fn = getattr(user_module, "input_fn", None)
    predict_fn = getattr(user_module, "predict_fn", None)
    output_fn = getattr(user_module, "output_fn", None)
    transform_fn = getattr(user_module, "transform_fn", None)

    if transform_fn and (input_fn or predict_fn or output_fn):
        raise errors.ClientError("Cannot use transform_fn implementation with input_fn, predict_fn, and/or output_fn")

    if transform_fn is not None:
        return transformer.Transformer(model_fn=model_fn, transform_fn=transform_fn)
    return transformer.Transformer(
        model_fn=model_fn,
        input_fn=input_fn or default_input_fn,
        predict_fn=predict_fn or default_predict_fn,
        output_fn=output_fn or default_output_fn,
    )


app = None


def main(environ, start_response):
    """The WSGI app gunicorn serves: the user module's handlers behind /invocations and /ping."""
    global app
    if app is None:
        serving_env = env.ServingEnv()
        if serving_env.module_name is None:
            raise errors.ClientError("algorithm mode (no SAGEMAKER_PROGRAM) is not available in sagestep's local image")
        user_module = importlib.import_module(serving_env.module_name)
        user_module_transformer = _user_module_transformer(user_module)
        user_module_transformer.initialize()
        app = worker.Worker(transform_fn=user_module_transformer.transform, module_name=serving_env.module_name)
    return app(environ, start_response)
