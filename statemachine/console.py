"""Links into the AWS console, for the stack's outputs and the CLI's reports."""
from __future__ import annotations

from urllib.parse import quote


def console_url(region: str, service: str, fragment: str) -> str:
    if region.startswith("cn-"):
        host = "console.amazonaws.cn"
    elif region.startswith("us-gov-"):
        host = "console.amazonaws-us-gov.com"
    else:
        host = f"{region}.console.aws.amazon.com"
    return f"https://{host}/{service}/home?region={region}#{fragment}"


def log_streams_url(region: str, group: str, stream_prefix: str) -> str:
    """CloudWatch's view of a log group's streams that start with stream_prefix (its fragment escapes
    "%" as "$25")."""
    def escaped(text: str) -> str:
        return quote(text, safe="").replace("%", "$25")
    return console_url(region, "cloudwatch",
                       f"logsV2:log-groups/log-group/{escaped(group)}$3FlogStreamNameFilter$3D{escaped(stream_prefix)}")
