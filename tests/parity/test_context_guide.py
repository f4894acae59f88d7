"""The context-engineering guide's own examples (deepagents' "Context engineering" page and
LangGraph's "Context overview"), each run as written through `create_deep_agent` in this process
and, changing only that name, through `create_orchestrator` with subagents on real workers.

Where the guide's snippet does not run on deepagents 0.7.32 itself, the test says so and shows
both sides failing or behaving alike: its backend factory (removed in 0.7), `StateBackend`
passed as a class, `config.get("context")` in a tool (LangGraph 1.2 keeps no `context` in a
config). An `InMemoryStore` is the one swap the guide's examples need: a `SharedStore` or a
`PostgresStore`, which workers open too.
"""

from __future__ import annotations

import contextlib
import re
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from deepagents import create_deep_agent
from deepagents.backends import CompositeBackend, StateBackend, StoreBackend
from deepagents.middleware.summarization import create_summarization_tool_middleware
from langchain_core.messages import HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.store.base import PutOp
from langgraph.store.memory import InMemoryStore

from orchestrator import create_orchestrator
from orchestrator.embedded import worker_pool
from orchestrator.parity import UnsupportedArgumentError
from shared.celery_app import queue_for
from tests.integration.conftest import task_call
from tests.parity.agents import (
    CLERK,
    COMPACTOR,
    CONCIERGE,
    EXPORTER,
    GUIDE_RESEARCHER,
    MEMO,
    MEMO_READER,
    MEMO_WRITER,
    SCRIBE,
    SEPARATE_QUEUES,
    ContextSchema,
    fetch_user_data,
    fetch_user_data_from_runtime,
    search_orders,
    skill_file,
)
from tests.parity.harness import (
    Both,
    ParityEnv,
    Scenario,
    answer_part,
    assert_parity,
    recording,
    run_both,
    snapshot,
    stored,
    task_answers,
    timeless,
)

# deepagents' in-process run has langchain-core serialise the context inside the tool's injected
# runtime, and warn about it; workers silence it (workers/app.py).
pytestmark = pytest.mark.filterwarnings("ignore:Pydantic serializer warnings:UserWarning")

SYSTEM_PROMPT = (
    "You are a research assistant specializing in scientific literature. "
    "Always cite sources. Use subagents for parallel research on different topics."
)


def _main_prompt(both: Both) -> str:
    prompts = both.taskforce.main_model.system_prompts()
    assert prompts == both.deepagents.main_model.system_prompts()
    return prompts[0]


def test_system_prompt(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="guide-system-prompt",
            turns=[[task_call("r", "researcher", "protein folding")], "cited"],
            subagents=[GUIDE_RESEARCHER],
            agent={"system_prompt": SYSTEM_PROMPT},
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)
    assert _main_prompt(both).startswith(SYSTEM_PROMPT)


def test_memory_at_any_path_given_as_files_to_invoke(parity: ParityEnv) -> None:
    """`memory=["/project/AGENTS.md", "~/.deepagents/preferences.md"]` on deepagents' default
    backend: the files come in through `invoke({"files": ...})`, land in the run's workspace,
    and a subagent's file lands beside them."""
    both = run_both(
        Scenario(
            name="guide-memory",
            turns=[[task_call("n", "scribe", "conventions")], "noted"],
            subagents=[SCRIBE],
            agent={"memory": ["/project/AGENTS.md", "~/.deepagents/preferences.md"]},
            given_files={
                "/project/AGENTS.md": "guide-memory: tabs, never spaces.",
                "~/.deepagents/preferences.md": "guide-preferences: answer tersely.",
            },
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)
    prompt = _main_prompt(both)
    assert "guide-memory: tabs, never spaces." in prompt
    assert "guide-preferences: answer tersely." in prompt
    assert set(snapshot(both.taskforce)) == {
        "/project/AGENTS.md",
        "/~/.deepagents/preferences.md",
        "/notes/conventions.md",
    }


def test_memory_files_seed_once_and_the_agents_edits_are_kept(parity: ParityEnv) -> None:
    """Seeded files leave the state: a later turn of the thread does not bring the seed back
    over what an agent wrote since (deepagents' state holds one copy, so does the workspace)."""
    both = run_both(
        Scenario(
            name="guide-seed-once",
            turns=[
                [task_call("n", "scribe", "conventions")],
                "noted",
            ],
            subagents=[SCRIBE],
            given_files={"/notes/conventions.md": "seeded\n"},
            as_written=True,
            checkpoint=True,
        ),
        parity,
    )
    assert_parity(both)
    assert snapshot(both.taskforce)["/notes/conventions.md"] == b"# conventions\n"
    assert both.taskforce.final["files"] == {}


def test_skills(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="guide-skills",
            turns=[[task_call("r", "researcher", "enzymes")], "found"],
            subagents=[GUIDE_RESEARCHER],
            agent={"skills": ["/skills/research/", "/skills/web-search/"]},
            given_files={
                "/skills/research/literature/SKILL.md": skill_file(
                    "literature", "find papers", "# Literature\n\nSearch, then cite."
                ),
                "/skills/web-search/engines/SKILL.md": skill_file(
                    "engines", "search the web", "# Engines\n\nTwo engines, compare."
                ),
            },
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)
    prompt = _main_prompt(both)
    assert "find papers" in prompt
    assert "search the web" in prompt


def test_tool_prompts_a_subagent_without_tools_gets_the_main_agents(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="guide-tool-prompts",
            turns=[[task_call("c", "clerk", "my shipped orders")], "listed"],
            subagents=[CLERK],
            agent={"tools": [search_orders]},
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)  # the main model's tools, docstring-parsed descriptions included
    assert task_answers(both.deepagents)["c"] == "clerk: 10 shipped orders of user-123"


@pytest.mark.parametrize(
    ("tool", "seen"),
    [(fetch_user_data, "None"), (fetch_user_data_from_runtime, "user-123")],
    ids=["config.get('context'), as the guide writes it", "runtime.context"],
)
def test_runtime_context_passed_in_the_config(parity: ParityEnv, tool: Any, seen: str) -> None:
    """The guide passes `config={"context": {...}}` and reads `config.get("context")` in the
    tool: on LangGraph 1.2 neither carries the context (the tool sees `None`), on both sides.
    The same tool reading `runtime.context`, with `context=`, sees it on both sides."""
    context = {"user_id": "user-123", "api_key": "sk-guide-1"}
    given = {"config": {"context": context}} if seen == "None" else {"context": context}
    both = run_both(
        Scenario(
            name="guide-runtime-context",
            turns=[[task_call("c", "clerk", "recent activity")], "fetched"],
            subagents=[CLERK],
            agent={"tools": [tool], "context_schema": dict},
            as_written=True,
            **given,
        ),
        parity,
    )
    assert_parity(both)
    assert task_answers(both.deepagents)["c"] == f"clerk: Data for user {seen}: recent activity"


def test_summarization_tool_middleware_on_the_main_agent(parity: ParityEnv) -> None:
    """As the guide writes it, `StateBackend` the class: deepagents builds it; so does taskforce."""
    compaction = create_summarization_tool_middleware(recording("summary"), StateBackend)  # type: ignore[arg-type]
    both = run_both(
        Scenario(
            name="guide-summarization-tool",
            turns=[[task_call("c", "clerk", "anything")], "done"],
            subagents=[CLERK],
            agent={"middleware": [compaction]},
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)
    assert "compact_conversation" in {tool["function"]["name"] for tool in both.taskforce.main_model.bound[0]}


def test_context_isolation_the_guides_researcher(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="guide-isolation",
            turns=[
                [task_call("a", "researcher", "quantum dots"), task_call("b", "researcher", "perovskites")],
                "summarised",
            ],
            subagents=[GUIDE_RESEARCHER],
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)
    # The main agent holds one report per task, not the subagents' tool calls.
    tool_results = [m for m in both.taskforce.messages if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in tool_results] == ["a", "b"]


def _long_term_backend() -> CompositeBackend:
    return CompositeBackend(
        default=StateBackend(),
        routes={
            "/memories/": StoreBackend(namespace=lambda runtime: ("memories", runtime.context["user_id"]))
        },
    )


LONG_TERM_PROMPT = """When users tell you their preferences, save them to
/memories/user_preferences.txt so you remember them in future conversations."""


def test_long_term_memory_routes_memories_to_the_store(parity: ParityEnv) -> None:
    """The guide's CompositeBackend, in deepagents 0.7's instance form, the namespace from the
    run's context: a subagent's write of /memories/ lands in the store, under the namespace
    deepagents computes, other files in the run's workspace (deepagents: its state)."""
    both = run_both(
        Scenario(
            name="guide-long-term",
            turns=[
                [task_call("m", "memo", "remember: metric units"), task_call("n", "scribe", "trip")],
                "saved",
            ],
            subagents=[MEMO, SCRIBE],
            agent={"backend": _long_term_backend(), "system_prompt": LONG_TERM_PROMPT},
            context={"user_id": "ada"},
            store={},
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)  # the main prompt (routes listed as deepagents lists them) and the store
    assert both.taskforce.store is not None
    assert timeless(stored(both.taskforce.store)) == {
        (("memories", "ada"), "/user_preferences.txt"): {"content": "metric units", "encoding": "utf-8"}
    }
    assert set(snapshot(both.taskforce)) == {"/notes/trip.md"}


def test_memories_pre_seeded_through_the_store_api_are_read_by_subagents(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="guide-store-seeded",
            turns=[[task_call("m", "memo", "what do I prefer?")], "recalled"],
            subagents=[MEMO],
            agent={"backend": _long_term_backend()},
            context={"user_id": "bo"},
            store={("memories", "bo"): {"/user_preferences.txt": {"content": "tea", "encoding": "utf-8"}}},
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)
    assert task_answers(both.deepagents)["m"] == "memo: @@ lines 1-1 of 1 @@\ntea"


def test_dynamic_prompt_in_a_subagent_reads_runtime_context_and_store(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="guide-dynamic-prompt",
            turns=[[task_call("c", "concierge", "hello")], "greeted"],
            subagents=[CONCIERGE],
            agent={"context_schema": ContextSchema},
            context=ContextSchema(user_name="John Smith"),
            store={("preferences",): {"John Smith": {"style": "concise"}}},
        ),
        parity,
    )
    assert_parity(both)
    assert task_answers(both.deepagents)["c"] == (
        "You are a helpful assistant. Address the user as John Smith. Preferred style: concise."
    )


def test_a_large_tool_result_is_offloaded_with_a_preview(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="guide-offloading",
            turns=[[task_call("e", "exporter", "orders")], "exported"],
            subagents=[EXPORTER],
            as_written=True,
        ),
        parity,
    )
    assert_parity(both)  # the offloaded file included
    answer = task_answers(both.deepagents)["e"]
    assert "/large_tool_results/export-1" in answer
    assert "orders row 0: " in answer  # the preview's head and tail, not the middle
    assert "orders row 2999: " in answer
    assert "orders row 1500: " not in answer
    offloaded = snapshot(both.taskforce)["/large_tool_results/export-1"].decode()
    assert offloaded.endswith("orders row 2999: " + "x" * 40)


def test_summarization_tool_middleware_on_a_subagent(parity: ParityEnv) -> None:
    both = run_both(
        Scenario(
            name="guide-compact-subagent",
            turns=[[task_call("c", "compactor", "tidy up")], "tidied"],
            subagents=[COMPACTOR],
        ),
        parity,
    )
    assert_parity(both)
    assert task_answers(both.deepagents)["c"].startswith("compactor: ")


def _memory_agent(builder: Any, **arguments: Any) -> Any:
    """The guide's long-term memory agent, `arguments` changed."""
    given = {"backend": _long_term_backend(), "store": InMemoryStore(), **arguments}
    return builder(recording("x"), subagents=[MEMO], system_prompt=LONG_TERM_PROMPT, **given)


def test_the_guides_backend_factory_is_refused_by_both(parity: ParityEnv) -> None:
    """`backend=make_backend` with `StateBackend(runtime)`: deepagents 0.7 refuses factories."""

    def make_backend(runtime: Any) -> CompositeBackend:
        return CompositeBackend(default=StateBackend(runtime), routes={"/memories/": StoreBackend(runtime)})  # type: ignore[call-arg]

    with pytest.raises(TypeError, match=re.escape("Backend factories were removed in deepagents 0.7")):
        create_deep_agent(recording("x"), store=InMemoryStore(), backend=make_backend)  # type: ignore[arg-type]
    with pytest.raises(UnsupportedArgumentError, match=re.escape("backend: a backend factory")):
        _memory_agent(create_orchestrator, backend=make_backend, settings=parity.settings)


def test_an_in_memory_store_is_refused_with_the_fix(parity: ParityEnv) -> None:
    _memory_agent(create_deep_agent)
    with pytest.raises(UnsupportedArgumentError) as refused:
        _memory_agent(create_orchestrator, settings=parity.settings)
    assert str(refused.value) == (
        "store: an InMemoryStore lives in one process, and subagents on workers share the main agent's "
        "store; pass shared.stores.SharedStore.from_settings(settings), or set TASKFORCE_STORE_URL and "
        "pass a PostgresStore on it"
    )


@pytest.fixture(scope="module")
def memo_workers(parity: ParityEnv, tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """One worker process for each memo queue, which the parity pool leaves alone."""
    logs = tmp_path_factory.mktemp("memo-worker-logs")
    with contextlib.ExitStack() as workers:
        for queue in SEPARATE_QUEUES:
            served = queue_for(parity.settings, queue)
            workers.enter_context(worker_pool(parity.settings, logs, 1, "-Q", served, name=queue))
        yield


def _remember_then_recall(builder: Any, store: Any, settings: Any | None) -> list[ToolMessage]:
    """Run 1 tells the memo writer a preference; run 2, another thread, asks the memo reader."""
    reports = []
    for thread, call in [
        ("one", task_call("w", "memo-writer", "remember: aisle seats")),
        ("two", task_call("r", "memo-reader", "what do I prefer?")),
    ]:
        extra = {"settings": settings} if settings is not None else {}
        agent = builder(
            recording([call], "done"),
            subagents=[MEMO_WRITER, MEMO_READER],
            backend=_long_term_backend(),
            store=store,
            **extra,
        )
        config: RunnableConfig = {"configurable": {"thread_id": f"memo-{thread}-{uuid.uuid4().hex[:8]}"}}
        result = agent.invoke({"messages": [HumanMessage("go")]}, config, context={"user_id": "cy"})
        reports += [m for m in result["messages"] if isinstance(m, ToolMessage)]
    return reports


def test_long_term_memory_outlives_the_thread_and_the_worker(parity: ParityEnv, memo_workers: None) -> None:
    """Run 1 writes /memories/user_preferences.txt on one worker; run 2, on another thread,
    reads it on another worker, as deepagents' second thread reads it from its store."""
    for store in (parity.taskforce_store, parity.deepagents_store):
        store.batch([PutOp(namespace, key, None) for namespace, key in stored(store)])
    written, read = _remember_then_recall(create_orchestrator, parity.taskforce_store, parity.settings)
    expected = _remember_then_recall(create_deep_agent, parity.deepagents_store, None)

    assert [answer_part(written), answer_part(read)] == [str(m.content) for m in expected]
    assert answer_part(read) == "memo: @@ lines 1-1 of 1 @@\naisle seats"
    workers = [str(m.artifact["worker"]) for m in (written, read)]
    assert workers[0].startswith("memo-writer"), workers
    assert workers[1].startswith("memo-reader"), workers
    assert timeless(stored(parity.taskforce_store)) == timeless(stored(parity.deepagents_store))
