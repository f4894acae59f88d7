"""Subagents on string models, as a user's registry names them: workers build each with
`init_chat_model`, and with `OPENAI_BASE_URL` the stock langchain-openai client talks to the fake
provider (`TASKFORCE_SUBAGENTS=tests.provider.agents:SUBAGENTS`).

The fake provider answers as the `offline` model would: a subagent calls the tools its system
prompt names, then answers with the first line of what they returned."""

from __future__ import annotations

from typing import Any

from langchain_core.tools import tool

WRITER_MODEL = "openai:fake-writer"
MAIN_MODEL = "openai:fake-main"


@tool
def lookup_fact(topic: str) -> str:
    """Look up one fact about a topic.

    Args:
        topic: What to look up.
    """
    return f"fact about {topic}"


SUBAGENTS: list[dict[str, Any]] = [
    {
        "name": "writer",
        "description": "Writes a one-line note on a topic.",
        "system_prompt": "You write one short note. Call lookup_fact on the topic first.",
        "tools": [lookup_fact],
        "model": WRITER_MODEL,
    },
    {
        # The same subagent over the Responses API, streamed, as deepagents talks to OpenAI.
        "name": "responder",
        "description": "Writes a one-line note on a topic, over the Responses API.",
        "system_prompt": "You write one short note. Call lookup_fact on the topic first.",
        "tools": [lookup_fact],
        "model": WRITER_MODEL,
        "model_options": {"use_responses_api": True, "streaming": True},
    },
    {
        "name": "streamer",
        "description": "Writes a one-line note on a topic, streaming chat completions.",
        "system_prompt": "You write one short note. Call lookup_fact on the topic first.",
        "tools": [lookup_fact],
        "model": WRITER_MODEL,
        "model_options": {"streaming": True, "stream_usage": True},
    },
    {
        "name": "reviewer",
        "description": "Reviews a topic and writes its verdict to a file, once a person approves.",
        "system_prompt": "You review one topic and write your verdict down. Call lookup_fact first.",
        "tools": [lookup_fact],
        "interrupt_on": {"write_file": True},
    },
]
