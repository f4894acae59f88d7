"""A main agent in a process of its own, durable on a SQLite checkpointer, for the test that
kills it mid-run and resumes its thread in a new process.

    python -m tests.faults.orchestrator_run CHECKPOINTS THREAD (start|resume)

Settings come from TASKFORCE_* variables. Prints the reports as JSON, by tool call id.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite import SqliteSaver

from orchestrator import create_orchestrator
from shared.settings import Settings
from tests.integration.conftest import scripted, task_call

TASKS = {"short-0": "sleep=1 short 0", "short-1": "sleep=1 short 1", "long": "sleep=6 long"}


def main(checkpoints: str, thread_id: str, mode: str) -> None:
    calls = [task_call(call_id, "counted", task) for call_id, task in TASKS.items()]
    # The resumed process's model is asked only for what the first one never got to.
    model = scripted(calls, "done") if mode == "start" else scripted("done")
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    with SqliteSaver.from_conn_string(checkpoints) as saver:
        agent = create_orchestrator(model, settings=Settings(), checkpointer=saver)
        given: dict[str, Any] | None = {"messages": [HumanMessage(content="go")]} if mode == "start" else None
        state = agent.invoke(given, config)  # type: ignore[arg-type]
    reports = {m.tool_call_id: m.artifact for m in state["messages"] if isinstance(m, ToolMessage)}
    print(json.dumps(reports))


if __name__ == "__main__":
    main(*sys.argv[1:4])
