"""Which provider errors a model call tries again, and after how long.

A provider answers 429 when a limit is reached and 500, 502, 503, 504 or 529 (Anthropic's
"overloaded") when it is short of capacity, and a connection drops or times out now and then:
all of these pass, so the call waits and asks again, honouring `Retry-After` (or
`retry-after-ms`); these are what the provider SDKs' own retries cover, which taskforce turns
off for the models it builds (`shared.models`). Every other error (a bad request, a wrong
key, a refusal) is the caller's to see at once, as without taskforce. The status is read from
the error the provider's SDK raises (`status_code`, or its `response`), so the rule holds for
every client built on httpx, OpenAI's and Anthropic's among them.
"""

from __future__ import annotations

import random

import httpx

RETRIED_STATUSES = frozenset({429, 500, 502, 503, 504, 529})
RATE_LIMITED = 429
BACKOFF_BASE_S = 0.5
BACKOFF_CAP_S = 30.0


CONNECTION = "connection"
"""How a retry after a dropped or timed-out connection is counted, for want of a status."""
_CONNECTION_ERRORS = frozenset({"APIConnectionError", "APITimeoutError"})
"""The SDKs' own names (OpenAI's, Anthropic's) for a call that never got an answer."""


def status_of(error: BaseException) -> int | None:
    status = getattr(error, "status_code", None)
    if status is None:
        status = getattr(getattr(error, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def retried_as(error: BaseException) -> str | None:
    """What a retried error is counted as (its status, or `CONNECTION`); None: not retried."""
    status = status_of(error)
    if status in RETRIED_STATUSES:
        return str(status)
    if isinstance(error, httpx.TransportError) or _CONNECTION_ERRORS & {
        kind.__name__ for kind in type(error).__mro__
    }:
        return CONNECTION
    return None


def retry_after_s(error: BaseException) -> float | None:
    """What the provider asked the caller to wait, if it said."""
    headers = getattr(getattr(error, "response", None), "headers", None)
    if headers is None:
        return None
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = headers.get(name)
        if value is None:
            continue
        try:
            return max(0.0, float(value) * scale)
        except ValueError:
            continue  # an HTTP date: rare from model providers, and the backoff covers it
    return None


def backoff_s(error: BaseException, attempt: int) -> float:
    """Exponential backoff with full jitter, never shorter than the provider asked."""
    jittered = random.uniform(0, min(BACKOFF_CAP_S, BACKOFF_BASE_S * 2 ** (attempt - 1)))
    return max(jittered, retry_after_s(error) or 0.0)
