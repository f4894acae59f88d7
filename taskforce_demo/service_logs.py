"""Synthetic web-service logs for ``taskforce demo``.

The demo has to run offline and tell the same story on every machine, so it
ships its own data: one day of request logs per service, generated from a seed
derived from the service name.  The services differ on purpose (error rates,
slow endpoints, recurring failures, incidents at different times) so that the
analysis a subagent runs (``taskforce_demo.log_analysis``) has something worth
reporting.
"""

from __future__ import annotations

import math
import random
import zlib
from bisect import bisect_right
from dataclasses import dataclass
from datetime import datetime, timedelta
from itertools import accumulate
from typing import Final, TypeVar

# Baseline error rate per service.  Spelled out rather than drawn at random
# because the demo promises a spread (mostly healthy, a few noisy, two bad)
# and a random draw could not guarantee it.  The analysed rate comes out
# higher than the baseline because of the planted incidents.
_BASELINE_ERROR_RATES: Final[dict[str, float]] = {
    "auth-api": 0.002,
    "billing": 0.003,
    "search": 0.012,
    "checkout": 0.002,
    "inventory": 0.003,
    "notifications": 0.004,
    "payments": 0.002,
    "user-profile": 0.002,
    "catalog": 0.002,
    "shipping": 0.010,
    "recommendations": 0.018,
    "media-upload": 0.055,
    "analytics-ingest": 0.012,
    "gateway": 0.003,
    "orders": 0.002,
    "reviews": 0.003,
    "pricing": 0.002,
    "sessions": 0.002,
    "reports": 0.008,
    "webhooks": 0.065,
    "geo-lookup": 0.010,
    "email-sender": 0.015,
    "feature-flags": 0.002,
    "audit-log": 0.003,
}

SERVICES: Final[tuple[str, ...]] = tuple(_BASELINE_ERROR_RATES)

# Every log covers one UTC day from this instant, so hours and incident times
# read naturally in the report.  Naive, so that ``isoformat`` leaves room for
# the ``Z`` suffix instead of writing ``+00:00``.
_LOG_START: Final = datetime(2026, 11, 1)
_LOG_MINUTES: Final = 24 * 60
_MIN_SIZE: Final = 120_000
_MAX_SIZE: Final = 950_000

_ENDPOINT_TEMPLATES: Final = (
    ("GET", "/v1/{r}"),
    ("GET", "/v1/{r}/{id}"),
    ("POST", "/v1/{r}"),
    ("PUT", "/v1/{r}/{id}"),
    ("DELETE", "/v1/{r}/{id}"),
    ("GET", "/v1/{r}/search"),
    ("POST", "/v1/{r}/batch"),
    ("GET", "/v1/{r}/export"),
    ("GET", "/v1/{r}/{id}/history"),
    ("POST", "/v1/{r}/{id}/sync"),
    ("GET", "/v2/{r}"),
    ("GET", "/healthz"),
)
_SUCCESS: Final = {
    "GET": (200, "ok"),
    "POST": (201, "created"),
    "PUT": (200, "updated"),
    "DELETE": (204, "deleted"),
}
_TIMEOUT_MESSAGE: Final = "upstream timeout"
_SERVER_ERRORS: Final = (
    (_TIMEOUT_MESSAGE, 504),
    ("db connection reset", 500),
    ("connection pool exhausted", 503),
    ("deadlock detected", 500),
    ("bad gateway from upstream", 502),
    ("circuit breaker open", 503),
    ("cache cluster unavailable", 503),
    ("unhandled exception in handler", 500),
)
# Client mistakes are logged as WARN: they are not the service's fault and
# must not inflate its error rate.
_CLIENT_ERRORS: Final = (
    ("invalid token", 401),
    ("rate limit exceeded", 429),
    ("validation failed", 422),
    ("resource not found", 404),
)
# Recurring errors are skewed: one failure mode usually dominates a service.
_ERROR_SKEW: Final = (5.0, 3.0, 2.0, 1.0)
_SLOW_REQUEST_MS: Final = 1_500
_DEBUG_SHARE: Final = 0.03
_LATENCY_SIGMA: Final = 0.55
# Clients retry during an outage, so traffic rises while things are broken.
_INCIDENT_TRAFFIC: Final = 1.5
# On top of the baseline, so that even a noisy service's outage stands out.
_INCIDENT_EXTRA_ERRORS: Final = (0.3, 0.5)
# An outage usually has one cause, which then tops the error list.
_INCIDENT_DOMINANT_SHARE: Final = 0.7
_TWO_INCIDENT_SHARE: Final = 0.3
# Characters of a line besides the service name and the path.
_LINE_OVERHEAD: Final = 74


@dataclass(frozen=True)
class _Endpoint:
    method: str
    path: str
    latency_factor: float


@dataclass(frozen=True)
class _Incident:
    start_ms: float
    end_ms: float
    error_rate: float
    latency_factor: float
    message: tuple[str, int]


@dataclass(frozen=True)
class _Profile:
    """Everything that gives a service its character, drawn once from its seed."""

    service: str
    target_size: int
    requests_per_ms: float
    error_rate: float
    warn_rate: float
    median_ms: float
    timeout_ms: int
    endpoints: tuple[_Endpoint, ...]
    endpoint_weights: tuple[float, ...]
    errors: tuple[tuple[str, int], ...]
    error_weights: tuple[float, ...]
    incidents: tuple[_Incident, ...]


def _seed(service: str) -> int:
    """Seed from crc32 because ``hash()`` of a str changes between processes."""
    return zlib.crc32(service.encode("utf-8"))


def _plan_incidents(
    rng: random.Random, baseline: float, errors: tuple[tuple[str, int], ...]
) -> tuple[_Incident, ...]:
    """Place each incident in its own slice of the day so that two never merge.

    Incidents end well before midnight because a log whose byte budget runs
    out early stops before the end of the day (see ``_build_profile``).
    """
    count = 2 if rng.random() < _TWO_INCIDENT_SHARE else 1
    slice_minutes = _LOG_MINUTES // count
    incidents = []
    for index in range(count):
        start = rng.randint(index * slice_minutes + 30, (index + 1) * slice_minutes - 150)
        duration = rng.randint(10, 30)
        incidents.append(
            _Incident(
                start_ms=start * 60_000.0,
                end_ms=(start + duration) * 60_000.0,
                error_rate=baseline + rng.uniform(*_INCIDENT_EXTRA_ERRORS),
                latency_factor=rng.uniform(3.0, 6.0),
                message=rng.choice(errors),
            )
        )
    return tuple(incidents)


def _build_profile(service: str, rng: random.Random) -> _Profile:
    resource = service.removesuffix("-api")
    templates = rng.sample(_ENDPOINT_TEMPLATES, k=rng.randint(6, 9))
    slow_index = rng.randrange(len(templates))
    endpoints = tuple(
        _Endpoint(
            method,
            path.replace("{r}", resource),
            rng.uniform(6.0, 14.0) if index == slow_index else rng.uniform(0.5, 2.0),
        )
        for index, (method, path) in enumerate(templates)
    )
    weights = [rng.uniform(1.0, 10.0) for _ in endpoints]
    errors = tuple(rng.sample(_SERVER_ERRORS, k=rng.randint(3, 4)))
    baseline = _BASELINE_ERROR_RATES[service]
    incidents = _plan_incidents(rng, baseline, errors)
    target_size = rng.randint(_MIN_SIZE, _MAX_SIZE)
    # The request rate is set so that the byte budget runs out near midnight.
    # The budget caps the size exactly; the floor holds because the line
    # length estimate is close (its fixed part was fitted on the generated
    # output) and the smallest budget keeps a margin above 100 KB.
    mean_path = sum(w * len(e.path) for w, e in zip(weights, endpoints, strict=True)) / sum(weights)
    expected_lines = target_size / (_LINE_OVERHEAD + len(service) + mean_path)
    surge_minutes = sum((i.end_ms - i.start_ms) / 60_000 * (_INCIDENT_TRAFFIC - 1) for i in incidents)
    return _Profile(
        service=service,
        target_size=target_size,
        requests_per_ms=expected_lines / ((_LOG_MINUTES + surge_minutes) * 60_000),
        error_rate=baseline,
        warn_rate=rng.uniform(0.01, 0.04),
        median_ms=rng.uniform(12.0, 60.0),
        timeout_ms=rng.choice((2_000, 3_000, 5_000)),
        endpoints=endpoints,
        endpoint_weights=tuple(accumulate(weights)),
        errors=errors,
        error_weights=tuple(accumulate(_ERROR_SKEW[: len(errors)])),
        incidents=incidents,
    )


_T = TypeVar("_T")


def _incident_at(profile: _Profile, at_ms: float) -> _Incident | None:
    return next((i for i in profile.incidents if i.start_ms <= at_ms < i.end_ms), None)


def _pick(rng: random.Random, items: tuple[_T, ...], cum_weights: tuple[float, ...]) -> _T:
    """``rng.choices(...)[0]`` without its per-call checks, which cost more than the draw itself."""
    return items[bisect_right(cum_weights, rng.random() * cum_weights[-1])]


def _request_line(profile: _Profile, rng: random.Random, at_ms: float, incident: _Incident | None) -> str:
    endpoint = _pick(rng, profile.endpoints, profile.endpoint_weights)
    path = endpoint.path
    if "{id}" in path:
        path = path.replace("{id}", str(rng.randrange(1_000, 100_000)))
    latency = rng.lognormvariate(math.log(profile.median_ms), _LATENCY_SIGMA)
    latency *= endpoint.latency_factor
    error_rate = profile.error_rate
    if incident is not None:
        latency *= incident.latency_factor
        error_rate = incident.error_rate

    roll = rng.random()
    if roll < error_rate:
        level = "ERROR"
        if incident is not None and rng.random() < _INCIDENT_DOMINANT_SHARE:
            message, status = incident.message
        else:
            message, status = _pick(rng, profile.errors, profile.error_weights)
        if message == _TIMEOUT_MESSAGE:
            latency = profile.timeout_ms + rng.uniform(0.0, 50.0)
    elif roll < error_rate + profile.warn_rate:
        level = "WARN"
        message, status = rng.choice(_CLIENT_ERRORS)
        latency *= 0.3
    else:
        status, message = _SUCCESS[endpoint.method]
        if latency >= _SLOW_REQUEST_MS:
            level, message = "WARN", "slow request"
        elif rng.random() < _DEBUG_SHARE:
            level, message = "DEBUG", "cache miss"
        else:
            level = "INFO"

    stamp = (_LOG_START + timedelta(milliseconds=int(at_ms))).isoformat(timespec="milliseconds")
    return (
        f"{stamp}Z {level} {profile.service} {endpoint.method} {path} "
        f'status={status} latency_ms={round(latency)} msg="{message}"'
    )


def generate_log(service: str) -> str:
    """Return the demo log of one of ``SERVICES``, identical on every run.

    Unknown names are refused because each service's baseline error rate is
    part of the demo's script, not something to improvise.
    """
    if service not in _BASELINE_ERROR_RATES:
        raise ValueError(f"unknown demo service {service!r}; expected one of {SERVICES}")
    rng = random.Random(_seed(service))
    profile = _build_profile(service, rng)
    lines: list[str] = []
    size = 0
    at_ms = 0.0
    incident = _incident_at(profile, at_ms)
    # Whichever comes first: the byte budget or midnight.
    while size < profile.target_size:
        surge = 1.0 if incident is None else _INCIDENT_TRAFFIC
        at_ms += rng.expovariate(profile.requests_per_ms * surge)
        if at_ms >= _LOG_MINUTES * 60_000:
            break
        incident = _incident_at(profile, at_ms)
        line = _request_line(profile, rng, at_ms, incident)
        lines.append(line)
        size += len(line) + 1
    return "\n".join(lines) + "\n"
