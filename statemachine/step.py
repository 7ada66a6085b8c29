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
class JobUse:
    """What a job bills: so many instances for so many seconds each, at a price use; seconds None when the job
    reports none (then `missing` says why, and the item is left unpriced)."""
    label: str                                           # the cost item ("training", "batch transform")
    instance_type: str
    count: int
    seconds: float | None
    use: str                                             # the price table's use: "training" | "transform"
    detail: str                                          # what the seconds are, as the cost line says
    missing: str = ""
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class Job:
    """A SageMaker resource a step's task creates, declared in the step's module: what names it (the $.run name
    it starts with, the infix, its API's name limit), how the run's record describes and prices it, and the
    local engine's runner for its .sync task ("module:function", resolved by sagestep.local at run time)."""
    kind: str                                            # the record's key: "training", "transform", ...
    action: str                                          # the task resource's action: "createTrainingJob.sync"
    name_field: str                                      # the request field that names it: "TrainingJobName"
    infix: str                                           # its name: <$.run base><infix><attempt>
    limit: int                                           # its API's name limit (botocore's sagemaker model)
    base: str = "runName"                                # the $.run name its name starts with
    describe: str | None = None                          # the Describe operation the record reads it with
    console: str | None = None                           # its SageMaker console path ("/jobs/")
    log_group: str | None = None
    # (its Describe response, a local estimate) -> what it bills (None: nothing); its trials' Describe responses
    # are under "trials" when trials is set (a tuning job bills nothing of its own, each trial as a training job)
    cost: Callable[[dict, bool], JobUse | None] | None = None
    trials: bool = False
    local: str | None = None


@dataclass(frozen=True)
class Step:
    name: str                                            # the state a run enters the step by
    # (refs, settings, the state after the step or None for the end) -> the step's states by name
    states: Callable[[Refs, PipelineSettings, str | None], dict[str, dict]]
    statements: Callable[[Refs], list[dict]] = lambda refs: []
    role: JobRole | None = None
    job: Job | None = None                               # the SageMaker resource its task creates
    outputs: dict[str, str] = field(default_factory=dict)   # the run's output fields ("name.$": path)
    # (the step's rendered states) -> lines for `sagestep synth --summary`
    summary: Callable[[dict[str, dict]], list[str]] = lambda states: []
    # (the stack's settings) -> whether the step runs: Tune takes Train's place when sagestep:tuning is set;
    # Register runs only with sagestep:registerModels (off, a step leaves no state, output or statement)
    when: Callable[[PipelineSettings], bool] = lambda settings: True


def then(next_state: str | None) -> dict:
    """A state's transition: on to next_state, or the end of the run."""
    return {"Next": next_state} if next_state else {"End": True}
