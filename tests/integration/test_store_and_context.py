"""The main agent's store and its typed runtime context, as subagent tools on real worker
processes see them: `runtime.store` is the deployment's shared store (what a worker writes,
the main process reads), `runtime.context` an instance of the main agent's context class."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from celery.signals import before_task_publish
from langchain_core.messages import HumanMessage
from pydantic import SecretStr

from orchestrator import create_orchestrator
from orchestrator.parity import UnsupportedArgumentError
from shared.context import REDACTED
from shared.stores import SharedStore
from tests.integration.agents import Tenancy, TenantProfile
from tests.integration.conftest import Cluster, scripted, task_call, tool_messages

pytestmark = pytest.mark.integration


def _seen(cluster: Cluster, calls: list[Any], **arguments: Any) -> dict[str, dict[str, Any]]:
    """What each delegation's tool reported, by tool call id."""
    context = arguments.pop("context", None)
    agent = create_orchestrator(scripted(calls, "done"), settings=cluster.settings, **arguments)
    state = agent.invoke({"messages": [HumanMessage(content="go")]}, context=context)
    messages = tool_messages(state)
    assert all(m.artifact["status"] == "ok" for m in messages.values()), messages
    return {call_id: json.loads(str(m.content)) for call_id, m in messages.items()}


def test_subagents_on_workers_read_and_write_the_main_agents_store(cluster: Cluster) -> None:
    store = SharedStore.from_settings(cluster.settings)
    run = f"run-{uuid.uuid4().hex[:8]}"
    store.put(("seeded", run), "plan", {"tier": "gold"})

    seen = _seen(cluster, [task_call(f"k{n}", "keeper", run) for n in range(3)], store=store)

    for report in seen.values():
        assert report["pid"] in cluster.worker_pids
        assert report["store"] == {"type": "SharedStore", "seeded": {"plan": {"tier": "gold"}}}
    visits = store.search(("visits", run), limit=10)
    assert sorted(item.value["pid"] for item in visits) == sorted(report["pid"] for report in seen.values())


def test_without_a_store_subagents_have_none_as_in_deepagents(cluster: Cluster) -> None:
    seen = _seen(cluster, [task_call("k", "keeper", "no store here")])

    assert seen["k"]["store"] is None


def test_a_store_the_workers_do_not_open_is_refused(cluster: Cluster) -> None:
    other = cluster.settings.model_copy(update={"queue_prefix": "someone-else"})
    with pytest.raises(UnsupportedArgumentError, match="not the one workers open"):
        create_orchestrator(
            scripted("done"), settings=cluster.settings, store=SharedStore.from_settings(other)
        )


def test_a_dataclass_context_reaches_the_subagent_as_that_dataclass(cluster: Cluster) -> None:
    context = {"tenant": "acme", "seats": 3, "token": "tok-SECRET-31"}  # coerced to Tenancy by LangGraph

    seen = _seen(cluster, [task_call("k", "keeper", "who am I?")], context_schema=Tenancy, context=context)

    assert seen["k"]["context_type"] == "Tenancy"
    assert seen["k"]["kinds"] == {"tenant": "str", "seats": "int", "token": "str"}
    # The tool echoed the secret on purpose; it travelled sealed and the worker scrubbed it.
    assert seen["k"]["context"] == {"tenant": "acme", "seats": 3, "token": REDACTED}


def test_a_pydantic_context_is_namespaced_and_keeps_its_secrets_secret(cluster: Cluster) -> None:
    published: list[dict[str, Any]] = []

    def capture(headers: dict[str, Any] | None = None, **_: Any) -> None:
        published.append(dict(headers or {}))

    profile = TenantProfile.model_validate(
        {"tenant": "acme", "vault": SecretStr("vault-SECRET-32"), "keeper:depth": 5, "region": "eu"}
    )
    before_task_publish.connect(capture, weak=False)
    try:
        seen = _seen(
            cluster,
            [task_call("k", "keeper", "look"), task_call("v", "visitor", "look")],
            context_schema=TenantProfile,
            context=profile,
        )
    finally:
        before_task_publish.disconnect(capture)

    keeper, visitor = seen["k"], seen["v"]
    assert keeper["context_type"] == visitor["context_type"] == "TenantProfile"
    assert (keeper["context"]["depth"], visitor["context"]["depth"]) == (5, 1)
    assert keeper["context"]["region"] == visitor["context"]["region"] == "eu"
    assert keeper["kinds"]["vault"] == "SecretStr"
    assert keeper["context"]["vault"] == REDACTED
    shown = [json.dumps(seen)] + [f"{h.get('argsrepr')} {h.get('kwargsrepr')}" for h in published]
    shown.append(cluster.worker_log_text())
    assert len(published) == 2
    assert not any("vault-SECRET-32" in text for text in shown)
