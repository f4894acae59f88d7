"""Registries for test_registry.py, imported by path as a worker would."""

from __future__ import annotations

from typing import Any

SUBAGENTS: list[dict[str, Any]] = [
    {"name": "researcher", "description": "Finds things out.", "system_prompt": "Research."},
    {"name": "writer", "description": "Writes things down.", "tools": []},
]
AS_TUPLE = tuple(SUBAGENTS)
AS_DICT = {"researcher": SUBAGENTS[0]}
AS_STRING = "researcher"
NOT_A_LIST = 42
ENTRY_NOT_A_DICT = [SUBAGENTS[0], "writer"]
NO_NAME = [{"description": "Nameless."}]
BLANK_NAME = [{"name": "  ", "description": "Blank."}]
NO_DESCRIPTION = [{"name": "researcher"}]
DUPLICATE = [SUBAGENTS[0], {"name": "researcher", "description": "Again."}]
UNKNOWN_KEYS = [{"name": "researcher", "description": "d", "colour": "red", "budget": 3}]
MEMORY_NOT_A_LIST = [{"name": "librarian", "description": "d", "memory": "/memories/AGENTS.md"}]
MEMORY_RELATIVE = [{"name": "librarian", "description": "d", "memory": ["memories/AGENTS.md"]}]
WITH_MEMORY = [{"name": "librarian", "description": "d", "memory": ["/memories/AGENTS.md"]}]
MODEL_OPTIONS_NOT_A_DICT = [{"name": "writer", "description": "d", "model_options": ["timeout", 5]}]
MODEL_OPTIONS_ON_AN_OBJECT = [
    {"name": "writer", "description": "d", "model": object(), "model_options": {"a": 1}}
]
COMPILED = [{"name": "compiled", "description": "d", "runnable": object()}]
ASYNC = [{"name": "remote", "description": "d", "graph_id": "remote-graph"}]
