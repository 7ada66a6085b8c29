"""The subset of stack settings the definition depends on (kept apart from Pulumi's config reading)."""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PipelineSettings:
    training_instance_type: str = "ml.m5.xlarge"
    training_instance_count: int = 1
    training_volume_size_gb: int = 30
    training_max_runtime_seconds: int = 4 * 3600
    use_spot_training: bool = False
    spot_max_wait_seconds: int = 8 * 3600
    transform_instance_type: str = "ml.m5.large"
    transform_instance_count: int = 1
    preprocess_concurrency: int = 10                 # work items the preprocess Maps run at once
    transform_timeout_seconds: int | None = None     # BatchPredict's TimeoutSeconds (maxRunCostUsd), else none
    kms_key_arn: str | None = None
    register_models: bool = False                    # the Register step and the model package group
    model_approval_status: str = "PendingManualApproval"   # a registered version's first status
    # sagestep:tuning, checked, its strategy filled in (preprocess/tuning.py): {} when the stack does not tune
    tuning: dict = field(default_factory=dict)
