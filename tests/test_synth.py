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
