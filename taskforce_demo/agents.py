"""The demo's subagent registry: one analyst with a real tool over the shared files.

Workers import this module (`TASKFORCE_SUBAGENTS=taskforce_demo.agents:SUBAGENTS`), so the tool
reads the logs from the shared files, never from the disk of the machine that started the run.
"""

from __future__ import annotations

from functools import cache
from pathlib import PurePosixPath
from typing import Any

from deepagents.backends.protocol import BackendProtocol
from langchain_core.tools import tool

from shared.files import read_text, shared_files
from shared.settings import Settings
from taskforce_demo.log_analysis import analyse_log

REGISTRY = "taskforce_demo.agents:SUBAGENTS"
ANALYST = "log-analyst"


@cache
def _shared_files() -> BackendProtocol:
    return shared_files(Settings()).backend()


@tool
def analyse_service_log(path: str) -> str:
    """Analyse one service log in the shared files: request and error counts, latency
    percentiles, slowest endpoints, most frequent errors and incident windows.

    Args:
        path: Absolute path of the log in the shared files, e.g. /inputs/logs/auth-api.log.

    Returns:
        A one-line headline, a blank line, then the full analysis in Markdown.
    """
    analysis = analyse_log(PurePosixPath(path).stem, read_text(_shared_files(), path))
    return f"{analysis.headline()}\n\n{analysis.to_markdown()}"


SUBAGENTS: list[dict[str, Any]] = [
    {
        "name": ANALYST,
        "description": "Analyses one service log from the shared files and writes a full report there.",
        "system_prompt": (
            "You analyse one service log. Call analyse_service_log on the path you are given, "
            "write its full output with write_file to the output path you are given, and answer "
            "with the one-line headline and that path only: never paste the full analysis."
        ),
        "tools": [analyse_service_log],
    }
]
