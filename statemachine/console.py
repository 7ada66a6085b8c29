"""Partitions and links into the AWS console, for the stack's outputs and the CLI's reports."""
from __future__ import annotations

from urllib.parse import quote

CONSOLE_HOSTS = {"aws-cn": "console.amazonaws.cn", "aws-us-gov": "console.amazonaws-us-gov.com"}


def partition_of(region: str) -> str:
    """The AWS partition a region belongs to."""
    if region.startswith("cn-"):
        return "aws-cn"
    return "aws-us-gov" if region.startswith("us-gov-") else "aws"


def console_url(region: str, service: str, fragment: str) -> str:
    host = CONSOLE_HOSTS.get(partition_of(region), f"{region}.console.aws.amazon.com")
    return f"https://{host}/{service}/home?region={region}#{fragment}"


def log_streams_url(region: str, group: str, stream_prefix: str) -> str:
    """CloudWatch's view of a log group's streams that start with stream_prefix (its fragment escapes
    "%" as "$25")."""
    def escaped(text: str) -> str:
        return quote(text, safe="").replace("%", "$25")
    return console_url(region, "cloudwatch",
                       f"logsV2:log-groups/log-group/{escaped(group)}$3FlogStreamNameFilter$3D{escaped(stream_prefix)}")
