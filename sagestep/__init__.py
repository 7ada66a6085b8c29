"""sagestep: the operator's tool (synth, local engine, AWS runner)."""
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
__version__ = "0.1.0"
