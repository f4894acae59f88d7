"""The stock `openai:` model on real workers: every way a main agent reaches its subagents, run
through langchain-openai's async client many times on the same two workers, with 0 errors.

Each subagent call is two provider calls (its tool, then its answer), so a report that says
`fact about <topic>` went through both."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from deepagents import AsyncSubAgent
from langchain_core.messages import HumanMessage, ToolCall
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

from orchestrator import create_orchestrator
from orchestrator.batch.run import run_batch
from orchestrator.batch.submissions import batch_results
from orchestrator.delegation.client import DelegationClient
from orchestrator.session import reports_in
from shared.celery_app import create_celery_app
from shared.files import read_text, shared_files
from shared.schemas import Report
from shared.settings import Settings
from tests.integration.conftest import scripted, task_call, tool_messages
from tests.integration.test_submit import _main_worker, _submit, _until_finished
from tests.provider.agents import MAIN_MODEL
from tests.provider.conftest import ProviderCluster
from tests.support.fake_provider import RemoteProvider
from tests.support.waiting import eventually

pytestmark = pytest.mark.integration


def _prompt(count: int, subagent: str = "writer", what: str = "write a note on topic") -> str:
    items = "\n".join(f"- {what} {n}" for n in range(count))
    return f"Delegate every item below to the {subagent} subagent.\n{items}\n"


def _config(name: str) -> RunnableConfig:
    return {"configurable": {"thread_id": f"{name}-{uuid.uuid4().hex[:8]}"}}


def _given(text: str) -> Any:
    return {"messages": [HumanMessage(content=text)]}  # the agent's input type, as a dict


def _under_scripted_main(cluster: ProviderCluster) -> Settings:
    """A scripted main model cannot travel to workers; subagents without a model of their own
    run on a string model instead (TASKFORCE_SUBAGENT_MODEL)."""
    return cluster.settings.model_copy(update={"subagent_model": MAIN_MODEL})


def _all_ok(reports: list[Report], count: int) -> None:
    assert len(reports) == count
    failed = [f"{report.status}: {report.summary}" for report in reports if report.status != "ok"]
    assert failed == []
    topics = sorted(int(report.summary.rsplit(" ", 1)[-1]) for report in reports)
    assert topics == list(range(count)), "each report answers its own delegation, after its tool call"
    assert all(report.usage.input_tokens > 0 and report.usage.output_tokens > 0 for report in reports)


def test_200_delegations_over_two_workers_all_report_ok(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    agent = create_orchestrator(settings=provider_cluster.settings)

    state = agent.invoke(_given(_prompt(200)), _config("two-hundred"))

    reports = reports_in(state["messages"])
    _all_ok(reports, 200)
    assert len({report.worker for report in reports}) == 2, "both workers ran delegations"
    stats = provider.stats()
    assert stats.refused == {}
    assert stats.calls == 2 * 200 + 2  # each subagent twice, the main agent twice
    assert set(stats.models) == {"fake-main", "fake-writer"}


@pytest.mark.parametrize(
    ("subagent", "path"), [("responder", "/responses"), ("streamer", "/chat/completions")]
)
def test_streamed_answers_and_the_responses_api_on_workers(
    provider_cluster: ProviderCluster, provider: RemoteProvider, subagent: str, path: str
) -> None:
    """A spec's `model_options` choose the API and streaming, for that subagent only."""
    agent = create_orchestrator(settings=provider_cluster.settings)

    state = agent.invoke(_given(_prompt(10, subagent)), _config(subagent))

    _all_ok(reports_in(state["messages"]), 10)
    assert provider.stats().paths.get(path, 0) >= 2 * 10


def test_repeated_runs_on_the_same_workers_never_meet_a_closed_loop(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    agent = create_orchestrator(settings=provider_cluster.settings)

    for run in range(4):
        state = agent.invoke(_given(_prompt(30)), _config(f"again-{run}"))
        _all_ok(reports_in(state["messages"]), 30)
    assert "RuntimeError" not in provider_cluster.worker_log_text()


def test_ainvoke_and_astream_on_the_callers_loop(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    """One loop for the whole test: langchain-openai's cached async client belongs to the first
    loop that used it, in this process as on a worker (see workers/event_loop.py)."""
    agent = create_orchestrator(settings=provider_cluster.settings)

    async def both() -> tuple[list[Report], list[Report]]:
        invoked = await agent.ainvoke(_given(_prompt(20)), _config("ainvoke"))
        streamed: dict[str, Any] = {}
        async for state in agent.astream(_given(_prompt(20)), _config("astream"), stream_mode="values"):
            streamed = state
        return reports_in(invoked["messages"]), reports_in(streamed["messages"])

    invoked, streamed = asyncio.run(both())

    _all_ok(invoked, 20)
    _all_ok(streamed, 20)


def test_batch_items_each_delegate_on_the_real_client(
    provider_cluster: ProviderCluster, provider: RemoteProvider, tmp_path: Path
) -> None:
    items = tmp_path / "items.jsonl"
    lines = [json.dumps({"id": f"item-{n}", "prompt": _prompt(4)}) for n in range(5)]
    items.write_text("\n".join(lines) + "\n")

    outcome = run_batch(provider_cluster.settings, items, tmp_path / "results.jsonl", max_runs=5)

    assert [result.error for result in outcome.results] == [None] * 5
    assert all(len(result.delegations) == 4 for result in outcome.results)
    assert all(result.usage.input_tokens > 0 for result in outcome.results)


def test_a_subagent_on_the_real_client_pauses_for_approval_and_resumes(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    agent = create_orchestrator(settings=provider_cluster.settings, checkpointer=InMemorySaver())
    config = _config("approve")
    prompt = "Delegate to the reviewer subagent:\n- review topic 7 and write the verdict to /reviews/7.md\n"

    paused = agent.invoke(_given(prompt), config)
    [question] = paused["__interrupt__"]
    assert question.value["action_requests"][0]["name"] == "write_file"
    finished = agent.invoke(Command(resume={question.id: {"decisions": [{"type": "approve"}]}}), config)

    [report] = reports_in(finished["messages"])
    assert report.status == "ok", report.summary
    workspace = shared_files(provider_cluster.settings).for_run(config["configurable"]["thread_id"])
    assert "fact about" in read_text(workspace, "/reviews/7.md")


def test_an_async_subagent_runs_on_the_real_client(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    settings = _under_scripted_main(provider_cluster)
    background: AsyncSubAgent = {
        "name": "bg-writer",
        "description": "writes notes in the background",
        "graph_id": "writer",
    }
    saver, config = InMemorySaver(), _config("async")

    def say(*turns: list[ToolCall] | str) -> dict[str, Any]:
        agent = create_orchestrator(
            scripted(*turns),
            subagents=[background],
            settings=settings,
            checkpointer=saver,  # type: ignore[list-item]
        )
        state: dict[str, Any] = agent.invoke(_given("go on"), config)
        return state

    start = ToolCall(
        name="start_async_task",
        args={"description": "write a note on topic 3", "subagent_type": "bg-writer"},
        id="s1",
        type="tool_call",
    )
    [task] = say([start], "started")["async_tasks"].values()
    client = DelegationClient(create_celery_app(settings), settings)
    try:
        assert eventually(lambda: client.peek([task["run_id"]]).get(task["run_id"]) is not None, timeout_s=30)
    finally:
        client.close()
    check = ToolCall(name="check_async_task", args={"task_id": task["task_id"]}, id="c1", type="tool_call")
    checked = json.loads(str(tool_messages(say([check], "checked"))["c1"].content))

    assert checked["status"] == "success"
    assert checked["result"].endswith("fact about write a note on topic 3")


def test_429s_and_5xx_answers_are_retried_by_the_client(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    provider.configure(fail_first=[429, 500, 503, 429], retry_after_s=0.2)
    calls = [task_call(f"t{n}", "writer", f"write a note on topic {n}") for n in range(6)]
    agent = create_orchestrator(
        scripted(calls, "done"),
        settings=_under_scripted_main(provider_cluster),
    )

    state = agent.invoke(_given("go"), _config("retried"))

    _all_ok(reports_in(state["messages"]), 6)
    assert provider.stats().refused == {"429": 2, "500": 1, "503": 1}


def test_a_provider_error_reports_its_type_and_message_and_logs_its_traceback(
    provider_cluster: ProviderCluster, provider: RemoteProvider
) -> None:
    provider.configure(fail_first=[400])  # not retried, as a provider's 400 is not
    agent = create_orchestrator(
        scripted([task_call("bad", "writer", "write a note on topic 1")], "done"),
        settings=_under_scripted_main(provider_cluster),
    )

    report = tool_messages(agent.invoke(_given("go"), _config("bad")))["bad"].artifact

    assert report["status"] == "error"
    # langchain-openai's own exception, and the openai client's it was raised from
    assert report["summary"].startswith("OpenAIInvalidRequestError: Error code: 400 - A scripted refusal.")
    assert "(caused by BadRequestError" in report["summary"]
    assert "sk-provider-tests" not in report["summary"]
    assert eventually(lambda: "BadRequestError" in provider_cluster.worker_log_text())
    logged = provider_cluster.worker_log_text()
    assert "Traceback (most recent call last)" in logged
    assert "sk-provider-tests" not in logged


def test_submitted_runs_on_a_main_run_worker_use_the_real_client(
    provider_cluster: ProviderCluster, provider: RemoteProvider, tmp_path: Path
) -> None:
    settings = provider_cluster.settings
    lines = [{"id": f"sub-{n}", "prompt": _prompt(3)} for n in range(4)]

    with _main_worker(settings, tmp_path):
        batch_id = _submit(settings, tmp_path / "in.jsonl", lines)
        found = _until_finished(settings, batch_id, 120)

    assert found.counts == {"ok": 4}, found
    results = batch_results(settings, batch_id)
    assert all(len(result.delegations) == 3 and result.usage.input_tokens > 0 for result in results)
    assert "fake-main" in provider.stats().models
