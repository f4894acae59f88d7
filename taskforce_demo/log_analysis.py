"""The analysis a demo subagent runs on one service log (``taskforce demo``).

It reads the line format ``taskforce_demo.service_logs`` writes but knows nothing
else of how the logs were made: no seeds, no planted incidents.  What it
reports it finds in the text, so it holds for any log in that format,
hand-written or truncated ones included.
"""

from __future__ import annotations

import math
import re
import statistics
from bisect import bisect_left, bisect_right
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from itertools import accumulate
from typing import Final

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
