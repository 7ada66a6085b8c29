"""sagestep: read the stack settings, build the pipeline, export its outputs."""
import pulumi

from infra import settings
from infra.pipeline import Pipeline, PipelineArgs

pipeline = Pipeline("sagestep", PipelineArgs(settings=settings.load()))
for name, value in pipeline.outputs.items():
    pulumi.export(name, value)
