"""Turn a finished subagent run into a `Report` the parent can afford to read."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from deepagents.backends.protocol import BackendProtocol
from langchain_core.messages import AIMessage

from shared.schemas import Delegation

REPORTS_DIR = "/reports"


def final_text(result: Mapping[str, Any]) -> str:
    """What deepagents would hand the parent: the structured response as JSON, else the last
    non-empty AI text."""
    structured = result.get("structured_response")
    if structured is not None:
        if hasattr(structured, "model_dump_json"):
            return str(structured.model_dump_json())
        if dataclasses.is_dataclass(structured) and not isinstance(structured, type):
            return json.dumps(dataclasses.asdict(structured))
        return json.dumps(structured)
    for message in reversed(result.get("messages", [])):
        if isinstance(message, AIMessage) and message.text.strip():
            return message.text.rstrip()
    return ""


def report_path(delegation: Delegation) -> str:
    # A digest rather than the id itself: ids run to 200 characters, and the path has to fit
    # in the capped summary that points to it.
    digest = hashlib.sha256(delegation.id.encode()).hexdigest()[:20]
    return f"{REPORTS_DIR}/{delegation.subagent_type}/{digest}.md"


def cap_summary(text: str, delegation: Delegation, backend: BackendProtocol) -> tuple[str, str | None]:
    """Keep reports within the caller's budget; past it, the full text goes to the shared files
    and the parent gets a preview and the path to read the rest."""
    limit = delegation.limits.report_max_chars
    if len(text) <= limit:
        return text, None
    path = report_path(delegation)
    result = backend.write(path, text)
    if result.error:
        raise OSError(f"could not store the full report at {path}: {result.error}")
    footer = f"\n[cut at {limit} of {len(text)} chars; full text: {path}]"
    return text[: max(limit - len(footer), 0)] + footer, path
