"""Synthetic web-service logs and a real analysis of them for ``taskforce demo``.

The demo has to run offline and tell the same story on every machine, so it
ships its own data: one day of request logs per service, generated from a seed
derived from the service name.  The services differ on purpose (error rates,
slow endpoints, recurring failures, incidents at different times) so that the
analysis a subagent runs has something worth reporting.
"""

from __future__ import annotations

import math
import random
import re
import statistics
import zlib
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
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


_LINE_RE: Final = re.compile(
    r"(?P<ts>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?Z) "
    r"(?P<level>DEBUG|INFO|WARN|ERROR) [a-z0-9-]+ (?P<method>[A-Z]+) (?P<path>/\S*) "
    r"status=\d{3} latency_ms=(?P<latency>\d+(?:\.\d+)?) "
    r'msg="(?P<msg>[^"]*)"'
)
# Ids in paths would make every request its own endpoint.
_ID_SEGMENT_RE: Final = re.compile(r"/\d+(?=/|$)")
_TOP_N: Final = 5
# A p95 over a handful of requests is noise, not a slow endpoint.
_MIN_ENDPOINT_REQUESTS: Final = 5

# Incident detection compares a sliding window of minutes against the
# service's usual error rate.  The window widens on quiet logs so that it
# holds enough requests for one error not to look like an outage.
_WINDOW_TARGET_REQUESTS: Final = 40
_MAX_HALF_WINDOW: Final = 7
# Floor and ceiling keep the surprise score finite and stop a service with no
# baseline errors from turning every stray error into an incident.
_BASELINE_FLOOR: Final = 0.002
_BASELINE_CEILING: Final = 0.5
_MIN_WINDOW_ERRORS: Final = 3
# A window must be at most e^-10 (about 1 in 20,000) likely by chance, as a
# day holds over a thousand overlapping windows.  On 600 generated days this
# bar found 99 % of the planted incidents with one false alarm (on a service
# failing 6.5 % of requests anyway); 8 nats found a few more but raised three.
_SURPRISE_THRESHOLD: Final = 10.0
# Edges are tested on half windows inside an already detected region, so a
# weaker bar (about one in a thousand) suffices.
_EDGE_SURPRISE: Final = 7.0


@dataclass(frozen=True)
class LogAnalysis:
    """What a subagent reports about one service's log."""

    service: str
    lines: int
    bytes: int
    error_count: int
    warn_count: int
    error_rate: float
    p50_ms: float
    p95_ms: float
    p99_ms: float
    slowest_endpoints: tuple[tuple[str, float], ...]
    top_errors: tuple[tuple[str, int], ...]
    incident_windows: tuple[str, ...]
    malformed_lines: int
    hourly: tuple[tuple[str, int, int], ...] = ()
    """(hour, requests, errors) per UTC hour that saw traffic."""

    @property
    def requests(self) -> int:
        """Malformed lines are not requests, so they stay out of every rate."""
        return self.lines - self.malformed_lines

    def headline(self) -> str:
        """One line, so that a summary of many services stays one row per service."""
        if self.incident_windows:
            noun = "incident" if len(self.incident_windows) == 1 else "incidents"
            spans = ", ".join(self.incident_windows)
            incidents = f"{len(self.incident_windows)} {noun} ({spans})"
        else:
            incidents = "no incidents"
        return (
            f"{self.service}: {self.requests:,} requests, "
            f"error rate {self.error_rate:.1%}, p95 {self.p95_ms:,.0f} ms, {incidents}"
        )

    def to_markdown(self) -> str:
        """The full report the subagent hands back, readable without the log."""
        out = [
            f"# Log analysis: {self.service}",
            "",
            self.headline(),
            "",
            "## Summary",
            "",
            "| Metric | Value |",
            "| --- | ---: |",
            f"| Lines | {self.lines:,} |",
            f"| Bytes | {self.bytes:,} |",
            f"| Requests | {self.requests:,} |",
            f"| Errors | {self.error_count:,} |",
            f"| Warnings | {self.warn_count:,} |",
            f"| Error rate | {self.error_rate:.2%} |",
            f"| Malformed lines | {self.malformed_lines:,} |",
            "",
            "## Latency",
            "",
            "| Percentile | ms |",
            "| --- | ---: |",
            f"| p50 | {self.p50_ms:,.1f} |",
            f"| p95 | {self.p95_ms:,.1f} |",
            f"| p99 | {self.p99_ms:,.1f} |",
            "",
            "## Slowest endpoints",
            "",
        ]
        out += _table(
            ("Endpoint", "p95 ms"),
            [(name, f"{p95:,.1f}") for name, p95 in self.slowest_endpoints],
        )
        out += ["", "## Top errors", ""]
        out += _table(
            ("Message", "Count"),
            [(message, f"{count:,}") for message, count in self.top_errors],
        )
        out += ["", "## Incidents", ""]
        if self.incident_windows:
            out += [f"- {span} UTC" for span in self.incident_windows]
        else:
            out.append("No error spikes detected.")
        out += ["", "## Requests per hour", ""]
        out += _table(
            ("Hour (UTC)", "Requests", "Errors", "Error rate"),
            [
                (hour, f"{requests:,}", f"{errors:,}", f"{errors / requests:.1%}")
                for hour, requests, errors in self.hourly
            ],
        )
        return "\n".join(out) + "\n"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    """Render a Markdown table; an empty one says so instead of vanishing."""
    if not rows:
        return ["None."]

    def row(cells: tuple[str, ...]) -> str:
        # Log text is untrusted: a stray pipe would split a cell.
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    alignment = ("---",) + ("---:",) * (len(header) - 1)
    return [row(header), "| " + " | ".join(alignment) + " |"] + [row(r) for r in rows]


def _percentiles(values: list[float]) -> tuple[float, float, float]:
    """p50, p95, p99; ``statistics.quantiles`` needs two points, so fewer are special."""
    if len(values) < 2:
        only = values[0] if values else 0.0
        return only, only, only
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[94], cuts[98]


def _surprise(requests: int, errors: int, baseline: float) -> float:
    """How unlikely ``errors`` out of ``requests`` is at the baseline rate, in nats.

    The chance of a window at least this bad is at most e^-surprise (the
    Chernoff bound on the binomial tail), so the score never overstates an
    incident, and unlike the exact tail it needs no huge binomial
    coefficients however busy the window.
    """
    rate = errors / requests
    if rate <= baseline:
        return 0.0
    divergence = rate * math.log(rate / baseline)
    if rate < 1.0:
        divergence += (1 - rate) * math.log((1 - rate) / (1 - baseline))
    return requests * divergence


def _incident_windows(
    requests_by_minute: Counter[int], errors_by_minute: Counter[int], baseline: float
) -> tuple[str, ...]:
    """Spans of minutes whose error rate spiked far above ``baseline``.

    Only minutes that saw traffic are visited, which keeps a stray timestamp
    years away from the rest cheap.
    """
    if not errors_by_minute:
        return ()
    minutes = sorted(requests_by_minute)
    per_minute = sum(requests_by_minute.values()) / (minutes[-1] - minutes[0] + 1)
    half = min(_MAX_HALF_WINDOW, max(1, math.ceil(_WINDOW_TARGET_REQUESTS / per_minute) // 2))
    # Prefix sums over the traffic-bearing minutes turn any window into two lookups.
    req_sums = [0, *accumulate(requests_by_minute[m] for m in minutes)]
    err_sums = [0, *accumulate(errors_by_minute[m] for m in minutes)]

    def spiked(first: int, last: int, threshold: float) -> bool:
        lo, hi = bisect_left(minutes, first), bisect_right(minutes, last)
        requests, errors = req_sums[hi] - req_sums[lo], err_sums[hi] - err_sums[lo]
        return errors >= _MIN_WINDOW_ERRORS and _surprise(requests, errors, baseline) >= threshold

    # A flagged minute vouches for its whole window; overlapping windows merge.
    regions: list[list[int]] = []
    for minute in minutes:
        if not spiked(minute - half, minute + half, _SURPRISE_THRESHOLD):
            continue
        if regions and minute - half <= regions[-1][1] + 1:
            regions[-1][1] = minute + half
        else:
            regions.append([minute - half, minute + half])

    # Windows pad a region by up to ``half`` minutes each side.  The incident
    # starts at the first failing minute that opens a bad stretch and ends at
    # the last one that closes it, so a lone stray error nearby is not absorbed.
    spans: list[str] = []
    for first, last in regions:
        failing = [m for m in minutes if first <= m <= last and errors_by_minute[m]]
        start = next((m for m in failing if spiked(m, m + half, _EDGE_SURPRISE)), None)
        if start is None:
            continue
        end = max((m for m in failing if m > start and spiked(m - half, m, _EDGE_SURPRISE)), default=start)
        spans.append(f"{_clock(start * 60)}-{_clock((end + 1) * 60)}")
    return tuple(spans)


def _clock(epoch_seconds: int, fmt: str = "%H:%M") -> str:
    return datetime.fromtimestamp(epoch_seconds, UTC).strftime(fmt)


def analyse_log(service: str, text: str) -> LogAnalysis:
    """Analyse a log in the demo format, counting rather than failing on bad lines.

    Logs in the wild get truncated and interleaved, and one garbled line must
    not cost the whole report.  Blank lines are ignored: they carry nothing
    and trailing newlines would otherwise count as malformed.
    """
    lines = 0
    malformed = 0
    error_count = 0
    warn_count = 0
    latencies: list[float] = []
    by_endpoint: defaultdict[str, list[float]] = defaultdict(list)
    error_messages: Counter[str] = Counter()
    requests_by_minute: Counter[int] = Counter()
    errors_by_minute: Counter[int] = Counter()

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        lines += 1
        match = _LINE_RE.fullmatch(line)
        if match is None:
            malformed += 1
            continue
        try:
            stamp = datetime.fromisoformat(match["ts"])
        except ValueError:  # shaped like a timestamp but not a real instant
            malformed += 1
            continue
        minute = int(stamp.timestamp()) // 60
        latency = float(match["latency"])
        latencies.append(latency)
        endpoint = f"{match['method']} {_ID_SEGMENT_RE.sub('/{id}', match['path'])}"
        by_endpoint[endpoint].append(latency)
        requests_by_minute[minute] += 1
        if match["level"] == "ERROR":
            error_count += 1
            error_messages[match["msg"]] += 1
            errors_by_minute[minute] += 1
        elif match["level"] == "WARN":
            warn_count += 1

    p50, p95, p99 = _percentiles(latencies)
    endpoint_p95 = [
        (name, _percentiles(values)[1])
        for name, values in by_endpoint.items()
        if len(values) >= _MIN_ENDPOINT_REQUESTS
    ]
    endpoint_p95.sort(key=lambda item: (-item[1], item[0]))

    hourly_requests: Counter[int] = Counter()
    hourly_errors: Counter[int] = Counter()
    for minute, count in requests_by_minute.items():
        hourly_requests[minute // 60] += count
        hourly_errors[minute // 60] += errors_by_minute[minute]
    hours = sorted(hourly_requests)
    # The median hour stands for the service's norm, so the incidents do not
    # raise the bar they are measured against.
    typical = statistics.median(hourly_errors[h] / hourly_requests[h] for h in hours) if hours else 0.0
    baseline = min(_BASELINE_CEILING, max(_BASELINE_FLOOR, typical))

    return LogAnalysis(
        service=service,
        lines=lines,
        bytes=len(text.encode("utf-8")),
        error_count=error_count,
        warn_count=warn_count,
        error_rate=error_count / len(latencies) if latencies else 0.0,
        p50_ms=p50,
        p95_ms=p95,
        p99_ms=p99,
        slowest_endpoints=tuple(endpoint_p95[:_TOP_N]),
        top_errors=tuple(error_messages.most_common(_TOP_N)),
        incident_windows=_incident_windows(requests_by_minute, errors_by_minute, baseline),
        malformed_lines=malformed,
        hourly=tuple(
            (_clock(h * 3600, "%Y-%m-%d %H:00"), hourly_requests[h], hourly_errors[h]) for h in hours
        ),
    )
