"""The ASL definition of the sagestep pipeline and its IAM, in pure Python (no Pulumi import)."""
from .definition import STEPS, build_definition, job_roles, jobs, role_policy, role_statements, state_order, summary
from .refs import Refs
from .settings import PipelineSettings
from .step import Job, JobRole, JobUse, Step

__all__ = ["STEPS", "build_definition", "job_roles", "jobs", "role_policy", "role_statements", "state_order", "summary",
           "Refs", "PipelineSettings", "Job", "JobRole", "JobUse", "Step"]
