"""The parity suite's subagents, tools and models, imported by the test process (for both the
deepagents run and the taskforce run) and by the real workers
(`TASKFORCE_SUBAGENTS=tests.parity.agents:SUBAGENTS`).

Both sides must build every subagent from the very same spec objects, or a difference could
come from the specs instead of from where the subagent runs. Subagent models are deterministic
functions of the messages they receive, never scripts: on a worker one model instance serves
many delegations at once, and in deepagents parallel `task` calls share it across threads, so
a model holding per-run state would answer differently depending on scheduling.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Sequence
from typing import Any, cast

from deepagents.middleware.subagents import SubAgent
from deepagents.middleware.summarization import create_summarization_tool_middleware
from langchain.agents.middleware import ModelRequest, dynamic_prompt
from langchain.tools import ToolRuntime
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.runnables import RunnableConfig
from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, Field, SecretStr

from shared.context import context_as_mapping
from shared.files import workspace_backend

SKILL_MARKER = "parity-skill"
"""Every line a skill contributes to a system prompt carries this, so a model can quote them."""


class Turn(BaseModel):
    """What a subagent model decides from: its task, its system prompt, the tools it was
    offered and its tool results."""

    task: str
    system: str
    tools: list[str]
    results: list[str]
    asked: list[str] = Field(default_factory=list)
    """Every human message, in order (a follow-up's too)."""
    answers: list[str] = Field(default_factory=list)
    """Every final answer it gave earlier in the conversation."""


def _call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


def _tool_name(tool: dict[str, Any] | type | Callable[..., Any] | BaseTool) -> str:
    if isinstance(tool, BaseTool):
        return tool.name
    if isinstance(tool, dict):
        return str(tool.get("name") or tool.get("function", {}).get("name"))
    return str(getattr(tool, "__name__", tool))


class StepModel(BaseChatModel):
    """A chat model whose every answer is a pure function of the conversation it is given.

    `bind_tools` returns a copy that knows the names of the tools it was offered (and nothing
    else): the tool calls it makes are chosen by `respond`, and whether the tools it names
    exist is exactly what the two runs must agree on."""

    tool_names: tuple[str, ...] = ()

    @property
    def _llm_type(self) -> str:
        return "taskforce-parity"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **_: Any
    ) -> Any:
        return self.model_copy(update={"tool_names": tuple(sorted(map(_tool_name, tools)))})

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        turn = Turn(
            task=next((str(m.content) for m in messages if m.type == "human"), ""),
            system="\n".join(m.text for m in messages if m.type == "system"),
            tools=list(self.tool_names),
            results=[str(m.content) for m in messages if isinstance(m, ToolMessage)],
            asked=[str(m.content) for m in messages if m.type == "human"],
            answers=[m.text for m in messages if isinstance(m, AIMessage) and not m.tool_calls],
        )
        message = self.respond(turn)
        message.usage_metadata = {"input_tokens": 11, "output_tokens": 5, "total_tokens": 16}
        return ChatResult(generations=[ChatGeneration(message=message)])

    def respond(self, turn: Turn) -> AIMessage:
        raise NotImplementedError


# One subagent, one tool of its own.


@tool
def count_words(text: str) -> str:
    """Count the words of a text."""
    return f"{len(text.split())} words"


@tool
def reverse_words(text: str) -> str:
    """Reverse the order of the words of a text."""
    return " ".join(reversed(text.split()))


@tool
def lookup_fact(topic: str) -> str:
    """Look a topic up in a fixed encyclopedia (a stand-in for web search)."""
    facts = {
        "celery": "Celery is a distributed task queue for Python.",
        "redis": "Redis is an in-memory data store.",
    }
    return facts.get(topic.strip().lower(), f"nothing is known about {topic.strip()}")


class ToolUserModel(StepModel):
    """Calls its one tool on the task, then answers with what the tool said, under its label."""

    label: str
    tool_name: str
    argument: str

    def respond(self, turn: Turn) -> AIMessage:
        if not turn.results:
            return _call(self.tool_name, f"{self.label}-1", **{self.argument: turn.task})
        return AIMessage(content=f"{self.label}: {turn.results[-1]}")


# A subagent that writes a file for the main agent to read.

_SLUG = re.compile(r"[^a-z0-9]+")


def slug(text: str) -> str:
    return _SLUG.sub("-", text.lower()).strip("-")[:40] or "untitled"


class ScribeModel(StepModel):
    """Writes its task to `/notes/<slug of the task>.md`, then answers with the write's result,
    so the backend's own message is part of what is compared."""

    def respond(self, turn: Turn) -> AIMessage:
        if not turn.results:
            return _call("write_file", "scribe-1", file_path=note_path(turn.task), content=f"# {turn.task}\n")
        return AIMessage(content=f"scribe: {turn.results[-1]}")


def note_path(task: str) -> str:
    return f"/notes/{slug(task)}.md"


# A subagent with skills: it quotes the skill listing deepagents put in its system prompt, then
# reads the skill it was pointed to, as progressive disclosure intends.

_SKILL_PATH = re.compile(r"`(/skills/[^`]+/SKILL\.md)`")


class SkilledModel(StepModel):
    """Also reports the tools it was offered and a digest of its whole system prompt: the two
    sides build the subagent's stack separately (deepagents' graph.py, taskforce's
    workers/subagents.py), and any drift between them shows here."""

    def respond(self, turn: Turn) -> AIMessage:
        listing = [line.strip() for line in turn.system.splitlines() if SKILL_MARKER in line]
        paths = _SKILL_PATH.findall(turn.system)
        if paths and not turn.results:
            return _call("read_file", "skill-1", file_path=paths[0], limit=1000)
        answer = {
            "listing": listing,
            "skill_paths": paths,
            "skill_file": turn.results[-1] if turn.results else "(no skill read)",
            "tools": turn.tools,
            "system_prompt_sha256": hashlib.sha256(turn.system.encode()).hexdigest()[:16],
        }
        return AIMessage(content=json.dumps(answer, indent=1))


def skill_file(name: str, description: str, body: str) -> str:
    """A SKILL.md as deepagents' SkillsMiddleware parses it (frontmatter name = folder name)."""
    return f"---\nname: {name}\ndescription: {SKILL_MARKER} {description}\n---\n\n{body}\n"


# A subagent with structured output.


class Grade(BaseModel):
    """A grader's verdict on one piece of work."""

    subject: str = Field(description="what was graded")
    score: int = Field(ge=0, le=10)
    verdict: str


class GraderModel(StepModel):
    """Answers through the structured-output tool `create_agent` offers for `Grade`."""

    def respond(self, turn: Turn) -> AIMessage:
        if not turn.results:
            score = len(turn.task.split()) % 11
            verdict = "publish" if score >= 5 else "revise"
            return _call("Grade", "grade-1", subject=turn.task, score=score, verdict=verdict)
        return AIMessage(content=turn.results[-1])


# The shape of deepagents' content-builder / nvidia examples: a researcher that searches, keeps
# its notes in files and answers briefly.


class ResearcherModel(StepModel):
    def respond(self, turn: Turn) -> AIMessage:
        path = f"/research/{slug(turn.task)}.md"
        if not turn.results:
            return _call("lookup_fact", "research-1", topic=turn.task)
        if len(turn.results) == 1:
            return _call("write_file", "research-2", file_path=path, content=turn.results[0] + "\n")
        return AIMessage(content=f"researched {turn.task!r}; notes in {path}")


@tool
def generate_cover(title: str) -> str:
    """Generate a cover image for a post (a stand-in for the example's image tool): the main
    agent's own tool, which no subagent spec lists."""
    return f"cover for {title!r}: 1200x630, {len(title) * 37 % 256} hue"


class Publication(BaseModel):
    """The main agent's own structured answer (its `response_format`) in the content-builder
    shape."""

    title: str
    path: str
    verdict: str


# The examples run subagents on provider models, and deepagents tunes a subagent's harness to
# its model (`HarnessProfile`: a system prompt suffix, tool description overrides, extra
# middleware). This model is identified as deepagents identifies Claude Sonnet 4.6 (provider
# `anthropic`, model `claude-sonnet-4-6`), whose profile adds a system prompt suffix, and
# reports what it was given.

PROFILED_MODEL = "claude-sonnet-4-6"


class ProfiledModel(StepModel):
    """Answers with its tools and the system prompt it was given, past the spec's own."""

    model_name: str = PROFILED_MODEL

    def _get_ls_params(self, stop: list[str] | None = None, **kwargs: Any) -> Any:
        params = super()._get_ls_params(stop=stop, **kwargs)
        params["ls_provider"] = "anthropic"
        params["ls_model_name"] = self.model_name
        return params

    def respond(self, turn: Turn) -> AIMessage:
        rest = turn.system.partition("\n\n")[2]
        answer = {
            "system_prompt_chars": len(turn.system),
            "after_the_specs_prompt": rest[:600],
            "tools": turn.tools,
        }
        return AIMessage(content=json.dumps(answer, indent=1))


# The general-purpose subagent runs on the main agent's model: one workers can import.


class GeneralModel(StepModel):
    """As the main agent, `delegate: <task>` goes to general-purpose and its answer comes back
    under `main:`; as general-purpose, it counts the task's words with the tool it inherited."""

    def respond(self, turn: Turn) -> AIMessage:
        if turn.task.startswith("delegate: "):
            if not turn.results:
                task = turn.task.removeprefix("delegate: ")
                return _call("task", "gp-1", description=task, subagent_type="general-purpose")
            return AIMessage(content=f"main: {turn.results[-1]}")
        if not turn.results and "count_words" in turn.tools:
            return _call("count_words", "gp-count", text=turn.task)
        return AIMessage(content=f"general-purpose: {turn.results[-1] if turn.results else 'no tool'}")


GENERAL = GeneralModel()


class RecallerModel(StepModel):
    """Answers with the conversation it was given: what it was asked and what it answered
    before. An async task's follow-up shows whether the subagent saw the run it continues."""

    def respond(self, turn: Turn) -> AIMessage:
        return AIMessage(content=json.dumps({"asked": turn.asked, "answered_before": turn.answers}))


# A subagent whose tool reads the main agent's store and runtime context (`runtime.store`,
# `runtime.context`) and leaves a note in the store.


@dataclasses.dataclass(frozen=True)
class Reader:
    """A `context_schema` that is a dataclass."""

    name: str
    shelf: str = "main"
    token: str = ""  # secret by its name (TASKFORCE_SECRET_KEYS)


class ReaderProfile(BaseModel):
    """A `context_schema` that is a pydantic model."""

    name: str
    level: int = 1
    card: SecretStr | None = None


@tool
def archive(topic: str, runtime: ToolRuntime) -> str:
    """Look a topic up in the library the store keeps, and note the visit there."""
    fields = context_as_mapping(runtime.context)
    # Secret values stay out of the answer: taskforce scrubs them from reports, by design.
    shown = {
        key: f"<secret {type(value).__name__}>" if isinstance(value, SecretStr) or key == "token" else value
        for key, value in fields.items()
    }
    store = runtime.store
    book = None
    if store is not None:
        found = store.get(("library", "books"), slug(topic))
        book = found.value if found else None
        store.put(("library", "visits"), slug(topic), {"topic": topic, "reader": fields.get("name")})
    answer = {
        "context_type": type(runtime.context).__name__,
        "context": shown,
        "store": type(store).__name__ if store is not None else None,
        "book": book,
    }
    return json.dumps(answer, sort_keys=True)


# The context-engineering guide's own examples (tests/parity/test_context_guide.py).


@tool(parse_docstring=True)
def search_orders(user_id: str, status: str, limit: int = 10) -> str:
    """Search for user orders by status.

    Use this when the user asks about order history or wants to check
    order status. Always filter by the provided status.

    Args:
        user_id: Unique identifier for the user
        status: Order status: 'pending', 'shipped', or 'delivered'
        limit: Maximum number of results to return
    """
    return f"{limit} {status} orders of {user_id}"


@tool
def fetch_user_data(query: str, config: RunnableConfig) -> str:
    """Fetch data for the current user."""
    user_id = config.get("context", {}).get("user_id")  # type: ignore[attr-defined]
    return f"Data for user {user_id}: {query}"


@tool
def fetch_user_data_from_runtime(query: str, runtime: ToolRuntime) -> str:
    """Fetch data for the current user, reading the runtime context."""
    user_id = context_as_mapping(runtime.context).get("user_id")
    return f"Data for user {user_id}: {query}"


@tool
def web_search(query: str) -> str:
    """Search the web (a fixed stand-in)."""
    return f"3 results for {query}: a, b, c"


class ClerkModel(StepModel):
    """Calls the first of the guide's user tools it was given, then answers with its result."""

    def respond(self, turn: Turn) -> AIMessage:
        if not turn.results:
            for name in ("fetch_user_data", "fetch_user_data_from_runtime"):
                if name in turn.tools:
                    return _call(name, "clerk-1", query=turn.task)
            if "search_orders" in turn.tools:
                return _call("search_orders", "clerk-1", user_id="user-123", status="shipped")
            return AIMessage(content="clerk: no tool")
        return AIMessage(content=f"clerk: {turn.results[-1]}")


class MemoModel(StepModel):
    """`remember: <text>` saves the text to /memories/user_preferences.txt; anything else reads
    that file and answers with what it holds."""

    def respond(self, turn: Turn) -> AIMessage:
        if not turn.results:
            if turn.task.startswith("remember: "):
                text = turn.task.removeprefix("remember: ")
                return _call("write_file", "memo-1", file_path=PREFERENCES, content=text)
            return _call("read_file", "memo-1", file_path=PREFERENCES)
        return AIMessage(content=f"memo: {turn.results[-1]}")


PREFERENCES = "/memories/user_preferences.txt"


@dataclasses.dataclass(frozen=True)
class ContextSchema:
    """The guide's static runtime context."""

    user_name: str


@dynamic_prompt
def personalized_prompt(request: ModelRequest) -> str:
    """The guide's `@dynamic_prompt`, also reading the store (`request.runtime.store`)."""
    user_name = cast(ContextSchema, request.runtime.context).user_name
    store = request.runtime.store
    found = store.get(("preferences",), user_name) if store is not None else None
    preference = found.value["style"] if found else "none"
    return f"You are a helpful assistant. Address the user as {user_name}. Preferred style: {preference}."


class EchoSystemModel(StepModel):
    """Answers with the system prompt it was given."""

    def respond(self, turn: Turn) -> AIMessage:
        return AIMessage(content=turn.system)


LARGE_RESULT_LINES = 3000


@tool
def export_table(table: str) -> str:
    """Export a whole table: far more than a context should hold."""
    return "\n".join(f"{table} row {index}: " + "x" * 40 for index in range(LARGE_RESULT_LINES))


class ExporterModel(StepModel):
    """Exports a table, then answers with the tool result it was shown (offloaded or not)."""

    def respond(self, turn: Turn) -> AIMessage:
        if not turn.results:
            return _call("export_table", "export-1", table=turn.task)
        return AIMessage(content=f"exporter saw: {turn.results[-1][:2000]}")


class CompactorModel(StepModel):
    """Calls `compact_conversation`, then answers with what it said; as the summarizer, it
    answers with a fixed summary."""

    def respond(self, turn: Turn) -> AIMessage:
        if "compact_conversation" not in turn.tools:
            return AIMessage(content="summary: the conversation so far")
        if not turn.results:
            return _call("compact_conversation", "compact-1")
        return AIMessage(content=f"compactor: {turn.results[-1]}")


COMPACTOR_MODEL = CompactorModel()


def _spec(name: str, model: BaseChatModel, tools: list[Any], **extra: Any) -> SubAgent:
    spec: dict[str, Any] = {
        "name": name,
        "description": f"parity subagent {name}",
        "system_prompt": f"You are the {name}. Answer briefly.",
        "model": model,
        "tools": tools,
        **extra,
    }
    return spec  # type: ignore[return-value]


ANALYST = _spec(
    "analyst", ToolUserModel(label="analyst", tool_name="count_words", argument="text"), [count_words]
)
REVERSER = _spec(
    "reverser", ToolUserModel(label="reverser", tool_name="reverse_words", argument="text"), [reverse_words]
)
FACT_CHECKER = _spec(
    "fact-checker",
    ToolUserModel(label="fact-checker", tool_name="lookup_fact", argument="topic"),
    [lookup_fact],
)
SCRIBE = _spec("scribe", ScribeModel(), [])
STYLIST = _spec("stylist", SkilledModel(), [], skills=["/skills/"])
GRADER = _spec("grader", GraderModel(), [], response_format=Grade)
RESEARCHER = _spec("content-researcher", ResearcherModel(), [lookup_fact])
EDITOR = _spec("editor", ProfiledModel(), [])
ARCHIVIST = _spec(
    "archivist", ToolUserModel(label="archivist", tool_name="archive", argument="topic"), [archive]
)
# Human approval: one with approvals of its own, one that takes everything from the main agent.
GATEKEEPER = _spec(
    "gatekeeper",
    ToolUserModel(label="gatekeeper", tool_name="count_words", argument="text"),
    [count_words],
    interrupt_on={"count_words": True},
)
RECALLER = _spec("recaller", RecallerModel(), [])
# The guide's: a spec without tools takes the main agent's; its researcher, as written there.
CLERK: SubAgent = {
    "name": "clerk",
    "description": "parity subagent clerk: uses the main agent's tools",
    "system_prompt": "You are the clerk. Answer briefly.",
    "model": ClerkModel(),
}
GUIDE_RESEARCHER: SubAgent = {
    "name": "researcher",
    "description": "Conducts research on a topic",
    "system_prompt": """You are a research assistant.
    IMPORTANT: Return only the essential summary (under 500 words).
    Do NOT include raw search results or detailed tool outputs.""",
    "tools": [web_search],
    "model": ToolUserModel(label="researcher", tool_name="web_search", argument="query"),
}
MEMO = _spec("memo", MemoModel(), [])
# Long-term memory written and read on different workers (test_context_guide.py).
MEMO_WRITER = _spec("memo-writer", MemoModel(), [], queue="memo-writer")
MEMO_READER = _spec("memo-reader", MemoModel(), [], queue="memo-reader")
CONCIERGE = _spec("concierge", EchoSystemModel(), [], middleware=[personalized_prompt])
EXPORTER = _spec("exporter", ExporterModel(), [export_table])
COMPACTOR = _spec(
    "compactor",
    COMPACTOR_MODEL,
    [],
    middleware=[create_summarization_tool_middleware(COMPACTOR_MODEL, workspace_backend())],
)
BARE: SubAgent = {
    "name": "bare",
    "description": "parity subagent bare: no tools, approvals or permissions of its own",
    "system_prompt": "You are the bare one. Answer briefly.",
    "model": ToolUserModel(label="bare", tool_name="count_words", argument="text"),
}

SUBAGENTS: list[SubAgent] = [
    ANALYST,
    REVERSER,
    FACT_CHECKER,
    SCRIBE,
    STYLIST,
    GRADER,
    RESEARCHER,
    EDITOR,
    GATEKEEPER,
    BARE,
    RECALLER,
    ARCHIVIST,
    CLERK,
    GUIDE_RESEARCHER,
    MEMO,
    MEMO_WRITER,
    MEMO_READER,
    CONCIERGE,
    EXPORTER,
    COMPACTOR,
]
SEPARATE_QUEUES = ("memo-writer", "memo-reader")
"""Queues the parity pool leaves to workers of their own (tests/parity/conftest.py)."""
