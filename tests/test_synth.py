"""The local engine's commands reuse a synthesis while nothing it reads has changed, and only then."""
import json
import shutil

import pytest

from sagestep import ROOT, synth


@pytest.fixture
def project(tmp_path, monkeypatch):
    """A project folder with the real program and project file; synthesize() calls counted."""
    for name in ("__main__.py", "Pulumi.yaml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra/extra.py").write_text("# v1\n")
    calls = []
    real = synth.synthesize

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(synth, "synthesize", counted)
    return tmp_path, calls


def test_a_second_run_reuses_the_synthesis_and_a_change_redoes_it(project, stack):
    root, calls = project
    first = synth.synthesize_stack("dev", root=root)
    again = synth.synthesize_stack("dev", root=root)
    assert len(calls) == 1 and again == first and again.definition == stack.definition
    (root / "infra/extra.py").write_text("# v2\n")                      # the stack's code changed
    synth.synthesize_stack("dev", root=root)
    (root / "Pulumi.dev.yaml").write_text("config:\n  sagestep:trainingInstanceCount: 2\n")   # its settings did
    changed = synth.synthesize_stack("dev", root=root)
    assert len(calls) == 3
    assert json.loads(changed.definition)["States"]["Train"]["Parameters"]["ResourceConfig"]["InstanceCount"] == 2


def test_a_damaged_cache_is_redone_not_trusted(project):
    root, calls = project
    synth.synthesize_stack("dev", root=root)
    (root / synth.CACHE_DIR / "dev.json").write_text('{"key": "')
    assert synth.synthesize_stack("dev", root=root).definition and len(calls) == 2


def test_a_price_file_is_part_of_what_it_read(project, tmp_path, monkeypatch):
    root, calls = project
    prices = tmp_path / "prices.json"
    prices.write_text("{}")
    monkeypatch.setenv("SAGESTEP_PRICES", str(prices))
    synth.synthesize_stack("dev", root=root)
    prices.write_text('{"sagemaker": {}}')
    synth.synthesize_stack("dev", root=root)
    assert len(calls) == 2


def summary_lines(synthesis) -> list[str]:
    import io

    from rich.console import Console

    from sagestep.cli import print_summary

    printed = Console(file=io.StringIO(), width=400)
    print_summary(synthesis, printed)
    return printed.file.getvalue().splitlines()


def test_the_summary_says_spot_kms_the_gate_and_the_notifications(stack):
    lines = summary_lines(stack)
    for line in ("spot training: off (on-demand instances)",
                 "KMS: AWS-managed keys (no kmsKeyArn: SSE-S3 on both buckets, SageMaker's default for the jobs)",
                 "the stack's quality gate: none (qualityMetric is empty)", "notifications: none (notifyEmails is empty)"):
        assert line in lines
    key = "arn:aws:kms:us-east-1:123456789012:key/abc"
    configured = synth.synthesize("summary", {
        "sagestep:useSpotTraining": "true", "sagestep:spotMaxWaitSeconds": "36000", "sagestep:kmsKeyArn": key,
        "sagestep:qualityMetric": "validation:auc", "sagestep:qualityThreshold": "0.8",
        "sagestep:notifyEmails": ["a@example.com", "b@example.com"], "sagestep:notifyOn": ["FAILED", "SUCCEEDED"]})
    lines = summary_lines(configured)
    for line in ("spot training: on, waits up to 36000 s (10 h) for capacity and the job (MaxWaitTimeInSeconds), "
                 "resumes from checkpoints",
                 f"KMS: {key} (SSE-KMS on both buckets, the jobs' outputs and volumes, the notification topic)",
                 "the stack's quality gate: validation:auc >= 0.8",
                 "notifications: 2 e-mail addresses when a run ends FAILED, SUCCEEDED (each confirms its SNS "
                 "subscription first)"):
        assert line in lines
