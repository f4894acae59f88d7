"""One main-agent run from the command line: build the orchestrator, show progress, collect
the answer and the reports."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage
from rich.console import Console

from orchestrator.agent import create_orchestrator
from orchestrator.client import DelegationClient
from orchestrator.progress import DelegationTracker, live_progress
from shared.celery_app import create_celery_app
from shared.schemas import Report
from shared.settings import Settings


@dataclass(frozen=True)
class RunOutcome:
    answer: str
    reports: list[Report]
    elapsed_s: float


def run_prompt(
    settings: Settings, prompt: str, console: Console, context: dict[str, Any] | None = None
) -> RunOutcome:
    app = create_celery_app(settings)
    tracker = DelegationTracker(DelegationClient(app, settings))
    agent = create_orchestrator(settings=settings, celery_app=app, listener=tracker)
    started = time.monotonic()
    with live_progress(tracker, console):
        state = agent.invoke({"messages": [HumanMessage(content=prompt)]}, context=context)
    answer = state["messages"][-1].text if state.get("messages") else ""
    return RunOutcome(answer=answer, reports=tracker.reports, elapsed_s=time.monotonic() - started)
