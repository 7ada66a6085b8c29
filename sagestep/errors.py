"""Errors the CLI reports as one line and exit code 2."""
from __future__ import annotations


class UsageError(Exception):
    """A mistake in the command line: one line, exit 2."""


def aws_failure(doing: str, service: str, error: Exception) -> UsageError:
    """An AWS call that failed, as one line: AWS's refusal (`doing: Code: Message`) or, when the service could not be
    reached, `cannot reach <service>: …` (botocore is imported here, not by the CLI's parser)."""
    from botocore.exceptions import ClientError
    if isinstance(error, ClientError):
        return UsageError(f"{doing}: {error.response['Error']['Code']}: {error.response['Error']['Message']}")
    return UsageError(f"cannot reach {service}: {error}")
