"""What deepagents would do in a subagent and workers cannot yet is refused when the agent is
built, with an error naming the argument: never a silent difference."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pytest
from deepagents.middleware.filesystem import FilesystemPermission
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.tools import tool
from langgraph.store.memory import InMemoryStore
from pydantic import BaseModel

from orchestrator import create_orchestrator
from orchestrator.parity import UnsupportedArgumentError
from shared.files import shared_files
from shared.settings import Settings


@tool
def lookup(query: str) -> str:
    """Look something up."""
    return query


@dataclass
class TypedContext:
    user: str


class ModelContext(BaseModel):
    user: str


def _settings(**changes: Any) -> Settings:
    return Settings(redis_url="redis://stub:6379/0", files_url="memory://parity", _env_file=None, **changes)  # type: ignore[call-arg]


OWN = {"name": "researcher", "description": "d", "system_prompt": "p", "tools": []}
DENY = FilesystemPermission(operations=["write"], paths=["/**"], mode="deny")
ASK = FilesystemPermission(operations=["write"], paths=["/secrets/**"], mode="interrupt")

REFUSED: dict[str, tuple[dict[str, Any], str]] = {
    "fork": ({"subagents": [{**OWN, "mode": "fork"}]}, "mode='fork' is not supported"),
    "spec interrupt_on": ({"subagents": [{**OWN, "interrupt_on": {"write_file": True}}]}, "interrupt_on"),
    "inherited interrupt_on": (
        {"subagents": [OWN], "interrupt_on": {"write_file": True}},
        "interrupt_on=['write_file']: deepagents applies it to subagent 'researcher'",
    ),
    "inherited permissions": (
        {"subagents": [OWN], "permissions": [DENY]},
        "permissions: deepagents applies them to subagent 'researcher'",
    ),
    "interrupting permissions": (
        {"subagents": [{**OWN, "permissions": [ASK]}]},
        "a rule with mode='interrupt' reaches subagent 'researcher'",
    ),
    "inherited tools": (
        {"subagents": [{"name": "r", "description": "d"}], "tools": [lookup]},
        "tools: deepagents gives them to subagent 'r'",
    ),
    "general-purpose tools": ({"subagents": [OWN], "tools": [lookup], "gp": True}, "general-purpose"),
    "general-purpose skills": ({"subagents": [OWN], "skills": ["/skills/"], "gp": True}, "skills:"),
    "general-purpose model": (
        {"subagents": [OWN], "model": "openai:gpt-4.1", "gp": True},
        "model='openai:gpt-4.1'",
    ),
    "general-purpose on offline": (
        {"subagents": [OWN], "model": GenericFakeChatModel(messages=iter([])), "gp": True},
        "workers on TASKFORCE_MODEL, which is 'offline'",
    ),
    "backend": ({"subagents": [OWN], "backend": object()}, "backend: deepagents gives it to subagents"),
    "store": ({"subagents": [OWN], "store": InMemoryStore()}, "store: deepagents passes it"),
    "dataclass context": (
        {"subagents": [OWN], "context_schema": TypedContext},
        "context_schema=TypedContext",
    ),
    "pydantic context": ({"subagents": [OWN], "context_schema": ModelContext}, "context_schema=ModelContext"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_what_workers_cannot_do_is_refused_naming_the_argument(case: str) -> None:
    arguments, message = REFUSED[case]
    arguments = dict(arguments)
    settings = _settings(general_purpose=arguments.pop("gp", False))

    with pytest.raises(UnsupportedArgumentError, match=re.escape(message)):
        create_orchestrator(arguments.pop("model", "offline"), settings=settings, **arguments)


def test_what_workers_do_as_deepagents_does_is_accepted() -> None:
    settings = _settings(general_purpose=True)
    spec = {**OWN, "tools": [lookup], "permissions": [DENY]}

    create_orchestrator(
        "offline",
        [lookup],
        settings=settings,
        subagents=[
            spec,
            {"name": "general-purpose", "description": "gp", "tools": [lookup], "permissions": [DENY]},
        ],
        permissions=[DENY],
        interrupt_on={"task": True},
        backend=shared_files(settings).backend(),
    )
