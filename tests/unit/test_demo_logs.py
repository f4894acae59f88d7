"""The demo's generated logs and their analysis.

Generating all 24 logs takes about a second, so they are built once per module.
Incident detection is checked on hand-written logs, where the planted burst is
known exactly, and on the generated logs against their own hourly counts.
"""

from __future__ import annotations

import hashlib
import os
import random
import re
import subprocess
import sys
from collections.abc import Collection
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from taskforce_demo.log_analysis import LogAnalysis, analyse_log
from taskforce_demo.service_logs import SERVICES, generate_log

REPO = Path(__file__).resolve().parents[2]
START = datetime(2026, 11, 1)
# The documented line format, written out independently of the parser.
LINE_FORMAT = re.compile(
    r"2026-11-01T\d\d:\d\d:\d\d\.\d{3}Z (INFO|WARN|ERROR|DEBUG) (?P<service>[a-z0-9-]+) "
    r"(GET|POST|PUT|DELETE) /\S* status=\d{3} latency_ms=\d+ msg=\"[^\"]*\""
)
SECTIONS = (
    "## Summary",
    "## Latency",
    "## Slowest endpoints",
    "## Top errors",
    "## Incidents",
    "## Requests per hour",
)


@pytest.fixture(scope="module")
def logs() -> dict[str, str]:
    return {service: generate_log(service) for service in SERVICES}


@pytest.fixture(scope="module")
def analyses(logs: dict[str, str]) -> dict[str, LogAnalysis]:
    return {service: analyse_log(service, text) for service, text in logs.items()}


def line(
    at: datetime,
    level: str = "INFO",
    *,
    method: str = "GET",
    path: str = "/v1/items",
    status: int = 200,
    latency: int = 40,
    msg: str = "ok",
) -> str:
    stamp = at.isoformat(timespec="milliseconds")
    return f'{stamp}Z {level} demo-svc {method} {path} status={status} latency_ms={latency} msg="{msg}"'


def steady_log(extra_failures: Collection[int] = ()) -> str:
    """Three hours at three requests a minute (request ``i`` at minute ``i // 3``),
    with 1 % of requests failing evenly spread, plus ``extra_failures``."""
    lines = []
    for index in range(3 * 60 * 3):
        at = START + timedelta(seconds=20 * index)
        if index % 100 == 50 or index in extra_failures:
            lines.append(line(at, "ERROR", status=504, latency=3000, msg="upstream timeout"))
        else:
            lines.append(line(at))
    return "\n".join(lines) + "\n"


def test_services_are_24_distinct_slugs() -> None:
    assert len(SERVICES) == 24
    assert len(set(SERVICES)) == 24
    assert all(re.fullmatch(r"[a-z0-9-]+", service) for service in SERVICES)


def test_generation_is_deterministic_across_processes() -> None:
    """A seed from ``hash()`` would pass within one process but not across two."""
    here = hashlib.sha256(generate_log("checkout").encode()).hexdigest()
    assert generate_log("checkout") == generate_log("checkout")
    code = (
        "import hashlib; from taskforce_demo.service_logs import generate_log; "
        "print(hashlib.sha256(generate_log('checkout').encode()).hexdigest())"
    )
    for hash_seed in ("1", "2"):
        env = {**os.environ, "PYTHONHASHSEED": hash_seed}
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=REPO, env=env, capture_output=True, text=True, check=True
        )
        assert result.stdout.strip() == here


def test_every_log_is_between_100_kb_and_1_mb_and_sizes_vary(logs: dict[str, str]) -> None:
    sizes = {service: len(text) for service, text in logs.items()}
    assert all(100_000 <= size <= 1_000_000 for size in sizes.values()), sizes
    assert max(sizes.values()) - min(sizes.values()) > 300_000


def test_services_produce_different_logs_in_the_documented_format(logs: dict[str, str]) -> None:
    assert len(set(logs.values())) == len(SERVICES)
    for service, text in logs.items():
        lines = text.splitlines()
        bad = [row for row in lines if not (m := LINE_FORMAT.fullmatch(row)) or m["service"] != service]
        assert bad == [], (service, bad[:3])
        stamps = [row[:24] for row in lines]
        assert stamps == sorted(stamps), service


def test_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown demo service"):
        generate_log("not-a-service")


def test_generated_logs_parse_cleanly(logs: dict[str, str], analyses: dict[str, LogAnalysis]) -> None:
    for service, analysis in analyses.items():
        assert analysis.malformed_lines == 0, service
        assert analysis.lines == analysis.requests == len(logs[service].splitlines())
        assert analysis.bytes == len(logs[service])
        assert sum(requests for _, requests, _ in analysis.hourly) == analysis.requests
        assert sum(errors for _, _, errors in analysis.hourly) == analysis.error_count


def test_services_differ_in_character(analyses: dict[str, LogAnalysis]) -> None:
    rates = sorted(analysis.error_rate for analysis in analyses.values())
    assert sum(rate < 0.01 for rate in rates) >= 3, rates
    assert sum(rate > 0.05 for rate in rates) >= 2, rates
    for service, analysis in analyses.items():
        # Each service has one endpoint far slower than its typical request,
        assert analysis.slowest_endpoints[0][1] > 10 * analysis.p50_ms, service
        # and a few failure modes that keep coming back.
        assert len(analysis.top_errors) >= 2, service
        assert analysis.top_errors[0][1] >= 5, service


def test_generated_incidents_cover_the_worst_hour(analyses: dict[str, LogAnalysis]) -> None:
    """Every service has one or two planted incidents; the detector must find
    them where the hourly counts, computed independently, put the most errors."""
    for service, analysis in analyses.items():
        assert 1 <= len(analysis.incident_windows) <= 2, (service, analysis.incident_windows)
        worst_hour = int(max(analysis.hourly, key=lambda row: row[2])[0][11:13])
        spans = []
        for window in analysis.incident_windows:
            start, end = (int(t[:2]) * 60 + int(t[3:]) for t in window.split("-"))
            spans.append((start, end))
            assert 5 <= end - start <= 45, (service, window)
        assert any(start < (worst_hour + 1) * 60 and end > worst_hour * 60 for start, end in spans), (
            service,
            worst_hour,
            analysis.incident_windows,
        )


def test_planted_burst_is_found_exactly() -> None:
    """Two requests in three fail from 01:10 to 01:25.  A stray error at 01:01
    falls inside the detector's window but must not stretch the incident."""
    burst = {i for i in range(70 * 3, 85 * 3) if i % 3}
    analysis = analyse_log("demo-svc", steady_log({61 * 3, *burst}))
    assert analysis.incident_windows == ("01:10-01:25",)


def test_scattered_errors_are_not_an_incident() -> None:
    analysis = analyse_log("demo-svc", steady_log())
    assert analysis.error_count == 5
    assert analysis.incident_windows == ()


def test_a_brief_cluster_is_not_an_incident() -> None:
    """Four failures in two minutes happen by chance too often in a day to page anyone."""
    analysis = analyse_log("demo-svc", steady_log({300, 301, 302, 303}))
    assert analysis.error_count == 9
    assert analysis.incident_windows == ()


def test_a_steadily_noisy_service_is_not_an_incident() -> None:
    """Ten percent errors all day is bad, but it is the norm, not a spike."""
    rng = random.Random(7)
    text = "\n".join(
        line(START + timedelta(seconds=15 * index), "ERROR" if rng.random() < 0.1 else "INFO")
        for index in range(24 * 60 * 4)
    )
    analysis = analyse_log("demo-svc", text)
    assert analysis.error_rate == pytest.approx(0.1, abs=0.01)
    assert analysis.incident_windows == ()


def test_malformed_lines_are_counted_not_fatal() -> None:
    good = [
        '2026-11-01T00:00:03.412Z INFO auth-api GET /v1/login status=200 latency_ms=35 msg="ok"',
        line(START + timedelta(minutes=1), "ERROR", status=500, latency=80, msg="db connection reset"),
        line(START + timedelta(minutes=2), "WARN", status=401, latency=12, msg="invalid token"),
    ]
    bad = [
        "garbage",
        good[0][:40],  # truncated mid-line
        good[0].replace("2026-11-01", "2026-13-01"),  # shaped like a date, but is not one
        good[0].replace("latency_ms=35", "latency_ms=fast"),
        good[0].replace(' msg="ok"', ""),
    ]
    text = "\n".join([good[0], bad[0], good[1], *bad[1:], "", "   ", good[2]])
    analysis = analyse_log("auth-api", text)
    assert analysis.malformed_lines == len(bad)
    assert analysis.lines == len(good) + len(bad)
    assert analysis.requests == len(good)
    assert analysis.error_count == 1
    assert analysis.warn_count == 1
    assert analysis.error_rate == pytest.approx(1 / 3)
    assert analysis.top_errors == (("db connection reset", 1),)


def test_latency_percentiles_endpoints_and_errors() -> None:
    items = [
        line(START + timedelta(seconds=i), path=f"/v1/items/{1000 + i}", latency=i) for i in range(1, 101)
    ]
    failures = [
        line(
            START + timedelta(minutes=5, seconds=i),
            "ERROR",
            method="POST",
            path="/v1/orders",
            status=500 if i < 6 else 504,
            latency=500,
            msg="db connection reset" if i < 6 else "upstream timeout",
        )
        for i in range(10)
    ]
    # Too few requests for a meaningful p95, however slow.
    rare = [line(START + timedelta(minutes=9, seconds=i), path="/v1/rare", latency=9_999) for i in range(3)]

    only_items = analyse_log("demo-svc", "\n".join(items))
    assert (only_items.p50_ms, only_items.p95_ms, only_items.p99_ms) == pytest.approx((50.5, 95.05, 99.01))

    analysis = analyse_log("demo-svc", "\n".join(items + failures + rare))
    assert analysis.slowest_endpoints == (("POST /v1/orders", 500.0), ("GET /v1/items/{id}", 95.05))
    assert analysis.top_errors == (("db connection reset", 6), ("upstream timeout", 4))
    assert analysis.error_rate == pytest.approx(10 / 113)


@pytest.mark.parametrize("text", ["", "\n\n   \n"])
def test_empty_text_gives_a_zero_analysis(text: str) -> None:
    analysis = analyse_log("auth-api", text)
    assert analysis.lines == analysis.requests == analysis.malformed_lines == 0
    assert analysis.bytes == len(text)
    assert analysis.error_count == analysis.warn_count == 0
    assert (analysis.error_rate, analysis.p50_ms, analysis.p95_ms, analysis.p99_ms) == (0.0, 0.0, 0.0, 0.0)
    assert analysis.slowest_endpoints == ()
    assert analysis.top_errors == ()
    assert analysis.incident_windows == ()
    assert analysis.hourly == ()
    assert analysis.headline() == "auth-api: 0 requests, error rate 0.0%, p95 0 ms, no incidents"
    assert all(section in analysis.to_markdown() for section in SECTIONS)


def test_headline_is_one_line_naming_service_and_incidents(analyses: dict[str, LogAnalysis]) -> None:
    for service, analysis in analyses.items():
        headline = analysis.headline()
        assert "\n" not in headline
        assert headline.startswith(f"{service}: {analysis.requests:,} requests, error rate ")
        count = len(analysis.incident_windows)
        assert f"{count} incident{'s' if count > 1 else ''} (" in headline
        assert all(window in headline for window in analysis.incident_windows)


def test_markdown_report_has_every_section(analyses: dict[str, LogAnalysis]) -> None:
    analysis = analyses["webhooks"]
    report = analysis.to_markdown()
    assert report.startswith("# Log analysis: webhooks\n")
    positions = [report.index(section) for section in SECTIONS]
    assert positions == sorted(positions)
    assert all(f"| {name} |" in report for name, _ in analysis.slowest_endpoints)
    assert all(f"| {message} |" in report for message, _ in analysis.top_errors)
    assert all(f"- {window} UTC" in report for window in analysis.incident_windows)
    assert report.count("| 2026-11-01 ") == len(analysis.hourly)
    assert len(analysis.hourly) >= 20
    assert 1_500 < len(report) < 10_000


def test_markdown_escapes_pipes_from_the_log() -> None:
    text = line(START, "ERROR", status=500, msg="bad | value")
    assert "| bad \\| value | 1 |" in analyse_log("demo-svc", text).to_markdown()
