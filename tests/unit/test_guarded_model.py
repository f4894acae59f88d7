"""A guarded model through the real langchain-openai client, against the fake provider on
loopback: 429s and overloaded answers are tried again as the provider asks, other errors are
not, the deadline bounds it all, and every way of calling a model passes the limiter once."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import httpx
import openai
import pytest
import redis
from langchain_openai import ChatOpenAI

from shared.guarded_model import NO_LIMITS, CallScope, ModelGuard, call_scope, guarded, model_key
from shared.model_limits import ModelLimit
from shared.models import make_model
from shared.rate_limiter import PoolLimiter
from tests.support.environment import exported
from tests.support.fake_provider import FakeProvider


@pytest.fixture(scope="module")
def provider() -> Iterator[FakeProvider]:
    with FakeProvider(retry_after_s=0.2) as provider:
        yield provider


@pytest.fixture(autouse=True)
def _fresh(provider: FakeProvider) -> None:
    provider.reset()
    provider.configure(fail_first=[], max_in_flight=1_000_000, latency_s=0.0, retry_after_s=0.2)


def _model(
    provider: FakeProvider,
    guard: ModelGuard = NO_LIMITS,
    http: httpx.AsyncClient | None = None,
    **options: object,
) -> ChatOpenAI:
    """`http`: async connections of the test's own loop, closed with it; langchain-openai would
    otherwise share one pool by base URL across the tests' loops."""
    model = ChatOpenAI(
        model="m",
        api_key="sk-test",  # type: ignore[arg-type]
        base_url=provider.base_url,
        max_retries=0,
        http_async_client=http,
        **options,  # type: ignore[arg-type]
    )
    return guarded(model, guard)


def test_a_429_is_tried_again_after_its_retry_after_and_counted(provider: FakeProvider) -> None:
    provider.configure(fail_first=[429, 429])
    scope = CallScope()
    started = time.monotonic()

    with call_scope(scope):
        answer = _model(provider).invoke("hello")

    assert answer.text
    assert provider.stats().calls == 3
    assert scope.retries == {("openai:m", "429"): 2}
    assert time.monotonic() - started >= 0.4, "each retry waited the Retry-After of 0.2 s"


def test_overloaded_answers_are_tried_again_and_a_bad_request_is_not(provider: FakeProvider) -> None:
    provider.configure(fail_first=[503, 529, 500])
    assert _model(provider).invoke("hello").text
    assert provider.stats().calls == 4

    provider.reset()
    provider.configure(fail_first=[400])
    with pytest.raises(openai.BadRequestError):
        _model(provider).invoke("hello")
    assert provider.stats().calls == 1


def test_retries_stop_at_the_deadline_with_the_providers_error(provider: FakeProvider) -> None:
    provider.configure(fail_first=[429] * 20, retry_after_s=1.0)

    with call_scope(CallScope(deadline=time.monotonic() + 0.5)), pytest.raises(openai.RateLimitError):
        _model(provider).invoke("hello")
    assert provider.stats().calls == 1, "a Retry-After past the deadline is not waited for"


def test_async_calls_and_streams_are_retried_too(provider: FakeProvider) -> None:
    async def calls() -> tuple[str, str]:
        async with httpx.AsyncClient() as http:
            model = _model(provider, http=http)
            provider.configure(fail_first=[429])
            invoked = await model.ainvoke("hello")
            provider.configure(fail_first=[503])
            streamed = "".join([chunk.text async for chunk in model.astream("hello")])
            return invoked.text, streamed

    invoked, streamed = asyncio.run(calls())

    assert invoked
    assert streamed
    provider.configure(fail_first=[502])
    assert "".join(chunk.text for chunk in _model(provider).stream("hello")) == streamed
    assert provider.stats().refused == {"429": 1, "503": 1, "502": 1}


def test_a_model_that_streams_inside_generate_holds_one_slot_not_two(
    provider: FakeProvider, unit_redis: str
) -> None:
    """ChatOpenAI(streaming=True) answers `invoke` through its own `_stream`: admitted twice
    under a cap of one, it would wait for itself forever."""
    limiter = PoolLimiter(redis.Redis.from_url(unit_redis), "tfunit")
    guard = ModelGuard(limiter, (("openai:m", ModelLimit(max_concurrency=1)),))

    async def ainvoke() -> str:
        async with httpx.AsyncClient() as http:
            return (await _model(provider, guard, http, streaming=True).ainvoke("hello")).text

    with call_scope(CallScope(deadline=time.monotonic() + 5)):
        assert _model(provider, guard, streaming=True).invoke("hello").text
        assert asyncio.run(ainvoke())


def test_the_limiter_gets_the_providers_token_count_in_place_of_its_estimate(
    provider: FakeProvider, unit_redis: str
) -> None:
    client = redis.Redis.from_url(unit_redis)
    guard = ModelGuard(PoolLimiter(client, "tfunit"), (("openai:m", ModelLimit(tokens_per_minute=10_000)),))
    answer = _model(provider, guard).invoke("x" * 4000)

    counts = [int(value) for value in client.hvals("tfunit:limits:openai:m:counts")]
    assert answer.usage_metadata is not None
    assert counts == [answer.usage_metadata["total_tokens"]]


def test_concurrent_calls_never_pass_the_cap_and_their_waits_are_counted(
    provider: FakeProvider, unit_redis: str
) -> None:
    provider.configure(latency_s=0.1)
    limiter = PoolLimiter(redis.Redis.from_url(unit_redis), "tfunit")
    guard = ModelGuard(limiter, (("openai:*", ModelLimit(max_concurrency=2)),))
    scope = CallScope()

    async def calls() -> None:
        async with httpx.AsyncClient() as http:
            model = _model(provider, guard, http)
            with call_scope(scope):
                await asyncio.gather(*(model.ainvoke(f"hello {n}") for n in range(8)))

    asyncio.run(calls())

    assert provider.stats().max_in_flight == 2
    assert provider.stats().ok == 8
    assert scope.waited_s["openai:m"] > 0


def test_guarding_keeps_the_object_its_class_name_and_its_provider_key(provider: FakeProvider) -> None:
    plain = ChatOpenAI(model="m", api_key="sk-test", base_url=provider.base_url)  # type: ignore[arg-type]
    model = guarded(plain, NO_LIMITS)

    assert model is plain
    assert isinstance(model, ChatOpenAI)
    assert type(model).__name__ == "ChatOpenAI"
    assert model.get_name() == "ChatOpenAI"
    assert model_key(model) == "openai:m"
    assert type(guarded(model, NO_LIMITS)) is type(model), "guarding twice changes nothing"


def test_models_built_from_strings_leave_retries_to_the_guard_unless_told_otherwise() -> None:
    with exported({"OPENAI_API_KEY": "sk-test", "OPENAI_BASE_URL": "http://127.0.0.1:9/v1"}):
        default = make_model("openai:m")
        chosen = make_model("openai:m", {"max_retries": 4})

    assert isinstance(default, ChatOpenAI)
    assert isinstance(chosen, ChatOpenAI)
    assert (default.max_retries, chosen.max_retries) == (0, 4)


def test_a_refused_connection_is_tried_again_as_the_clients_own_retries_would(provider: FakeProvider) -> None:
    """What langchain-openai's `max_retries` covered, which models built from strings leave off."""
    unreachable = ChatOpenAI(model="m", api_key="sk-test", base_url="http://127.0.0.1:9/v1", max_retries=0)  # type: ignore[arg-type]
    scope = CallScope(deadline=time.monotonic() + 1.5)

    with call_scope(scope), pytest.raises(openai.APIConnectionError):
        guarded(unreachable, NO_LIMITS).invoke("hello")

    assert scope.retries[("openai:m", "connection")] >= 1
