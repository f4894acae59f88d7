"""One main-agent run from the command line: build the orchestrator, show progress, collect
the answer and the reports. Every run is checkpointed (`orchestrator.checkpoints`) under its
run id, so a run that was interrupted or killed can be resumed by that id."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from langchain_core.messages import BaseMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.types import Command, Interrupt
from rich.console import Console

from orchestrator.agent import create_orchestrator
from orchestrator.approvals import Answerer
from orchestrator.budgets import run_account
from orchestrator.checkpoints import open_checkpointer, require_run
from orchestrator.delegation.client import DelegationClient
from orchestrator.interrupts import cancelled_on_interrupt
from orchestrator.progress import DelegationTracker, live_progress, progress_line
from shared.budgets import Accounts, Budget, Spent
from shared.celery_app import create_celery_app
from shared.schemas import Report, TokenUsage
from shared.settings import Settings


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    answer: str
    reports: list[Report]
    elapsed_s: float
    waiting: list[Interrupt] = field(default_factory=list)
    """What the run waits for a person to answer (nobody was asked): resume it to answer."""
    usage: TokenUsage = field(default_factory=TokenUsage)
    """The main agent's own model calls; each report carries its delegation's."""
    spent: Spent | None = None
    """What the run's budget has spent, when it has one (`orchestrator.budgets`)."""


def new_run_id() -> str:
    """Each CLI run gets a workspace of its own, named by its LangGraph thread id."""
    return f"run-{uuid.uuid4().hex[:12]}"


def reports_in(messages: list[BaseMessage]) -> list[Report]:
    """Every delegation's report, read from the run's messages rather than from what this
    process waited for: a resumed run got its earlier reports in an earlier process."""
    return [
        Report.model_validate(message.artifact)
        for message in messages
        if isinstance(message, ToolMessage) and message.name == "task" and isinstance(message.artifact, dict)
    ]


def run_prompt(
    settings: Settings,
    prompt: str | None,
    console: Console,
    context: dict[str, Any] | None = None,
    run_id: str | None = None,
    *,
    answer: Answerer | None = None,
    budget: Budget | None = None,
) -> RunOutcome:
    """Runs `prompt` as a new run, or with `prompt=None` resumes the checkpointed `run_id`.
    `answer` answers whatever the run pauses to ask; without it the run is left paused.
    `budget` caps what the run spends on model calls, in this and any earlier part of it."""
    client = DelegationClient(create_celery_app(settings), settings)
    tracker = DelegationTracker(client)
    run_id = run_id or new_run_id()
    config: RunnableConfig = {"configurable": {"thread_id": run_id}}
    started = time.monotonic()
    with open_checkpointer(settings) as checkpointer:
        agent = create_orchestrator(
            settings=settings, client=client, listener=tracker, checkpointer=checkpointer, budget=budget
        )
        if prompt is None:
            require_run(settings, checkpointer, run_id)
        given: Any = None if prompt is None else {"messages": [HumanMessage(content=prompt)]}
        # However the run ends (an answer, an error, Ctrl-C), nothing it sent is left to run.
        with contextlib.closing(client), cancelled_on_interrupt(client):
            while True:
                with live_progress(lambda: progress_line(tracker), console):
                    state = agent.invoke(given, config, context=context, durability="sync")
                questions: list[Interrupt] = state.get("__interrupt__") or []
                if not questions or answer is None:
                    break
                given = Command(resume={question.id: answer(question.value) for question in questions})
            spent = (
                Accounts.of(client.ledger.client, settings).spent(run_account(run_id))
                if budget is not None
                else None
            )
    messages: list[BaseMessage] = state.get("messages", [])
    return RunOutcome(
        run_id=run_id,
        answer=messages[-1].text if messages else "",
        reports=reports_in(messages),
        elapsed_s=time.monotonic() - started,
        waiting=questions,
        usage=TokenUsage.of_messages(messages),
        spent=spent,
    )
