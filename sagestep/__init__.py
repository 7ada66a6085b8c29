"""sagestep: the operator's tool (synth, local engine, AWS runner).

It works inside a sagestep project, the folder that holds its Pulumi.yaml, found from the current folder
upward as `pulumi` finds it (or, for a checkout's own editable install, the checkout). `ROOT` is that folder,
looked up on first use so that `sagestep --help` reads no files.
"""
from __future__ import annotations

import os
import re
from functools import lru_cache
from pathlib import Path

__version__ = "0.1.0"
PROJECT_FILE = "Pulumi.yaml"
DEFAULT_STACK = "dev"               # the stack of a command that names none (its file is optional)
_PROJECT_NAME = re.compile(r"^name:\s*['\"]?sagestep['\"]?\s*$", re.M)


class NotInProject(Exception):
    """No sagestep project here: the message says what to do, in one line."""


@lru_cache(maxsize=1)
def project_root() -> Path:
    """The nearest folder from the current one upward whose Pulumi.yaml is sagestep's; else the checkout
    this package runs from (an editable install); else NotInProject."""
    here = Path(os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / PROJECT_FILE).is_file():
            if _is_sagestep(folder):
                return folder
            raise NotInProject(f"{folder / PROJECT_FILE} is another Pulumi project's; run sagestep in a sagestep "
                               "project's folder")
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / PROJECT_FILE).is_file() and _is_sagestep(checkout):
        return checkout
    raise NotInProject(f"no sagestep {PROJECT_FILE} in {here} or above it: run sagestep inside a sagestep "
                       "project (a clone of its repository)")


def _is_sagestep(folder: Path) -> bool:
    return bool(_PROJECT_NAME.search((folder / PROJECT_FILE).read_text(errors="replace")))


def __getattr__(name: str) -> Path:
    if name == "ROOT":
        return project_root()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
