"""SAGEMAKER_TRAINING_MODULE: the script-mode branch of the image's training.py.

Mirrors aws/sagemaker-xgboost-container v3.0-5 src/sagemaker_xgboost_container/training.py (train, main):
with sagemaker_program set, the launcher installs the code bundle and runs `python -m <module> <args>`.
Algorithm mode (the image's own XGBoost trainer) is not part of the local image.
"""
from __future__ import annotations

import logging
import sys

import sagemaker_containers.beta.framework as framework

logger = logging.getLogger(__name__)


def train(training_environment) -> None:
    if training_environment.user_entry_point is None:
        raise framework.errors.ClientError(
            "algorithm mode (no sagemaker_program hyperparameter) is not available in sagestep's local image")
    logger.info("Invoking user training script.")
    framework.modules.run_module(
        training_environment.module_dir,
        training_environment.to_cmd_args(),
        training_environment.to_env_vars(),
        training_environment.module_name,
        capture_error=False,
    )


def main() -> None:
    train(framework.training_env())
    sys.exit(0)
