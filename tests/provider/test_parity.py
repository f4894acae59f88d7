"""Parity on a real provider client: the same `openai:` main model and subagent specs, through
deepagents in this process and through taskforce on the workers, give the same conversation.

deepagents talks to the fake provider over OpenAI's Responses API (its provider profile), the
workers over chat completions (taskforce's choice once `OPENAI_BASE_URL` is set); the fake
provider answers both as one model, so any difference is in what reached the model."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from deepagents import create_deep_agent
from deepagents.middleware.subagents import SubAgent
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage

from orchestrator import create_orchestrator
from tests.parity.harness import answer_part
from tests.provider.agents import MAIN_MODEL, SUBAGENTS
from tests.provider.conftest import ProviderCluster
from tests.support.fake_provider import RemoteProvider

pytestmark = pytest.mark.integration

PROMPT = "Delegate every item below to the writer subagent.\n- a note on tides\n- a note on comets\n"


def _conversation(state: dict[str, Any]) -> list[tuple[str, str]]:
    """Each message's kind and text; a `task` result by its answer (taskforce's notes apart)."""
    shown = []
    for message in state["messages"]:
        if isinstance(message, ToolMessage) and message.name == "task":
            shown.append(("task", answer_part(message)))
        elif isinstance(message, ToolMessage | AIMessage | HumanMessage):
            calls = [call["args"] for call in getattr(message, "tool_calls", [])]
            shown.append((message.type, f"{message.text} {calls}"))
    return shown


def test_deepagents_and_taskforce_say_the_same_on_the_openai_client(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    writer = cast(SubAgent, next(spec for spec in SUBAGENTS if spec["name"] == "writer"))
    given: Any = {"messages": [HumanMessage(content=PROMPT)]}
    config: Any = {"configurable": {"thread_id": f"parity-{uuid.uuid4().hex[:8]}"}}

    in_process = create_deep_agent(MAIN_MODEL, subagents=[writer]).invoke(given, config)
    in_process_calls = provider.stats().calls
    on_workers = create_orchestrator(subagents=[writer], settings=provider_cluster.settings).invoke(
        given, config
    )

    assert _conversation(on_workers) == _conversation(in_process)
    assert provider.stats().paths == {"/responses": in_process_calls, "/chat/completions": in_process_calls}
    assert [answer for kind, answer in _conversation(on_workers) if kind == "task"] == [
        "[offline model]\n- fact about a note on tides",
        "[offline model]\n- fact about a note on comets",
    ]
