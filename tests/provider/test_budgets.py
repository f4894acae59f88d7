"""Budgets on real workers, against the fake provider: a spent budget stops a running
delegation at its next model call and every later delegation before it runs, and the run
still answers. The provider's count of calls says exactly what ran."""

from __future__ import annotations

import pytest
import redis
from langchain_core.messages import HumanMessage

from orchestrator import create_orchestrator
from orchestrator.budgets import run_account
from orchestrator.session import reports_in
from shared.budgets import Accounts, Budget
from tests.integration.conftest import scripted, task_call
from tests.provider.agents import WRITER_MODEL
from tests.provider.conftest import ProviderCluster
from tests.provider.test_workers import _under_scripted_main
from tests.support.fake_provider import RemoteProvider

pytestmark = pytest.mark.integration


def test_a_spent_budget_stops_the_running_delegation_then_the_fan_out_and_the_run_answers(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    """The main model is scripted (its calls cost nothing): the first writer's first call
    spends the budget of 1 token, so its second call (the answer after its tool) never goes
    out; the three delegations of the next turn start after it, and never run."""
    thread = "budget-fan-out"
    main = scripted(
        [task_call("first", "writer", "write a note on topic 0")],
        [task_call(f"then-{n}", "writer", f"write a note on topic {n}") for n in range(1, 4)],
        "Here is what I have.",
    )
    settings = _under_scripted_main(provider_cluster)
    agent = create_orchestrator(main, settings=settings, budget=Budget(max_tokens=1))

    state = agent.invoke(
        {"messages": [HumanMessage(content="notes, please")]}, {"configurable": {"thread_id": thread}}
    )

    reports = reports_in(state["messages"])
    assert [report.status for report in reports] == ["budget_exhausted"] * 4
    assert all(f"{run_account(thread)} spent" in report.summary for report in reports)
    assert provider.stats().calls_by_model == {WRITER_MODEL.split(":", 1)[1]: 1}, "one call went out, no more"
    assert state["messages"][-1].text == "Here is what I have."
    accounts = Accounts(redis.Redis.from_url(str(settings.redis_url)), settings.queue_prefix, {})
    stats = provider.stats()
    assert accounts.spent(run_account(thread)).tokens == stats.prompt_tokens + stats.completion_tokens
