"""Delegations from a main agent in this process to real worker processes over real Redis."""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Any, cast

import pytest
from celery.signals import before_task_publish
from langchain_core.messages import AIMessage, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from pydantic import SecretStr

from orchestrator import create_orchestrator
from shared.files import read_text, shared_files
from tests.integration.agents import SUBAGENTS
from tests.integration.conftest import Cluster, scripted, task_call, tool_messages

pytestmark = pytest.mark.integration


def _run(cluster: Cluster, *turns: Any, context: Any = None, **config: Any) -> dict[str, ToolMessage]:
    agent = create_orchestrator(scripted(*turns), settings=cluster.settings)
    given: Any = {"messages": [HumanMessage(content="start")]}  # the agent's input type, as a dict
    state = agent.invoke(given, cast(RunnableConfig, config) or None, context=context)
    return tool_messages(state)


def test_each_task_call_runs_on_a_worker_and_comes_back_as_its_tool_message(cluster: Cluster) -> None:
    calls = [task_call(f"call-{n}", "inspector", f"inspect item {n}") for n in range(3)]
    messages = _run(cluster, calls, "done")

    assert set(messages) == {"call-0", "call-1", "call-2"}
    for n in range(3):
        seen = json.loads(messages[f"call-{n}"].content)  # type: ignore[arg-type]
        assert seen["pid"] != os.getpid()
        assert seen["pid"] in cluster.worker_pids
        assert seen["messages"][-1] == ["human", f"inspect item {n}"]
        assert messages[f"call-{n}"].artifact["status"] == "ok"
        assert messages[f"call-{n}"].artifact["worker"].startswith("w0.")


def test_subagent_starts_from_a_fresh_context(cluster: Cluster) -> None:
    agent = create_orchestrator(
        scripted([task_call("fresh", "inspector", "only this")], "done"), settings=cluster.settings
    )
    history = [
        HumanMessage(content="parent secret plan"),
        AIMessage(content="parent reasoning"),
        HumanMessage(content="now delegate"),
    ]
    state = agent.invoke({"messages": history})

    seen = json.loads(tool_messages(state)["fresh"].content)  # type: ignore[arg-type]
    kinds = [kind for kind, _ in seen["messages"]]
    assert kinds == ["system", "human"]
    assert seen["messages"][1] == ["human", "only this"]
    assert "parent" not in json.dumps(seen)


def test_a_whole_turn_of_delegations_runs_at_once_under_plain_invoke(cluster: Cluster) -> None:
    calls = [task_call(f"sleep-{n}", "sleeper", f"nap {n}") for n in range(32)]
    agent = create_orchestrator(scripted(calls, "done"), settings=cluster.settings)
    started = time.monotonic()
    state = agent.invoke({"messages": [HumanMessage(content="go")]})
    elapsed = time.monotonic() - started

    messages = tool_messages(state)
    assert len(messages) == 32
    assert all(m.artifact["status"] == "ok" for m in messages.values())
    # In-process deepagents runs 6 at a time here: 32 one-second subagents take 6 s or more.
    assert elapsed < 6.0, f"32 parallel one-second delegations took {elapsed:.1f} s"


def test_a_failing_and_a_hanging_subagent_do_not_touch_their_siblings(cluster: Cluster) -> None:
    settings = cluster.settings.model_copy(update={"delegation_timeout": 3.0})
    calls = [
        task_call("ok-1", "sleeper", "fine"),
        task_call("boom", "crasher", "explode please"),
        task_call("hang", "slowpoke", "take forever"),
        task_call("ok-2", "inspector", "also fine"),
    ]
    agent = create_orchestrator(scripted(calls, "done"), settings=settings)
    state = agent.invoke({"messages": [HumanMessage(content="go")]}, context={"api_key": "sk-boom"})
    messages = tool_messages(state)

    assert messages["ok-1"].artifact["status"] == "ok"
    assert messages["ok-2"].artifact["status"] == "ok"
    assert messages["boom"].artifact["status"] == "error"
    assert messages["boom"].status == "error"
    assert "RuntimeError" in messages["boom"].content
    assert messages["hang"].artifact["status"] == "timeout"
    assert state["messages"][-1].content == "done"


def test_unknown_subagent_type_lists_the_valid_ones(cluster: Cluster) -> None:
    messages = _run(cluster, [task_call("nope", "astrologer", "read the stars")], "done")

    text = str(messages["nope"].content)
    assert "astrologer" in text
    for name in ("`inspector`", "`researcher`", "`counted`"):
        assert name in text


def test_namespaced_context_reaches_only_its_subagent_and_secrets_never_show(cluster: Cluster) -> None:
    published: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **_: Any) -> None:
        published.append(dict(headers or {}))

    before_task_publish.connect(capture, weak=False)
    try:
        messages = _run(
            cluster,
            [
                task_call("r", "researcher", "look around"),
                task_call("w", "writer", "write it up"),
                task_call("x", "crasher", "fail loudly"),
            ],
            "done",
            context={
                "tenant": "acme",
                "researcher:depth": 3,
                "api_key": "sk-plain-SECRET-111",
                "vault": SecretStr("vault-SECRET-222"),
            },
        )
    finally:
        before_task_publish.disconnect(capture)

    researcher = json.loads(messages["r"].content)  # type: ignore[arg-type]
    writer = json.loads(messages["w"].content)  # type: ignore[arg-type]
    assert researcher["context"]["depth"] == 3
    assert "depth" not in writer["context"]
    assert researcher["context"]["tenant"] == writer["context"]["tenant"] == "acme"
    assert researcher["kinds"] == {"tenant": "str", "depth": "int", "api_key": "str", "vault": "SecretStr"}
    # The tool echoed both secrets on purpose; the worker scrubbed them from the report.
    assert researcher["context"]["api_key"] == researcher["context"]["vault"] == "**********"

    secrets = ("sk-plain-SECRET-111", "vault-SECRET-222")
    shown = [str(m.content) + json.dumps(m.artifact) for m in messages.values()]
    shown += [f"{h.get('argsrepr')} {h.get('kwargsrepr')}" for h in published]
    shown.append(cluster.worker_log_text())
    assert len(published) == 3
    assert "sk-plain-SECRET" not in messages["x"].content
    for text in shown:
        for secret in secrets:
            assert secret not in text


def test_non_json_context_fails_before_any_delegation_naming_the_key(cluster: Cluster) -> None:
    agent = create_orchestrator(
        scripted([task_call("c", "inspector", "x")], "done"), settings=cluster.settings
    )
    with pytest.raises(ValueError, match="'db'"):
        agent.invoke({"messages": [HumanMessage(content="go")]}, context={"db": object()})


def test_the_callers_recursion_limit_reaches_the_subagent(cluster: Cluster) -> None:
    messages = _run(cluster, [task_call("lim", "limits", "how deep?")], "done", recursion_limit=77)

    assert json.loads(messages["lim"].content) == {"recursion_limit": 77}  # type: ignore[arg-type]


def test_a_long_report_is_cut_and_the_full_text_is_readable_from_the_main_process(cluster: Cluster) -> None:
    settings = cluster.settings.model_copy(update={"report_max_chars": 500})
    agent = create_orchestrator(
        scripted([task_call("long", "verbose", "tell me everything")], "done"), settings=settings
    )
    state = agent.invoke(
        {"messages": [HumanMessage(content="go")]}, {"configurable": {"thread_id": "long-1"}}
    )
    message = tool_messages(state)["long"]

    path = message.artifact["full_report_path"]
    assert path
    assert path in str(message.content)
    assert len(message.artifact["summary"]) <= 500
    files = shared_files(settings)
    assert read_text(files.for_run("long-1"), path).count("of a long report") == 400
    assert files.for_run("another-run").read(path).error == f"File '{path}' not found"


def test_general_purpose_runs_on_a_worker(cluster: Cluster) -> None:
    """On the main agent's model, as in deepagents: here `offline` on both sides."""
    settings = cluster.settings.model_copy(update={"general_purpose": True})
    agent = create_orchestrator("offline", settings=settings)
    state = agent.invoke(
        {"messages": [HumanMessage(content="Ask the general-purpose subagent:\n- say hello")]}
    )
    (message,) = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    messages = {"gp": message}

    assert messages["gp"].artifact["status"] == "ok"
    assert messages["gp"].artifact["worker"].startswith("w0.")
    assert "[offline model]" in str(messages["gp"].content)


def test_ainvoke_delegates_in_parallel_too(cluster: Cluster) -> None:
    calls = [task_call(f"a-{n}", "sleeper", f"async nap {n}") for n in range(8)]
    agent = create_orchestrator(scripted(calls, "done"), settings=cluster.settings)

    started = time.monotonic()
    state = asyncio.run(agent.ainvoke({"messages": [HumanMessage(content="go")]}))
    elapsed = time.monotonic() - started

    messages = tool_messages(state)
    assert sorted(messages) == sorted(f"a-{n}" for n in range(8))
    assert all(m.artifact["status"] == "ok" for m in messages.values())
    assert elapsed < 6.0


def test_a_worker_whose_spec_differs_refuses_naming_what_differs(cluster: Cluster) -> None:
    """The orchestrator offered its model another prompt for `inspector` than the workers'
    registry holds: refused, never run as the workers' own version."""
    inspector = next(spec for spec in SUBAGENTS if spec["name"] == "inspector")
    edited = {**inspector, "system_prompt": "You are a different inspector."}
    agent = create_orchestrator(
        scripted([task_call("i", "inspector", "look")], "done"),
        settings=cluster.settings,
        subagents=[edited],  # type: ignore[list-item]
    )

    reports = {call: m.artifact for call, m in tool_messages(agent.invoke({"messages": []})).items()}

    assert reports["i"]["status"] == "error"
    assert (
        "spec of subagent 'inspector' differs from the orchestrator's in system_prompt"
        in reports["i"]["summary"]
    )
