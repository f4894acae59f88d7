"""Human approval and inheritance across the wire: subagents on real workers pause for approval
as deepagents' in-process ones do, resume from the paused state kept in Redis, and take what
their spec leaves out from the main agent."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis
from deepagents.middleware.filesystem import FilesystemPermission
from langchain_core.messages import HumanMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command
from rich.console import Console

from orchestrator import create_orchestrator
from orchestrator.batch.run import run_batch
from orchestrator.embedded import worker_environment
from orchestrator.session import run_prompt
from shared.files import shared_files
from tests.integration.agents import DELEGATING, EMAILS_KEY, PREFERENCES, send_email
from tests.integration.conftest import Cluster, scripted, task_call, tool_messages

pytestmark = pytest.mark.integration

APPROVE = {"decisions": [{"type": "approve"}]}


@pytest.fixture
def emails(cluster: Cluster) -> redis.Redis:
    client = redis.Redis.from_url(str(cluster.settings.redis_url))
    client.delete(EMAILS_KEY)
    return client


def _sent(emails: redis.Redis) -> int:
    return int(emails.get(EMAILS_KEY) or 0)


def _paused_keys(cluster: Cluster) -> list[bytes]:
    client = redis.Redis.from_url(str(cluster.settings.redis_url))
    return list(client.scan_iter(f"{cluster.settings.queue_prefix}:paused:*"))


def _start(cluster: Cluster, thread: str, subagent: str, **options: Any) -> tuple[Any, RunnableConfig, Any]:
    agent = create_orchestrator(
        scripted([task_call("mail", subagent, "mail bob")], "done"),
        settings=cluster.settings,
        checkpointer=InMemorySaver(),
        **options,
    )
    config: RunnableConfig = {"configurable": {"thread_id": thread}}
    given: Any = {"messages": [HumanMessage(content="go")]}  # the agent's input type, as a dict
    return agent, config, agent.invoke(given, config)


def test_a_subagent_pauses_for_approval_and_runs_the_tool_only_once_approved(
    cluster: Cluster, emails: redis.Redis
) -> None:
    agent, config, paused = _start(cluster, "approve-1", "mailer")

    [question] = paused["__interrupt__"]
    assert question.value == {
        "action_requests": [
            {
                "name": "send_email",
                "args": {},
                "description": "Tool execution requires approval\n\nTool: send_email\nArgs: {}",
            }
        ],
        "review_configs": [
            {"action_name": "send_email", "allowed_decisions": ["approve", "edit", "reject", "respond"]}
        ],
    }
    assert _sent(emails) == 0
    assert _paused_keys(cluster), "the paused subagent waits in Redis"

    finished = agent.invoke(Command(resume={question.id: APPROVE}), config)

    report = tool_messages(finished)["mail"]
    assert report.content == "sent email 1 to bob"
    assert report.artifact["status"] == "ok"
    assert report.artifact["delegation_id"].endswith(":r0")
    assert _sent(emails) == 1
    assert _paused_keys(cluster) == []


def test_a_rejected_action_never_runs_and_the_subagent_hears_why(
    cluster: Cluster, emails: redis.Redis
) -> None:
    agent, config, paused = _start(cluster, "reject-1", "mailer")
    [question] = paused["__interrupt__"]

    rejection = {"decisions": [{"type": "reject", "message": "not to bob"}]}
    finished = agent.invoke(Command(resume={question.id: rejection}), config)

    assert "not to bob" in str(tool_messages(finished)["mail"].content)
    assert _sent(emails) == 0


def test_a_spec_without_its_own_takes_the_main_agents_tools_and_approvals(
    cluster: Cluster, emails: redis.Redis
) -> None:
    agent, config, paused = _start(
        cluster, "inherit-1", "bare-mailer", tools=[send_email], interrupt_on={"send_email": True}
    )
    [question] = paused["__interrupt__"]
    assert question.value["action_requests"][0]["name"] == "send_email"
    assert _sent(emails) == 0

    finished = agent.invoke(Command(resume={question.id: APPROVE}), config)

    assert tool_messages(finished)["mail"].content == "sent email 1 to bob"


def test_a_spec_without_permissions_is_held_to_the_main_agents(cluster: Cluster) -> None:
    files = shared_files(cluster.settings)
    deny = FilesystemPermission(operations=["write"], paths=["/memories/**"], mode="deny")

    for permissions, thread in (([deny], "denied-1"), (None, "allowed-1")):
        files.memories.delete(PREFERENCES.removeprefix("/memories"))
        agent = create_orchestrator(
            scripted([task_call("note", "scribe", f"prefers tea ({thread})")], "done"),
            settings=cluster.settings,
            permissions=permissions,
        )
        agent.invoke({"messages": [HumanMessage(content="go")]}, {"configurable": {"thread_id": thread}})
        stored = files.memories.read(PREFERENCES.removeprefix("/memories"))
        assert (stored.error is None) == (permissions is None), thread


def test_general_purpose_runs_on_the_main_agents_model_object(cluster: Cluster) -> None:
    settings = cluster.settings.model_copy(update={"general_purpose": True})
    agent = create_orchestrator(DELEGATING, settings=settings)

    state = agent.invoke({"messages": [HumanMessage(content="delegate: say hello")]})

    seen = json.loads(str(tool_messages(state)["gp-1"].content))
    assert seen["pid"] in cluster.worker_pids
    assert seen["pid"] != os.getpid()
    assert seen["messages"][-1] == ["human", "say hello"]


def test_taskforce_run_with_nobody_at_the_terminal_leaves_the_run_waiting_and_says_how_to_answer(
    cluster: Cluster, emails: redis.Redis, tmp_path: Path
) -> None:
    settings = cluster.settings.model_copy(update={"data_dir": tmp_path})
    command = [sys.executable, "-m", "orchestrator", "run", "--workers", "0"]
    waiting = subprocess.run(
        [*command, "Ask the mailer subagent:\n- mail bob"],
        env=worker_environment(settings),
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert waiting.returncode == 3, waiting.stdout + waiting.stderr
    assert "waits for approval of send_email; answer on a terminal with: taskforce run --resume run-" in (
        waiting.stdout
    )
    assert "Traceback" not in waiting.stderr
    assert _sent(emails) == 0


def test_a_batch_item_parks_until_someone_answers_then_the_rerun_takes_the_answer(
    cluster: Cluster, emails: redis.Redis, tmp_path: Path
) -> None:
    settings = cluster.settings.model_copy(update={"data_dir": tmp_path})
    batch, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [
        {"id": "mail", "prompt": "Ask the mailer subagent:\n- mail bob"},
        {"id": "look", "prompt": "hello"},
    ]
    batch.write_text("".join(json.dumps(line) + "\n" for line in lines))

    first = run_batch(settings, batch, out)

    [parked] = first.waiting
    assert parked.status == "needs_approval"
    assert f"taskforce run --resume {parked.thread_id}" in str(parked.error)
    assert [result.status for result in first.results if result.id == "look"] == ["ok"]
    assert _sent(emails) == 0

    asked: list[Any] = []

    def answer(question: Any) -> Any:
        asked.append(question)
        return APPROVE

    answered = run_prompt(
        settings,
        None,
        Console(quiet=True),
        run_id=parked.thread_id,
        answer=answer,
    )
    assert [request["name"] for request in asked[0]["action_requests"]] == ["send_email"]
    assert answered.waiting == []

    second = run_batch(settings, batch, out)

    [done] = second.results
    assert (done.id, done.status, done.thread_id) == ("mail", "ok", parked.thread_id)
    assert "sent email 1 to bob" in done.delegations[0].summary
    assert _sent(emails) == 1
