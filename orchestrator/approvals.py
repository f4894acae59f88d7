"""Answering the questions a paused run asks: deepagents' human-in-the-loop requests (approve,
edit, reject or respond to each action), put to a person on the terminal.

A run pauses when a subagent's `interrupt_on` (or a permission rule with `mode="interrupt"`)
stops it before a tool call; its questions come back as LangGraph interrupts, and the answers
resume it with `Command(resume={interrupt id: answer})`, as for deepagents' own agents.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from langgraph.types import Interrupt
from rich.console import Console
from rich.prompt import Prompt

Answerer = Callable[[Any], Any]
"""Takes an interrupt's value, returns its answer."""


def describe(questions: list[Interrupt]) -> str:
    """One line naming what a paused run waits for."""
    actions = [
        str(request.get("name"))
        for question in questions
        if isinstance(question.value, dict)
        for request in question.value.get("action_requests", [])
    ]
    return "approval of " + ", ".join(actions) if actions else f"answers to {len(questions)} question(s)"


def ask_on_terminal(console: Console) -> Answerer:
    def ask(question: Any) -> Any:
        if not isinstance(question, dict) or "action_requests" not in question:
            console.print(f"[bold]The run asks:[/] {json.dumps(question)}")
            return json.loads(Prompt.ask("answer (JSON)", console=console))
        allowed = {c["action_name"]: c["allowed_decisions"] for c in question.get("review_configs", [])}
        return {"decisions": [_decide(console, request, allowed) for request in question["action_requests"]]}

    return ask


def _decide(console: Console, request: dict[str, Any], allowed: dict[str, list[str]]) -> dict[str, Any]:
    name = request["name"]
    console.print(f"[bold yellow]Approval needed:[/] {name}({json.dumps(request.get('args', {}))})")
    choices = allowed.get(name, ["approve", "reject"])
    decision = Prompt.ask("decision", choices=choices, console=console)
    if decision == "approve":
        return {"type": "approve"}
    if decision == "edit":
        arguments = json.loads(Prompt.ask("arguments (JSON)", console=console))
        return {"type": "edit", "edited_action": {"name": name, "args": arguments}}
    if decision == "respond":
        return {"type": "respond", "message": Prompt.ask("response to the agent", console=console)}
    reason = Prompt.ask("reason (optional)", default="", console=console)
    return {"type": "reject", **({"message": reason} if reason else {})}
