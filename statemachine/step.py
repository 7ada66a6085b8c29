"""What a pipeline step is: its states, the state machine role's statements for them, the job role its
jobs run under, what it adds to the run's output and to the synth summary. One module per step
builds one Step (as AWS CDK's task classes pair _renderTask with makePolicyStatements)."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .refs import Refs
from .settings import PipelineSettings


@dataclass(frozen=True)
class JobRole:
    """An IAM role SageMaker assumes for a step's jobs; infra creates one per JobRole in the pipeline."""
    key: str                                             # Refs.role_arns key, and the role's name suffix
    description: str
    trust: Callable[[Refs], dict]
    policy: Callable[[Refs, PipelineSettings], dict]


@dataclass(frozen=True)
class Step:
    name: str                                            # the state a run enters the step by
    # (refs, settings, the state after the step or None for the end) -> the step's states by name
    states: Callable[[Refs, PipelineSettings, str | None], dict[str, dict]]
    statements: Callable[[Refs], list[dict]] = lambda refs: []
    role: JobRole | None = None
    outputs: dict[str, str] = field(default_factory=dict)   # the run's output fields ("name.$": path)
    # (the step's rendered states) -> lines for `sagestep synth --summary`
    summary: Callable[[dict[str, dict]], list[str]] = lambda states: []
    # (the stack's settings) -> whether the step runs: Tune takes Train's place when sagestep:tuning is set;
    # Register runs only with sagestep:registerModels (off, a step leaves no state, output or statement)
    when: Callable[[PipelineSettings], bool] = lambda settings: True


def then(next_state: str | None) -> dict:
    """A state's transition: on to next_state, or the end of the run."""
    return {"Next": next_state} if next_state else {"End": True}
