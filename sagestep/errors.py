"""Errors the CLI reports as one line and exit code 2."""
from __future__ import annotations


class UsageError(Exception):
    """A mistake in the command line: one line, exit 2."""
