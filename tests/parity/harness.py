"""Run one scenario twice, through deepagents' `create_deep_agent` (subagents in this process)
and through taskforce's `create_orchestrator` (subagents on real worker processes), and compare.

Same scripted main model (a fresh instance per run), same subagent specs (the workers' registry
objects), same files written before the run, each run on a thread of its own. Both runs keep
their files in taskforce's shared-files code on the same Redis, under different namespaces, so
the filesystems are walked and compared the same way and only where the subagents run differs.

The one documented difference is allowed for and nothing else: taskforce's `task` ToolMessage
may append "Full report: ..." / "Files written: ..." notes to the answer and carries the whole
`Report` as its artifact (docs/deepagents.md, "Differences from deepagents"). The notes are stripped only
if they are exactly the ones the artifact accounts for, so an extra or missing note still fails.
"""

from __future__ import annotations

import asyncio
import copy
import itertools
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

from deepagents import create_deep_agent
from deepagents.backends.utils import create_file_data, file_data_to_string
from deepagents.middleware.subagents import DEFAULT_GENERAL_PURPOSE_DESCRIPTION, SubAgent
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolCall, ToolMessage
from langchain_core.runnables import RunnableConfig
from langchain_core.utils.function_calling import convert_to_openai_tool
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.graph.state import CompiledStateGraph
from langgraph.store.base import PutOp
from langgraph.types import Command
from pydantic import Field

from orchestrator import create_orchestrator
from shared.files import SharedFiles
from shared.files.paths import normalize
from shared.files.scopes import run_scope
from shared.files.store import Store
from shared.registry import GENERAL_PURPOSE
from shared.settings import Settings
from shared.stores import SharedStore
from tests.integration.conftest import scripted
from tests.support.models import ScriptedModel

Turn = list[ToolCall] | str
"""One turn of the scripted main model: tool calls, or its final text."""

WORKER_NAME = "parity"
"""The name the suite's workers start with (`worker_pool(..., name=WORKER_NAME)`)."""

_runs = itertools.count()


@dataclass(frozen=True)
class ParityEnv:
    """What the session fixture provides: settings for `create_orchestrator` (pointing at the
    running workers), and the two filesystems and the two stores, one per side."""

    settings: Settings
    taskforce_files: SharedFiles
    deepagents_files: SharedFiles
    logs: Path
    taskforce_store: SharedStore
    """The store the workers open (`SharedStore.from_settings`): the only one taskforce takes."""
    deepagents_store: SharedStore

    def worker_log_text(self) -> str:
        return "\n".join(log.read_text(errors="replace") for log in sorted(self.logs.glob("worker-*.log")))


class RecordingModel(ScriptedModel):
    """The scripted main model, also keeping every input it was given and every tool list it
    was bound to: what the main agent's prompt and tools held (memory, skills, the `task`
    tool's listing) is otherwise invisible in the final messages."""

    inputs: list[list[BaseMessage]] = Field(default_factory=list)
    bound: list[list[dict[str, Any]]] = Field(default_factory=list)

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> Any:
        self.bound.append([convert_to_openai_tool(tool) for tool in tools])
        return super().bind_tools(tools, **kwargs)

    def _generate(self, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> Any:
        self.inputs.append(list(messages))
        return super()._generate(messages, *args, **kwargs)

    def system_prompts(self) -> list[str]:
        """The system prompt of each of its turns."""
        return ["\n".join(m.text for m in seen if m.type == "system") for seen in self.inputs]


def recording(*turns: Turn) -> RecordingModel:
    """`scripted(...)`'s turns, in a model that records its inputs."""
    return RecordingModel(messages=scripted(*turns).messages)


@dataclass(frozen=True)
class Scenario:
    """One conversation, run the same way on both sides.

    `turns` script the main model; `subagents` are specs from `tests.parity.agents` (the
    workers' registry: taskforce refuses specs the workers do not share); `files` are written to
    each run's filesystem before it starts (`/memories/...` and `/skills/...` land in those
    shared stores, other paths in the run's workspace); `agent` holds further arguments given to
    both `create_deep_agent` and `create_orchestrator` (memory, skills, response_format,
    interrupt_on, permissions, tools...); `resumes` are values sent with `Command(resume=...)`
    one after another once the first invoke stops at an interrupt (a checkpointer is then
    given to both sides; `checkpoint=True` gives one without resuming). `store` holds the items
    the main agent's store starts with, by namespace and key: given (even empty), each side
    gets a store of its own as `store=`, taskforce the one its workers open and deepagents
    another of the same class, so that neither side sees the other's writes."""

    name: str
    turns: Sequence[Turn]
    subagents: Sequence[SubAgent]
    files: Mapping[str, str] = field(default_factory=dict)
    agent: Mapping[str, Any] = field(default_factory=dict)
    prompt: str = "start"
    context: Any = None
    resumes: Sequence[Any] = ()
    checkpoint: bool = False
    store: Mapping[tuple[str, ...], Mapping[str, dict[str, Any]]] | None = None
    asynchronous: bool = False
    """Run with `ainvoke` (deepagents' `atask`, taskforce's async wait) instead of `invoke`."""
    given_files: Mapping[str, str] = field(default_factory=dict)
    """Files passed in the first invoke's input, `{"files": {path: create_file_data(text)}}`."""
    as_written: bool = False
    """Both sides run on the backend the scenario gives them (`agent["backend"]`, else their
    defaults: deepagents' `StateBackend`, taskforce's shared files), as their users would; not
    both on taskforce's shared files. deepagents' files are then the ones in its state
    (`snapshot`)."""
    config: Mapping[str, Any] = field(default_factory=dict)
    """Further entries of each invoke's config, beside the thread id."""


@dataclass(frozen=True)
class Run:
    """One side's run: every invoke's result (the first, then one per resume), its thread and
    its filesystem, and its main model with the inputs it saw."""

    side: str
    thread_id: str
    results: list[dict[str, Any]]
    files: SharedFiles
    main_model: RecordingModel
    store: SharedStore | None = None
    as_written: bool = False
    """deepagents on the scenario's own backend (`Scenario.as_written`)."""

    @property
    def final(self) -> dict[str, Any]:
        return self.results[-1]

    @property
    def messages(self) -> list[BaseMessage]:
        messages: list[BaseMessage] = self.final["messages"]
        return messages


@dataclass(frozen=True)
class Both:
    """The two runs of one scenario, which every `assert_same_*` helper compares."""

    scenario: Scenario
    deepagents: Run
    taskforce: Run
    general_purpose: bool
    """Whether taskforce offered general-purpose; deepagents always does."""


def _clear(store: Store) -> None:
    paths = [entry.path for entry in store.walk("/")]
    if paths:
        store.remove(paths)


def _prepare(files: SharedFiles, thread_id: str, seed: Mapping[str, str]) -> None:
    """`/memories/` and `/skills/` outlive runs: start each scenario with only its own there."""
    _clear(files.memories.store)
    _clear(files.skills.store)
    backend = files.for_run(thread_id)
    for path, content in seed.items():
        written = backend.write(path, content)
        assert written.error is None, f"could not seed {path}: {written.error}"


def stored(store: SharedStore) -> dict[tuple[tuple[str, ...], str], dict[str, Any]]:
    """Every item of a store, by namespace and key."""
    return {(item.namespace, item.key): item.value for item in store.search((), limit=100_000)}


def timeless(items: Mapping[Any, dict[str, Any]]) -> dict[Any, dict[str, Any]]:
    """Items without the times a `StoreBackend` stamps on the files it keeps, which differ
    between any two runs."""
    return {
        key: {name: value for name, value in item.items() if name not in {"created_at", "modified_at"}}
        for key, item in items.items()
    }


def _prepare_store(store: SharedStore, seed: Mapping[tuple[str, ...], Mapping[str, dict[str, Any]]]) -> None:
    """The store outlives runs too: start each scenario with only its own items there."""
    store.batch([PutOp(namespace, key, None) for namespace, key in stored(store)])
    store.batch(
        [
            PutOp(namespace, key, dict(value))
            for namespace, items in seed.items()
            for key, value in items.items()
        ]
    )


def _run(side: str, scenario: Scenario, env: ParityEnv) -> Run:
    thread_id = f"parity-{scenario.name}-{side}-{os.getpid()}-{next(_runs)}"
    files = env.taskforce_files if side == "taskforce" else env.deepagents_files
    _prepare(files, thread_id, scenario.files)
    model = recording(*scenario.turns)
    arguments: dict[str, Any] = {
        "subagents": list(scenario.subagents),
        **scenario.agent,
    }
    store = None
    if scenario.store is not None:
        store = env.taskforce_store if side == "taskforce" else env.deepagents_store
        _prepare_store(store, scenario.store)
        arguments["store"] = store
    if scenario.resumes or scenario.checkpoint:
        arguments["checkpointer"] = InMemorySaver()
    if not scenario.as_written:
        arguments.setdefault("backend", files.backend())
    if side == "taskforce":
        agent = create_orchestrator(model, settings=env.settings, **arguments)
    else:
        agent = create_deep_agent(model, **arguments)
    config = cast(RunnableConfig, {**scenario.config, "configurable": {"thread_id": thread_id}})
    first: dict[str, Any] = {"messages": [HumanMessage(content=scenario.prompt)]}
    if scenario.given_files:
        first["files"] = {path: create_file_data(text) for path, text in scenario.given_files.items()}
    inputs: list[Any] = [first]
    inputs += [Command(resume=value) for value in scenario.resumes]
    if scenario.asynchronous:
        results = asyncio.run(_ainvoke_all(agent, inputs, config, scenario.context))
    else:
        results = [agent.invoke(step, config, context=scenario.context) for step in inputs]
    return Run(side, thread_id, results, files, model, store, scenario.as_written and side == "deepagents")


async def _ainvoke_all(
    agent: CompiledStateGraph[Any, Any, Any, Any], inputs: list[Any], config: RunnableConfig, context: Any
) -> list[dict[str, Any]]:
    return [await agent.ainvoke(step, config, context=context) for step in inputs]


def run_both(scenario: Scenario, env: ParityEnv) -> Both:
    """Run `scenario` through deepagents, then through taskforce."""
    return Both(
        scenario,
        _run("deepagents", scenario, env),
        _run("taskforce", scenario, env),
        general_purpose=env.settings.general_purpose,
    )


# What is compared.


def answer_part(message: ToolMessage) -> str:
    """A taskforce `task` ToolMessage's content without the notes its `Report` artifact
    accounts for; fails if the notes are not exactly those."""
    report = message.artifact
    if report is None:  # answered without a delegation (an unknown subagent type): no notes
        return str(message.content)
    assert isinstance(report, dict), f"task result {message.tool_call_id}: artifact {report!r}"
    notes = []
    if report.get("full_report_path"):
        notes.append(f"Full report: {report['full_report_path']}")
    if report.get("artifacts"):
        notes.append("Files written: " + ", ".join(report["artifacts"]))
    content = str(message.content)
    suffix = "".join(f"\n\n{note}" for note in notes)
    assert content.endswith(suffix), f"task result {message.tool_call_id}: notes are not {notes}: {content!r}"
    return content[: len(content) - len(suffix)] if suffix else content


def _task_call_ids(run: Run) -> set[str]:
    return {
        str(call["id"])
        for message in run.messages
        if isinstance(message, AIMessage)
        for call in message.tool_calls
        if call["name"] == "task"
    }


def comparable(run: Run) -> list[dict[str, Any]]:
    """What must be equal in each message on both sides: its type, its content (for `task`
    results on taskforce, the answer part), the tool calls it makes (names and arguments) and,
    for a tool result, which call it answers and whether it failed."""
    tasks = _task_call_ids(run)
    shown: list[dict[str, Any]] = []
    for message in run.messages:
        item: dict[str, Any] = {"type": message.type, "name": message.name, "content": message.content}
        if isinstance(message, AIMessage):
            item["tool_calls"] = [(call["name"], call["args"]) for call in message.tool_calls]
        if isinstance(message, ToolMessage):
            item["tool_call_id"] = message.tool_call_id
            item["status"] = message.status
            if run.side == "taskforce" and message.tool_call_id in tasks:
                item["content"] = answer_part(message)
        shown.append(item)
    return shown


def task_answers(run: Run) -> dict[str, str]:
    """Each `task` call's answer by tool call id (on taskforce, the answer part)."""
    tasks = _task_call_ids(run)
    return {
        m.tool_call_id: answer_part(m) if run.side == "taskforce" else str(m.content)
        for m in run.messages
        if isinstance(m, ToolMessage) and m.tool_call_id in tasks
    }


def assert_same_messages(both: Both) -> None:
    """The final messages, in order."""
    assert comparable(both.taskforce) == comparable(both.deepagents)


def snapshot(run: Run) -> dict[str, bytes]:
    """Every file the run can see, by the path agents use: its workspace, `/memories/` and
    `/skills/`. Full reports taskforce wrote for cut answers are left out: deepagents has none
    (the documented difference), and `assert_same_messages` already fails on a cut answer.
    deepagents on its own backend (`Scenario.as_written`) keeps them in its state instead, by
    the path as given (`~/a` is `/~/a` in the shared files)."""
    if run.as_written:
        state: Mapping[str, Any] = run.final.get("files") or {}
        return {normalize(path): file_data_to_string(data).encode() for path, data in state.items()}
    spaces = {
        "/": run.files.workspace(run.thread_id).store,
        "/memories/": run.files.memories.store,
        "/skills/": run.files.skills.store,
    }
    reports = {
        str(m.artifact.get("full_report_path"))
        for m in run.messages
        if isinstance(m, ToolMessage) and isinstance(m.artifact, dict) and m.artifact.get("full_report_path")
    }
    files: dict[str, bytes] = {}
    for mount, store in spaces.items():
        paths = sorted(entry.path for entry in store.walk("/"))
        for path, stored in zip(paths, store.load(paths), strict=True):
            assert stored is not None, f"{path} vanished while walking {run.side}'s files"
            files[mount.rstrip("/") + path] = stored.content
    return {path: content for path, content in files.items() if path not in reports}


def assert_same_files(both: Both) -> None:
    """Same paths with the same bytes, and the workspace of each run is where it must be
    (walking the wrong scope would compare two empty filesystems)."""
    assert run_scope(both.taskforce.thread_id) != run_scope(both.deepagents.thread_id)
    assert snapshot(both.taskforce) == snapshot(both.deepagents)


def assert_same_store(both: Both) -> None:
    """Same items in the main agent's store, when it has one."""
    if both.scenario.store is not None:
        assert both.taskforce.store is not None
        assert both.deepagents.store is not None
        assert both.taskforce.store.prefix != both.deepagents.store.prefix
        assert timeless(stored(both.taskforce.store)) == timeless(stored(both.deepagents.store))


def interrupts(run: Run) -> list[list[Any]]:
    """The interrupt values each invoke stopped at (empty for one that ran to the end)."""
    return [[i.value for i in result.get("__interrupt__", [])] for result in run.results]


def assert_same_interrupts(both: Both) -> None:
    assert interrupts(both.taskforce) == interrupts(both.deepagents)


def permission_errors(run: Run) -> list[str]:
    """Tool results, in order, that refused a file operation (deepagents' permission rules)."""
    return [
        str(m.content)
        for m in run.messages
        if isinstance(m, ToolMessage) and "permission denied" in str(m.content)
    ]


def assert_same_permission_errors(both: Both) -> None:
    assert permission_errors(both.taskforce) == permission_errors(both.deepagents)


def assert_same_structured_response(both: Both) -> None:
    """The main agent's own structured response (its `response_format`), and which state keys
    the final result has at all: a subagent's state update leaking into the main agent's
    state in one process would show as an extra key."""
    assert both.taskforce.final.get("structured_response") == both.deepagents.final.get("structured_response")
    assert sorted(both.taskforce.final) == sorted(both.deepagents.final)


def assert_same_main_prompts(both: Both) -> None:
    """The system prompt the main model got on each of its turns (memory, skills, the
    middleware's prompt fragments)."""
    assert both.taskforce.main_model.system_prompts() == both.deepagents.main_model.system_prompts()


def assert_ran_on_workers(both: Both) -> None:
    """Every taskforce delegation ran on a worker process of the pool, not somewhere in this
    one: parity with an in-process fallback would prove nothing."""
    tasks = _task_call_ids(both.taskforce)
    for message in both.taskforce.messages:
        if (
            isinstance(message, ToolMessage)
            and message.tool_call_id in tasks
            and message.artifact is not None
        ):
            worker = str(message.artifact.get("worker") or "")
            assert worker.startswith(WORKER_NAME), f"task {message.tool_call_id} ran on {worker!r}"


GENERAL_PURPOSE_LINE = f"- {GENERAL_PURPOSE}: {DEFAULT_GENERAL_PURPOSE_DESCRIPTION}\n"


def main_tools(run: Run, *, drop_general_purpose: bool = False) -> list[list[dict[str, Any]]]:
    """The tools (name, description, schema) the main model was bound to on each turn. With
    `drop_general_purpose`, the `task` tool's listing loses the general-purpose entry, which
    deepagents always offers and this suite's taskforce runs do not (see conftest)."""
    turns = copy.deepcopy(run.main_model.bound)
    if drop_general_purpose:
        for tools in turns:
            for tool in tools:
                function = tool["function"]
                if function["name"] == "task":
                    assert GENERAL_PURPOSE_LINE in function["description"], function["description"]
                    function["description"] = function["description"].replace(GENERAL_PURPOSE_LINE, "")
    return turns


def assert_same_main_tools(both: Both) -> None:
    """Same tools, descriptions and schemas for the main model, the `task` tool's listing of
    subagents included."""
    expected = main_tools(both.deepagents, drop_general_purpose=not both.general_purpose)
    assert expected, "the main model was never bound to any tools"
    assert main_tools(both.taskforce) == expected


def assert_parity(both: Both) -> None:
    """Everything compared that every scenario must agree on."""
    assert_ran_on_workers(both)
    assert_same_messages(both)
    assert_same_files(both)
    assert_same_store(both)
    assert_same_interrupts(both)
    assert_same_permission_errors(both)
    assert_same_structured_response(both)
    assert_same_main_prompts(both)
    assert_same_main_tools(both)
