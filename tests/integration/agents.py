"""Subagents for the integration tests, imported by the test process and by real workers
(`TASKFORCE_SUBAGENTS=tests.integration.agents:SUBAGENTS`).

Their models are deterministic functions of what they receive, not scripts: one instance per
agent serves many delegations at once on a worker, so it must hold no per-run state.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import signal
import socket
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import redis
from langchain.tools import ToolRuntime
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import BaseTool, tool
from pydantic import BaseModel, ConfigDict, SecretStr

from shared.context import context_as_mapping
from shared.settings import Settings


class _DeterministicModel(BaseChatModel):
    delay_s: float = 0.0
    tool_name: str | None = None

    @property
    def _llm_type(self) -> str:
        return "taskforce-test"

    def bind_tools(
        self, tools: Sequence[dict[str, Any] | type | Callable[..., Any] | BaseTool], **_: Any
    ) -> Any:
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        time.sleep(self.delay_s)
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])

    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if self.tool_name and not results:
            return AIMessage(content="", tool_calls=[{"name": self.tool_name, "args": {}, "id": "call-1"}])
        if results:
            return AIMessage(content=str(results[-1].content))
        seen = {
            "messages": [[m.type, m.content if m.type != "system" else ""] for m in messages],
            "pid": os.getpid(),
            "host": socket.gethostname(),
        }
        return AIMessage(
            content=json.dumps(seen),
            usage_metadata={"input_tokens": 7, "output_tokens": 3, "total_tokens": 10},
        )


@tool
def show_context(runtime: ToolRuntime) -> str:
    """Report the runtime context this subagent received, secrets included on purpose: the
    worker must scrub them from whatever leaves it."""
    context: dict[str, Any] = runtime.context or {}
    shown = {
        key: (value.get_secret_value() if isinstance(value, SecretStr) else value)
        for key, value in context.items()
    }
    kinds = {key: type(value).__name__ for key, value in context.items()}
    return json.dumps({"context": shown, "kinds": kinds, "pid": os.getpid()})


@tool
def explode(runtime: ToolRuntime) -> str:
    """Fail, mentioning a secret in the error, as careless tools do."""
    context: dict[str, Any] = runtime.context or {}
    secret = context.get("api_key")
    value = secret.get_secret_value() if isinstance(secret, SecretStr) else secret
    raise RuntimeError(f"cannot reach the service with key {value}")


@tool
def show_limits(runtime: ToolRuntime) -> str:
    """Report the recursion limit this subagent runs under."""
    return json.dumps({"recursion_limit": runtime.config.get("recursion_limit")})


class _BurningModel(_DeterministicModel):
    """Spends `cpu_s` of its thread's CPU time before answering: a subagent whose work is
    Python, not waiting (parsing, scoring, local tools), for the benchmarks."""

    cpu_s: float = 0.2

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **_: Any
    ) -> ChatResult:
        until = time.thread_time() + self.cpu_s
        while time.thread_time() < until:
            sum(range(1000))
        return ChatResult(generations=[ChatGeneration(message=self.respond(messages))])


# Context economy (bench.economy): a subagent asked to digest a large document at length.

DIGEST_CHARS = 50 * 1024
_INPUT_PATH = re.compile(r"/inputs/\S+")


class _DigestingModel(_DeterministicModel):
    """Reads the whole input file its task names, then answers with a DIGEST_CHARS digest."""

    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        task = next(str(m.content) for m in messages if m.type == "human")
        if not any(isinstance(m, ToolMessage) for m in messages):
            found = _INPUT_PATH.search(task)
            path = found.group(0) if found else "/inputs/missing.txt"
            return _call("read_file", "read-1", file_path=path, offset=0, limit=100_000)
        line = f"a finding of the digest of {task[:60]}\n"
        return AIMessage(content=(line * (DIGEST_CHARS // len(line) + 1))[:DIGEST_CHARS])


class _VerboseModel(_DeterministicModel):
    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        return AIMessage(content="".join(f"line {n:05d} of a long report\n" for n in range(400)))


def _call(name: str, call_id: str, **args: Any) -> AIMessage:
    return AIMessage(content="", tool_calls=[{"name": name, "args": args, "id": call_id}])


# Offloading: a tool result far over deepagents' eviction limit (20,000 tokens).

DATASET_ROWS = 20_000
OFFLOADED_DATASET = "/large_tool_results/fetch-1"


def dataset_row(number: int) -> str:
    return (
        f"row {number:05d}: sensor={number % 97:02d} reading={number * 7 % 1000:03d} status=ok {'~' * 20}\n"
    )


@tool
def fetch_dataset() -> str:
    """Return the whole sensor dataset, about 1.2 MB of text."""
    return "".join(dataset_row(number) for number in range(DATASET_ROWS))


class _OffloadingModel(_DeterministicModel):
    """Fetches the dataset, reads the start of the file it was offloaded to, and reports how
    much of the result its own context held."""

    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            return _call("fetch_dataset", "fetch-1")
        if len(results) == 1:
            return _call("read_file", "read-1", file_path=OFFLOADED_DATASET, offset=0, limit=2)
        return AIMessage(
            content=f"The dataset is in {OFFLOADED_DATASET}. It begins:\n{results[-1].content}\n"
            f"The fetch result in my context was {len(str(results[0].content))} chars."
        )


# Summarization: a history that outgrows a small context window.

NOTES = 12
_NOTE = re.compile(r"note (\d+) of the investigation")


@tool
def take_note(number: int) -> str:
    """Record one numbered note of the investigation."""
    return f"note {number} of the investigation: " + "detail " * 400


class _NoteTakingModel(_DeterministicModel):
    """Takes NOTES notes, one per turn; also writes the summaries when deepagents asks for one."""

    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        text = "\n".join(str(m.content) for m in messages)
        taken = max((int(n) for n in _NOTE.findall(text)), default=0)
        if "Context Extraction Assistant" in str(messages[-1].content):
            return AIMessage(content=f"Summary: note {taken} of the investigation was the last one taken.")
        if taken < NOTES:
            return _call("take_note", f"note-{taken + 1}", number=taken + 1)
        summarized = any(str(m.content).find("Summary: note") >= 0 for m in messages)
        return AIMessage(content=f"took {NOTES} notes; summarized={summarized}")


# Memory and skills, loaded from the shared files by the worker.

MARKER = "taskforce-test"


class PromptQuotingModel(_DeterministicModel):
    """Answers with the lines of its system prompt that carry the test marker."""

    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        system = "\n".join(str(m.content) for m in messages if m.type == "system")
        return AIMessage(content="\n".join(line for line in system.splitlines() if MARKER in line))


# Long-term memory: one run writes /memories/, a later run on another worker reads it.

PREFERENCES = "/memories/prefs.md"


class _MemoWriterModel(_DeterministicModel):
    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        if not any(isinstance(m, ToolMessage) for m in messages):
            task = next(str(m.content) for m in messages if m.type == "human")
            return _call("write_file", "write-1", file_path=PREFERENCES, content=task)
        return AIMessage(content=f"saved to {PREFERENCES}")


class _MemoReaderModel(_DeterministicModel):
    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if not results:
            return _call("read_file", "read-1", file_path=PREFERENCES)
        return AIMessage(content=f"{PREFERENCES} says: {results[-1].content}")


def _counters() -> redis.Redis:
    """The Redis the worker runs on, where the subagents below count what they did."""
    url = Settings().redis_url
    assert url is not None, "a worker always has a Redis"
    return redis.Redis.from_url(url)


# Faults: a subagent whose body counts its runs in Redis and does what its task says.

RUNS_PREFIX = "taskforce-test:runs:"
_SLEEP = re.compile(r"sleep=([\d.]+)")


@tool
def run_counted(runtime: ToolRuntime) -> str:
    """Count this run in Redis, then act on the task: `sleep=N` sleeps N seconds, `die` kills
    the worker process (a poison delegation), `hang` blocks in sync code for an hour."""
    task = next(str(m.content) for m in runtime.state["messages"] if m.type == "human")
    runs = _counters().incr(RUNS_PREFIX + task)
    if "die" in task:
        os.kill(os.getpid(), signal.SIGKILL)
    if "hang" in task:
        time.sleep(3600)
    if sleep := _SLEEP.search(task):
        time.sleep(float(sleep.group(1)))
    return f"run {runs} of {task!r} in pid {os.getpid()}"


# Background tasks: a subagent that ticks, counting each tick in Redis, until it has ticked
# TICKS times or is stopped, so a test sees a cancelled one stop.

TICKS_PREFIX = "taskforce-test:ticks:"
TICKS = 40
TICK_S = 0.3


@tool
def tick(runtime: ToolRuntime) -> str:
    """Count one tick of this task in Redis, then take a moment."""
    task = next(str(m.content) for m in runtime.state["messages"] if m.type == "human")
    ticks = _counters().incr(TICKS_PREFIX + task)
    time.sleep(TICK_S)
    return f"tick {ticks}"


class _TickingModel(_DeterministicModel):
    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        ticked = sum(isinstance(m, ToolMessage) for m in messages)
        if ticked < TICKS:
            return _call("tick", f"tick-{ticked + 1}")
        return AIMessage(content=f"ticked {ticked} times")


# Human approval: a tool that counts its runs, so a test knows it ran only once it was approved.

EMAILS_KEY = "taskforce-test:emails"


@tool
def send_email(runtime: ToolRuntime, to: str = "bob") -> str:
    """Send an email (counted in Redis)."""
    sent = _counters().incr(EMAILS_KEY)
    return f"sent email {sent} to {to}"


class Delegating(_DeterministicModel):
    """A main agent's model that workers can import: `delegate: <task>` sends the task to
    general-purpose and answers with its report; as general-purpose itself it answers with what
    it saw, and where."""

    def respond(self, messages: list[BaseMessage]) -> AIMessage:
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if results:
            return AIMessage(content=str(results[-1].content))
        task = str(messages[-1].content)
        if task.startswith("delegate: "):
            args = {"description": task.removeprefix("delegate: "), "subagent_type": "general-purpose"}
            return _call("task", "gp-1", **args)
        return super().respond(messages)


DELEGATING = Delegating()


# The main agent's store and a typed runtime context, as subagent tools on workers see them.


@dataclasses.dataclass(frozen=True)
class Tenancy:
    """A `context_schema` that is a dataclass."""

    tenant: str
    seats: int = 1
    token: str = ""  # secret by its name (TASKFORCE_SECRET_KEYS)


class TenantProfile(BaseModel):
    """A `context_schema` that is a pydantic model, whose extra keys may be namespaced."""

    model_config = ConfigDict(extra="allow")

    tenant: str
    depth: int = 1
    vault: SecretStr | None = None


@tool
def inspect_runtime(runtime: ToolRuntime) -> str:
    """Report the context and the store this subagent got, secrets included on purpose (the
    worker must scrub them), and leave a visit in the store under ("visits", <task>)."""
    fields = context_as_mapping(runtime.context)
    seen: dict[str, Any] = {
        "context_type": type(runtime.context).__name__,
        "context": {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in fields.items()},
        "kinds": {k: type(v).__name__ for k, v in fields.items()},
        "pid": os.getpid(),
        "store": None,
    }
    store = runtime.store
    if store is not None:
        task = next(str(m.content) for m in runtime.state["messages"] if m.type == "human")
        seen["store"] = {
            "type": type(store).__name__,
            "seeded": {item.key: item.value for item in store.search(("seeded", task))},
        }
        store.put(("visits", task), uuid.uuid4().hex, {"pid": os.getpid()})
    return json.dumps(seen)


def _spec(name: str, model: BaseChatModel, tools: list[Any] | None = None, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"test subagent {name}",
        "model": model,
        "tools": tools or [],
        **extra,
    }


SUBAGENTS = [
    _spec("inspector", _DeterministicModel()),
    _spec("sleeper", _DeterministicModel(delay_s=1.0)),
    _spec("slowpoke", _DeterministicModel(delay_s=30.0)),
    _spec("burner", _BurningModel()),
    _spec("digester", _DigestingModel()),
    _spec("researcher", _DeterministicModel(tool_name="show_context"), [show_context]),
    _spec("writer", _DeterministicModel(tool_name="show_context"), [show_context]),
    _spec("crasher", _DeterministicModel(tool_name="explode"), [explode]),
    _spec("limits", _DeterministicModel(tool_name="show_limits"), [show_limits]),
    _spec("verbose", _VerboseModel()),
    _spec("offloader", _OffloadingModel(), [fetch_dataset]),
    _spec("note-taker", _NoteTakingModel(profile={"max_input_tokens": 4000}), [take_note]),
    _spec("librarian", PromptQuotingModel(), skills=["/skills/"], memory=["/memories/AGENTS.md"]),
    _spec("memo-writer", _MemoWriterModel()),
    _spec("memo-reader", _MemoReaderModel()),
    _spec("counted", _DeterministicModel(tool_name="run_counted"), [run_counted]),
    _spec("ticker", _TickingModel(), [tick]),
    # Routed by its spec to a queue named apart from it.
    _spec("pooled", _DeterministicModel(), queue="shared-pool"),
    _spec(
        "mailer", _DeterministicModel(tool_name="send_email"), [send_email], interrupt_on={"send_email": True}
    ),
    # Takes tools, approvals and permissions from the main agent, as deepagents' specs do.
    {
        "name": "bare-mailer",
        "description": "test subagent bare-mailer",
        "model": _DeterministicModel(tool_name="send_email"),
    },
    {"name": "scribe", "description": "test subagent scribe", "model": _MemoWriterModel(), "tools": []},
    _spec("keeper", _DeterministicModel(tool_name="inspect_runtime"), [inspect_runtime]),
    _spec("visitor", _DeterministicModel(tool_name="inspect_runtime"), [inspect_runtime]),
]
DEDICATED = ("memo-writer", "memo-reader")
"""Served only by workers a test starts for them, so the test knows which process ran each."""
