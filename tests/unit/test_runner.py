"""`run_delegation` end to end on real compiled subagents, with scripted models and fakeredis files."""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, cast

import fakeredis
import pytest
import redis
from deepagents.backends.protocol import WriteResult
from langchain.tools import ToolRuntime
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from pydantic import Field, SecretStr

from orchestrator.progress import describe_step
from shared.context import REDACTED
from shared.files import FilesBackend, read_text
from shared.files.memory import MemoryStore
from shared.guarded_model import ModelGuard, model_key
from shared.model_limits import ModelLimit
from shared.progress import WAITING_NODE, ProgressPublisher, ProgressReader
from shared.rate_limiter import PoolLimiter
from shared.schemas import Delegation, Inherited, Limits, Report
from shared.secrets import SecretBox, new_key
from shared.stores import SharedStore
from workers import runner as runner_module
from workers.conversations import Conversations
from workers.reporting import report_path
from workers.runner import Attempt, parse_delegation, run_delegation
from workers.subagents import SubagentCache

SECRET = "sk-live-5e4d3c2b1a"
BOX = SecretBox(SecretStr(new_key()))
ATTEMPT = Attempt(worker="celery@worker-3", number=2)


class ScriptedModel(BaseChatModel):
    """Answers `reply` (plus the last tool result, if any); first calls `tool_call` when set."""

    reply: str = "All done."
    tool_call: dict[str, Any] | None = None
    sleep_s: float = 0.0
    seen: list[list[BaseMessage]] = Field(default_factory=list)

    @property
    def _llm_type(self) -> str:
        return "scripted"

    def bind_tools(self, tools: Any, **kwargs: Any) -> ScriptedModel:  # type: ignore[override]
        return self

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        self.seen.append(list(messages))
        if self.sleep_s:
            time.sleep(self.sleep_s)
        results = [m for m in messages if isinstance(m, ToolMessage)]
        if self.tool_call is not None and not results:
            message = AIMessage(
                content="", tool_calls=[{**self.tool_call, "id": "call-1", "type": "tool_call"}]
            )
        else:
            text = f"{self.reply} {results[-1].text}" if results else self.reply
            message = AIMessage(
                content=text, usage_metadata={"input_tokens": 11, "output_tokens": 4, "total_tokens": 15}
            )
        return ChatResult(generations=[ChatGeneration(message=message)])


@tool
def login(runtime: ToolRuntime[dict[str, Any]]) -> str:
    """Log in to the upstream API."""
    key = runtime.context["api_key"]
    if isinstance(key, SecretStr):
        key = key.get_secret_value()
    raise PermissionError(f"login refused for key {key}")


@tool
def whoami(runtime: ToolRuntime[dict[str, Any]]) -> str:
    """Say which tenant this run is for."""
    return f"tenant={runtime.context['tenant']}"


@tool
def call_upstream() -> str:
    """Call a slow upstream API."""
    raise TimeoutError("upstream API timed out")


def spec(name: str, model: ScriptedModel, tools: list[Any] | None = None) -> dict[str, Any]:
    return {
        "name": name,
        "description": f"{name} agent",
        "system_prompt": "Do it.",
        "model": model,
        "tools": tools or [],
    }


def make_delegation(subagent_type: str, **overrides: Any) -> Delegation:
    limits: dict[str, Any] = {"timeout_s": 10.0, "report_max_chars": 300, "recursion_limit": 20}
    limits.update(overrides.pop("limits", {}))
    fields: dict[str, Any] = {
        "id": f"thread-1:{subagent_type}-call",
        "subagent_type": subagent_type,
        "description": "Find out why billing fails",
        "limits": Limits(**limits),
    }
    fields.update(overrides)
    return Delegation(**fields)


@pytest.fixture
def backend() -> FilesBackend:
    return FilesBackend(MemoryStore(uuid.uuid4().hex))


def run(delegation: Delegation, specs: list[dict[str, Any]], backend: FilesBackend) -> Report:
    return run_delegation(delegation, SubagentCache(specs, "offline", backend), backend, ATTEMPT)  # type: ignore[arg-type]


def test_ok_report(backend: FilesBackend) -> None:
    model = ScriptedModel(reply="Billing fails on expired cards.")

    report = run(make_delegation("analyst"), [spec("analyst", model)], backend)

    assert report.status == "ok"
    assert report.summary == "Billing fails on expired cards."
    assert report.delegation_id == "thread-1:analyst-call"
    assert report.subagent_type == "analyst"
    assert (report.worker, report.attempts) == ("celery@worker-3", 2)
    assert report.usage.total_tokens == 15
    assert report.full_report_path is None
    assert report.artifacts == ()


def test_the_subagent_starts_from_the_description_only(backend: FilesBackend) -> None:
    model = ScriptedModel()

    run(make_delegation("analyst"), [spec("analyst", model)], backend)

    humans = [m for m in model.seen[0] if isinstance(m, HumanMessage)]
    assert [m.text for m in humans] == ["Find out why billing fails"]
    assert not any(isinstance(m, AIMessage) for m in model.seen[0])


def test_tools_see_the_runtime_context(backend: FilesBackend) -> None:
    model = ScriptedModel(reply="Context:", tool_call={"name": "whoami", "args": {}})
    delegation = make_delegation("analyst", context={"tenant": "acme"})

    report = run(delegation, [spec("analyst", model, [whoami])], backend)

    assert report.status == "ok"
    assert report.summary == "Context: tenant=acme"
    assert report.usage.total_tokens == 15


@pytest.mark.parametrize("as_secret_str", [False, True])
def test_an_error_mentioning_a_secret_is_redacted(backend: FilesBackend, as_secret_str: bool) -> None:
    model = ScriptedModel(tool_call={"name": "login", "args": {}})
    delegation = make_delegation(
        "caller",
        secrets={"api_key": SecretStr(SECRET)},
        secret_str_keys=("api_key",) if as_secret_str else (),
    )

    report = run(delegation, [spec("caller", model, [login])], backend)

    assert report.status == "error"
    assert report.summary == f"PermissionError: login refused for key {REDACTED}"
    assert SECRET not in json.dumps(report.model_dump(mode="json"))
    assert (report.worker, report.attempts) == ("celery@worker-3", 2)


def test_a_secret_in_the_answer_is_redacted(backend: FilesBackend) -> None:
    model = ScriptedModel(reply=f"The key is {SECRET}.")
    delegation = make_delegation("analyst", secrets={"token": SecretStr(SECRET)})

    report = run(delegation, [spec("analyst", model)], backend)

    assert report.summary == f"The key is {REDACTED}."


def test_a_run_past_the_time_limit_is_a_timeout(backend: FilesBackend) -> None:
    model = ScriptedModel(sleep_s=3.0)
    delegation = make_delegation("slow", limits={"timeout_s": 0.5})

    report = run(delegation, [spec("slow", model)], backend)

    assert report.status == "timeout"
    assert report.summary == "no report after 0.5 s; the delegation was given up at its deadline"
    assert (report.worker, report.attempts) == ("celery@worker-3", 2)
    # The report goes back at the deadline, not when the blocked model call finally returns.
    assert report.duration_s < 2.5


def test_an_unknown_subagent_is_an_error_naming_the_known_ones(backend: FilesBackend) -> None:
    specs = [spec("analyst", ScriptedModel()), spec("writer", ScriptedModel())]

    report = run(make_delegation("ghost"), specs, backend)

    assert report.status == "error"
    assert report.summary.startswith("LookupError: this worker has no subagent 'ghost'")
    assert "it knows: analyst, writer" in report.summary


def test_a_long_answer_is_capped_and_kept_in_full(backend: FilesBackend) -> None:
    answer = "\n".join(f"finding {n}: something odd" for n in range(100))
    delegation = make_delegation("analyst", limits={"report_max_chars": 400})

    report = run(delegation, [spec("analyst", ScriptedModel(reply=answer))], backend)

    assert report.status == "ok"
    assert report.full_report_path == report_path(delegation)
    assert read_text(backend, report.full_report_path) == answer
    assert len(report.summary) <= 400
    assert report.summary.startswith("finding 0: something odd\n")
    assert report.full_report_path in report.summary
    # The report file is not also listed as something the subagent wrote.
    assert report.artifacts == ()


def test_files_the_subagent_writes_are_artifacts(backend: FilesBackend) -> None:
    model = ScriptedModel(
        reply="Wrote it:",
        tool_call={
            "name": "write_file",
            "args": {"file_path": "/out/findings.md", "content": "# Findings\n"},
        },
    )

    report = run(make_delegation("writer"), [spec("writer", model)], backend)

    assert report.status == "ok"
    assert report.artifacts == ("/out/findings.md",)
    assert read_text(backend, "/out/findings.md") == "# Findings\n"


def test_a_tool_raising_timeout_error_is_an_error_not_a_timeout(backend: FilesBackend) -> None:
    model = ScriptedModel(tool_call={"name": "call_upstream", "args": {}})

    report = run(make_delegation("caller"), [spec("caller", model, [call_upstream])], backend)

    assert report.status == "error"
    assert "upstream API timed out" in report.summary


def test_parse_delegation_accepts_a_wire_payload() -> None:
    delegation = make_delegation("analyst", secrets={"api_key": SecretStr(SECRET)})
    payload = json.loads(json.dumps(delegation.to_wire(BOX)))

    assert parse_delegation(payload, BOX) == delegation


@pytest.mark.parametrize(
    ("overrides", "named"),
    [
        ({"version": 1}, "version"),
        ({"id": f"bad id {SECRET}"}, "id"),
        ({"note": SECRET}, "note"),
        (
            {"limits": {"timeout_s": SECRET, "report_max_chars": 300, "recursion_limit": 2}},
            "limits.timeout_s",
        ),
    ],
)
def test_parse_delegation_names_the_problem_but_not_the_secret(overrides: dict[str, Any], named: str) -> None:
    payload = json.loads(
        json.dumps(make_delegation("analyst", secrets={"api_key": SecretStr(SECRET)}).to_wire(BOX))
    )
    payload.update(overrides)

    with pytest.raises(ValueError, match="rejected a malformed delegation") as caught:
        parse_delegation(payload, BOX)

    assert f"{named}:" in str(caught.value)
    assert SECRET not in str(caught.value)
    assert caught.value.__cause__ is None
    assert caught.value.__suppress_context__


def test_parse_delegation_of_something_that_is_not_a_dict() -> None:
    with pytest.raises(ValueError, match="payload:") as caught:
        parse_delegation(f"api_key={SECRET}", BOX)
    assert SECRET not in str(caught.value)


def test_an_async_tasks_follow_up_goes_on_from_the_run_it_continues(backend: FilesBackend) -> None:
    conversations = Conversations(fakeredis.FakeRedis(), "tf", ttl_s=60)
    model = ScriptedModel(reply=f"Expired cards; the key was {SECRET}.")
    cache = SubagentCache([spec("analyst", model)], "offline", backend)  # type: ignore[list-item]

    def run_in_task(delegation: Delegation) -> Report:
        return run_delegation(delegation, cache, backend, ATTEMPT, conversations=conversations)

    first = make_delegation("analyst", id="t:1", conversation="task-1", secrets={"k": SecretStr(SECRET)})
    assert run_in_task(first).status == "ok"
    follow_up = make_delegation(
        "analyst",
        id="t:2",
        description="Which cards?",
        conversation="task-1",
        continues="t:1",
        unanswered=("A question whose run was cancelled",),
        secrets={"k": SecretStr(SECRET)},
    )
    assert run_in_task(follow_up).status == "ok"

    seen = [(m.type, m.text) for m in model.seen[-1] if m.type != "system"]
    assert seen == [
        ("human", "Find out why billing fails"),
        ("ai", f"Expired cards; the key was {REDACTED}."),  # kept scrubbed, as it is at rest
        ("human", "A question whose run was cancelled"),
        ("human", "Which cards?"),
    ]
    assert [m.type for m in conversations.load("task-1", "t:2")][-2:] == ["human", "ai"]
    stored = cast(list[bytes], conversations._client.hvals(conversations.key("task-1")))
    assert SECRET.encode() not in b"".join(stored)

    gone = make_delegation("analyst", id="t:3", conversation="task-1", continues="t:never-ran")
    report = run_in_task(gone)
    assert report.status == "error"
    assert "no longer kept" in report.summary


# What the main agent's store and typed context become on a worker.


@dataclass(frozen=True)
class Tenancy:
    tenant: str
    seats: int


@tool
def recall(runtime: ToolRuntime[Tenancy]) -> str:
    """Recall what the store holds for this run's tenant."""
    if runtime.store is None:
        return f"no store; context is a {type(runtime.context).__name__}"
    item = runtime.store.get(("tenants",), runtime.context.tenant)
    return f"{type(runtime.context).__name__} {runtime.context.seats} seats: {item and item.value}"


def test_a_subagent_gets_the_store_and_the_typed_context_its_main_agent_has(backend: FilesBackend) -> None:
    server = fakeredis.FakeServer()
    store = SharedStore(
        fakeredis.FakeRedis(server=server), lambda: fakeredis.FakeAsyncRedis(server=server), "t"
    )
    store.put(("tenants",), "acme", {"plan": "gold"})
    specs = [spec("keeper", ScriptedModel(reply="", tool_call={"name": "recall", "args": {}}), [recall])]
    cache = SubagentCache(specs, "offline", backend, store=store)  # type: ignore[arg-type]
    typed = {"context": {"tenant": "acme", "seats": 3}, "context_type": "tests.unit.test_runner:Tenancy"}

    given = run_delegation(
        make_delegation("keeper", inherited=Inherited(store=True), **typed), cache, backend, ATTEMPT
    )
    withheld = run_delegation(make_delegation("keeper", **typed), cache, backend, ATTEMPT)

    assert given.summary == " Tenancy 3 seats: {'plan': 'gold'}"
    assert withheld.summary == " no store; context is a Tenancy"  # as deepagents without a store


class _RefusingBackend(FilesBackend):
    """Shared files that refuse every write, as a full disk or an unreachable bucket would."""

    def write(self, file_path: str, content: str) -> WriteResult:
        return WriteResult(error=f"permission denied: {file_path}")


def test_a_full_report_that_cannot_be_stored_is_an_error_report() -> None:
    refusing = _RefusingBackend(MemoryStore(uuid.uuid4().hex))
    delegation = make_delegation("analyst", limits={"report_max_chars": 200})

    report = run(delegation, [spec("analyst", ScriptedModel(reply="x" * 1000))], refusing)

    assert report.status == "error"
    assert report.summary.startswith("OSError: could not store the full report at /reports/analyst/")
    assert (report.worker, report.attempts) == (ATTEMPT.worker, ATTEMPT.number)


@tool
async def blocks_the_loop() -> str:
    """An async tool that blocks instead of awaiting."""
    time.sleep(1.5)
    return "woke"


def test_a_blocked_event_loop_is_given_up_at_the_deadline_and_said_so(
    backend: FilesBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The waiting thread's grace past the deadline, shortened for the test.
    monkeypatch.setattr(runner_module, "timing", lambda limits: SimpleNamespace(soft_limit_s=0.3))
    model = ScriptedModel(tool_call={"name": "blocks_the_loop", "args": {}})
    delegation = make_delegation("blocker", limits={"timeout_s": 0.1})

    started = time.monotonic()
    report = run(delegation, [spec("blocker", model, [blocks_the_loop])], backend)

    assert time.monotonic() - started < 1.4, "the waiter did not wait for the blocked loop"
    assert report.status == "timeout"
    assert "event loop was blocked" in report.summary


def test_a_model_call_that_waits_for_the_limits_says_so_on_the_progress_line_and_in_the_report(
    backend: FilesBackend, unit_redis: str
) -> None:
    client = redis.Redis.from_url(unit_redis)
    limiter = PoolLimiter(client, "tf")
    model = ScriptedModel(reply="Done.")
    one_at_a_time = {model_key(model): ModelLimit(max_concurrency=1)}
    cache = SubagentCache(
        [spec("analyst", model)],  # type: ignore[list-item]
        "offline",
        backend,
        guard=ModelGuard(limiter, tuple(one_at_a_time.items())),
    )
    elsewhere = limiter.admit(one_at_a_time, 1, None)  # another worker's call holds the one slot
    delegation = make_delegation("analyst", progress=True)

    def release_once_the_wait_shows() -> None:
        watcher = ProgressReader(client, "tf", delegation.id)
        while not watcher.read():
            pass
        time.sleep(0.3)
        limiter.release(elsewhere, None)

    threading.Thread(target=release_once_the_wait_shows, daemon=True).start()

    report = run_delegation(
        delegation,
        cache,
        backend,
        ATTEMPT,
        progress=lambda d: ProgressPublisher(client, "tf", d.id, [], ttl_s=60),
    )

    assert report.status == "ok"
    assert report.model_wait_s[model_key(model)] >= 0.3, "it waited until the other call ended"
    steps = ProgressReader(client, "tf", delegation.id).read(block=False)
    assert steps[0].node == WAITING_NODE
    assert describe_step(steps[0]).startswith(f"waiting for {model_key(model)}'s limits")
    assert [step.node for step in steps[1:]] == ["model"]
