"""The ASL definition of the sagestep pipeline, in pure Python (no Pulumi import)."""
from .definition import build_definition, role_policy, role_statements, state_order
from .refs import Refs
from .settings import PipelineSettings

__all__ = ["build_definition", "role_policy", "role_statements", "state_order", "Refs", "PipelineSettings"]
