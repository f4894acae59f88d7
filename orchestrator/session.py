"""One main-agent run from the command line: build the orchestrator, show progress, collect
the answer and the reports."""

from __future__ import annotations

import contextlib
import time
import uuid
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage
from rich.console import Console

from orchestrator.agent import create_orchestrator
from orchestrator.client import DelegationClient
from orchestrator.progress import DelegationTracker, live_progress, progress_line
from shared.celery_app import create_celery_app
from shared.schemas import Report
from shared.settings import Settings


@dataclass(frozen=True)
class RunOutcome:
    run_id: str
    answer: str
    reports: list[Report]
    elapsed_s: float


def new_run_id() -> str:
    """Each CLI run gets a workspace of its own, named by its LangGraph thread id."""
    return f"run-{uuid.uuid4().hex[:12]}"


def run_prompt(
    settings: Settings,
    prompt: str,
    console: Console,
    context: dict[str, Any] | None = None,
    run_id: str | None = None,
) -> RunOutcome:
    client = DelegationClient(create_celery_app(settings), settings)
    tracker = DelegationTracker(client)
    agent = create_orchestrator(settings=settings, client=client, listener=tracker)
    run_id = run_id or new_run_id()
    started = time.monotonic()
    # However the run ends (an answer, an error, Ctrl-C), nothing it sent is left to run.
    with (
        contextlib.closing(client),
        client.cancelled_on_interrupt(),
        live_progress(lambda: progress_line(tracker), console),
    ):
        state = agent.invoke(
            {"messages": [HumanMessage(content=prompt)]},
            {"configurable": {"thread_id": run_id}},
            context=context,
        )
    answer = state["messages"][-1].text if state.get("messages") else ""
    return RunOutcome(
        run_id=run_id, answer=answer, reports=tracker.reports, elapsed_s=time.monotonic() - started
    )
