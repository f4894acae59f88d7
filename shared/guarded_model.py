"""Every model call a worker or a main agent makes, under the pool's limits and retried as
providers need.

A chat model is guarded by giving it a subclass of its own class (same name, module and
behaviour) whose four call methods, `_generate`, `_agenerate`, `_stream` and `_astream`, wait
for the pool's capacity (`shared.rate_limiter`), run the provider's call, try again on a 429 or
an overloaded answer (`shared.provider_errors`) and give the provider's token count back to the
limiter. These are the methods every path of a chat model ends in (`invoke`, `stream`, their
async twins, summarization's own calls, structured output, a bound model), so no call of any
agent escapes, whether the model came as a string or an object; only the methods the class
itself implements are wrapped, so what LangChain falls back on for the others is unchanged.

What a delegation's calls waited and retried is collected in its `CallScope`, which the worker
opens around the run and reads into the report; its `deadline` bounds every wait.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import itertools
import json
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar

import redis
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import BaseMessage
from langchain_core.outputs import ChatGenerationChunk, ChatResult

from shared.bound import bound
from shared.budgets import Accounts
from shared.compat.langchain import ls_params
from shared.model_limits import ModelLimit, buckets_of
from shared.provider_errors import RATE_LIMITED, backoff_s, retried_as, retry_after_s, status_of
from shared.rate_limiter import Held, PoolLimiter
from shared.schemas import BudgetRef
from shared.settings import Settings

MAX_ATTEMPTS = 8
"""Attempts of one model call against 429s and overloaded answers, within its deadline."""
CHARS_PER_TOKEN = 4
"""How a call's tokens are estimated before the provider counts them."""

Model = TypeVar("Model", bound=BaseChatModel)


@dataclass
class CallScope:
    """What the model calls of one delegation waited and retried; safe across its threads."""

    deadline: float | None = None
    """`time.monotonic()` past which no call waits for capacity or a retry."""
    subagent: str = ""
    subagent_limits: Mapping[str, ModelLimit] = field(default_factory=dict)
    """Buckets of the subagent type's own (its spec's `model_limits`), by name; in Redis they
    are the type's alone (`subagent:<type>/<name>`)."""
    on_wait: Callable[[str, float], None] | None = None
    """Hears the model and the expected wait of each call that has to wait for capacity."""
    waited_s: dict[str, float] = field(default_factory=dict)
    """Seconds spent waiting for capacity, by model."""
    retries: Counter[tuple[str, str]] = field(default_factory=Counter)
    """Calls tried again, by model and what made them (a status, or a dropped connection)."""
    budgets: tuple[BudgetRef, ...] = ()
    """What the calls spend from, charged in `accounts`."""
    accounts: Accounts | None = None
    enforce_budgets: bool = True
    """A spent budget stops a subagent's next call; the main agent's calls go on, so that it
    can answer with what its subagents reported."""
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def waited(self, model: str, seconds: float) -> None:
        if seconds > 0:
            with self._lock:
                self.waited_s[model] = self.waited_s.get(model, 0.0) + seconds

    def retried(self, model: str, status: str) -> None:
        with self._lock:
            self.retries[(model, status)] += 1


_SCOPE: ContextVar[CallScope | None] = ContextVar("taskforce_call_scope", default=None)
_INSIDE: ContextVar[bool] = ContextVar("taskforce_inside_guarded_call", default=False)
"""Set while a guarded call runs: a model whose `_generate` streams through its own `_stream`
(ChatOpenAI with `streaming=True`) is admitted once, not twice."""


def call_scope(scope: CallScope) -> contextlib.AbstractContextManager[CallScope]:
    return bound(_SCOPE, scope)


@dataclass(frozen=True)
class ModelGuard:
    """The deployment's limits and the limiter that counts them; no limiter: retries only."""

    limiter: PoolLimiter | None = None
    limits: tuple[tuple[str, ModelLimit], ...] = ()


NO_LIMITS = ModelGuard()


def pool_guard(settings: Settings, client: Callable[[], redis.Redis]) -> ModelGuard:
    """The guard of every model these settings build, counting in `client()`'s Redis, which
    is only asked for when there are limits to count."""
    if not settings.model_limits:
        return NO_LIMITS
    limiter = PoolLimiter(client(), settings.queue_prefix, slot_lease_s=settings.model_slot_lease)
    return ModelGuard(limiter, tuple(settings.model_limits.items()))


def model_key(model: BaseChatModel, **kwargs: Any) -> str:
    """'provider:model', as LangSmith names them, which is how limits name a model."""
    params = ls_params(model, **kwargs)
    return f"{params.get('ls_provider') or 'unknown'}:{params.get('ls_model_name') or 'unknown'}"


def _estimated_tokens(messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]) -> int:
    text = sum(len(str(message.content)) for message in messages)
    tools = len(json.dumps(kwargs.get("tools", []), default=str))
    return max(1, (text + tools) // CHARS_PER_TOKEN)


def _usage_of(messages: Sequence[BaseMessage]) -> tuple[int, int] | None:
    """The provider's count of a call's input and output tokens, from its answer or its
    stream's chunks; None if it gave none."""
    counted = [usage for message in messages if (usage := getattr(message, "usage_metadata", None))]
    if not counted:
        return None
    return sum(int(usage["input_tokens"]) for usage in counted), sum(
        int(usage["output_tokens"]) for usage in counted
    )


class _Call:
    """One model call through its attempts: admission, release, the decision to try again."""

    def __init__(self, model: BaseChatModel, messages: Sequence[BaseMessage], kwargs: Mapping[str, Any]):
        guard: ModelGuard = type(model).taskforce_guard  # type: ignore[attr-defined]
        self._limiter = guard.limiter
        self._scope = _SCOPE.get()
        self.model = model_key(model, **kwargs)
        found = buckets_of(self.model, dict(guard.limits))
        if self._scope is not None:
            found |= {
                f"subagent:{self._scope.subagent}/{name}": limit
                for name, limit in buckets_of(self.model, self._scope.subagent_limits).items()
            }
        self._buckets = found
        self._messages = messages
        self._kwargs = kwargs
        self._held: Held | None = None

    @functools.cached_property
    def _estimate(self) -> int:
        """Only a limited call needs it, once for all its attempts."""
        return _estimated_tokens(self._messages, self._kwargs)

    @property
    def _deadline(self) -> float | None:
        return self._scope.deadline if self._scope is not None else None

    @property
    def _spends(self) -> bool:
        """The call's tokens are charged to budgets."""
        return self._scope is not None and self._scope.accounts is not None and bool(self._scope.budgets)

    def _check_budgets(self) -> None:
        scope = self._scope
        if scope is not None and scope.accounts is not None and scope.budgets and scope.enforce_budgets:
            scope.accounts.require_unspent(scope.budgets)

    def admit(self) -> None:
        self._check_budgets()
        if self._limiter is not None and self._buckets:
            with self._timing_the_wait():
                self._held = self._limiter.admit(self._buckets, self._estimate, self._deadline, self._on_wait)

    async def aadmit(self) -> None:
        if self._spends:  # Redis, off the loop; a call without budgets costs nothing here
            await asyncio.to_thread(self._check_budgets)
        if self._limiter is not None and self._buckets:
            with self._timing_the_wait():
                self._held = await self._limiter.aadmit(
                    self._buckets, self._estimate, self._deadline, self._on_wait
                )

    @property
    def _on_wait(self) -> Callable[[float], None] | None:
        hears = self._scope.on_wait if self._scope is not None else None
        return None if hears is None else functools.partial(hears, self.model)

    @contextlib.contextmanager
    def _timing_the_wait(self) -> Iterator[None]:
        """A wait counts however it ends: admitted, or cut off by the deadline."""
        started = time.monotonic()
        try:
            yield
        finally:
            if self._scope is not None:
                self._scope.waited(self.model, time.monotonic() - started)

    def release(self, used_tokens: int | None = None) -> None:
        if self._limiter is not None and self._held is not None:
            held, self._held = self._held, None
            self._limiter.release(held, used_tokens)

    def finish(self, answer: Sequence[BaseMessage]) -> None:
        """The call answered: the limiter and the run's budgets get the provider's count."""
        usage = _usage_of(answer)
        self.release(sum(usage) if usage is not None else None)
        scope = self._scope
        if usage is not None and scope is not None and scope.accounts is not None and scope.budgets:
            scope.accounts.charge(scope.budgets, self.model, *usage)

    async def afinish(self, answer: Sequence[BaseMessage]) -> None:
        if self._held is not None or self._spends:  # Redis, off the loop
            await asyncio.to_thread(self.finish, answer)

    def pause_before_retry(self, error: BaseException, attempt: int) -> float | None:
        """How long to wait before the next attempt; None: the error is the caller's."""
        self.release()
        counted_as = retried_as(error)
        if counted_as is None or attempt >= MAX_ATTEMPTS:
            return None
        pause = backoff_s(error, attempt)
        if self._deadline is not None and time.monotonic() + pause > self._deadline:
            return None
        if status_of(error) == RATE_LIMITED and self._limiter is not None and self._buckets:
            self._limiter.penalize(tuple(self._buckets), retry_after_s(error) or pause)
        if self._scope is not None:
            self._scope.retried(self.model, counted_as)
        return pause


def _inside() -> contextlib.AbstractContextManager[bool]:
    return bound(_INSIDE, True)


def _guard_generate(original: Callable[..., ChatResult]) -> Callable[..., ChatResult]:
    @functools.wraps(original)
    def _generate(self: BaseChatModel, messages: list[BaseMessage], *args: Any, **kwargs: Any) -> ChatResult:
        if _INSIDE.get():
            return original(self, messages, *args, **kwargs)
        call = _Call(self, messages, kwargs)
        for attempt in itertools.count(1):
            call.admit()
            try:
                with _inside():
                    result = original(self, messages, *args, **kwargs)
            except Exception as error:
                pause = call.pause_before_retry(error, attempt)
                if pause is None:
                    raise
                time.sleep(pause)
                continue
            except BaseException:
                call.release()
                raise
            call.finish([generation.message for generation in result.generations])
            return result
        raise AssertionError("unreachable")

    return _generate


def _guard_agenerate(original: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def _agenerate(
        self: BaseChatModel, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> ChatResult:
        if _INSIDE.get():
            return await original(self, messages, *args, **kwargs)  # type: ignore[no-any-return]
        call = _Call(self, messages, kwargs)
        for attempt in itertools.count(1):
            await call.aadmit()
            try:
                with _inside():
                    result: ChatResult = await original(self, messages, *args, **kwargs)
            except Exception as error:
                pause = call.pause_before_retry(error, attempt)
                if pause is None:
                    raise
                await asyncio.sleep(pause)
                continue
            except BaseException:
                call.release()
                raise
            await call.afinish([generation.message for generation in result.generations])
            return result
        raise AssertionError("unreachable")

    return _agenerate


def _guard_stream(original: Callable[..., Iterator[ChatGenerationChunk]]) -> Callable[..., Any]:
    """A stream is tried again only if the provider refused it before its first chunk."""

    @functools.wraps(original)
    def _stream(
        self: BaseChatModel, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> Iterator[ChatGenerationChunk]:
        if _INSIDE.get():
            yield from original(self, messages, *args, **kwargs)
            return
        call = _Call(self, messages, kwargs)
        try:
            for attempt in itertools.count(1):
                call.admit()
                chunks: list[BaseMessage] = []
                try:
                    for chunk in original(self, messages, *args, **kwargs):
                        chunks.append(chunk.message)
                        yield chunk
                except Exception as error:
                    pause = None if chunks else call.pause_before_retry(error, attempt)
                    if pause is None:
                        raise
                    time.sleep(pause)
                    continue
                call.finish(chunks)
                return
        finally:
            call.release()

    return _stream


def _guard_astream(original: Callable[..., AsyncIterator[ChatGenerationChunk]]) -> Callable[..., Any]:
    @functools.wraps(original)
    async def _astream(
        self: BaseChatModel, messages: list[BaseMessage], *args: Any, **kwargs: Any
    ) -> AsyncIterator[ChatGenerationChunk]:
        if _INSIDE.get():
            async for chunk in original(self, messages, *args, **kwargs):
                yield chunk
            return
        call = _Call(self, messages, kwargs)
        try:
            for attempt in itertools.count(1):
                await call.aadmit()
                chunks: list[BaseMessage] = []
                try:
                    async for chunk in original(self, messages, *args, **kwargs):
                        chunks.append(chunk.message)
                        yield chunk
                except Exception as error:
                    pause = None if chunks else call.pause_before_retry(error, attempt)
                    if pause is None:
                        raise
                    await asyncio.sleep(pause)
                    continue
                await call.afinish(chunks)
                return
        finally:
            call.release()

    return _astream


_GUARDS: dict[str, Callable[[Callable[..., Any]], Callable[..., Any]]] = {
    "_generate": _guard_generate,
    "_agenerate": _guard_agenerate,
    "_stream": _guard_stream,
    "_astream": _guard_astream,
}


@functools.lru_cache(maxsize=64)  # a guard per deployment's settings; main-run workers build many
def _guarded_class(base: type[BaseChatModel], guard: ModelGuard) -> type[BaseChatModel]:
    namespace: dict[str, Any] = {
        "__module__": base.__module__,
        "__qualname__": base.__qualname__,
        "__annotations__": {"taskforce_guard": ClassVar[ModelGuard], "taskforce_base": ClassVar[type]},
        "taskforce_guard": guard,
        "taskforce_base": base,
    }
    for name, wrap in _GUARDS.items():
        if getattr(base, name) is not getattr(BaseChatModel, name):
            namespace[name] = wrap(getattr(base, name))
    return type(base.__name__, (base,), namespace)


def guarded(model: Model, guard: ModelGuard) -> Model:
    """`model` itself, its calls guarded from now on. The object is changed in place rather than
    copied, so that whoever holds it (a test counting calls, an agent given it) holds the guarded
    one; guarding it again only changes the guard."""
    base: type[BaseChatModel] = getattr(type(model), "taskforce_base", type(model))
    model.__class__ = _guarded_class(base, guard)  # type: ignore[assignment]
    return model


def is_guarded(model: BaseChatModel) -> bool:
    return hasattr(type(model), "taskforce_guard")
