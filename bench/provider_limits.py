"""A fan-out against a provider's capacity, with the pool's model limits off and on.

    python -m bench.provider_limits                  # 200 delegations per case (make bench)
    python -m bench.provider_limits --delegations 60

The fake OpenAI-compatible provider answers each call in `--latency` seconds and refuses with
429 (`Retry-After: 1`) any call beyond `--capacity` in flight, as a provider's concurrency limit
does. One main agent turn delegates every item at once to `noter`, a subagent on
`openai:fake-noter` (the stock langchain-openai client) that answers in one provider call,
on 2 local workers of 32 threads each. The main agent's own model is scripted, off the provider,
so the provider's calls are the subagents' alone and the capacity bound is exact:
delegations * latency / capacity.

Cases, each on workers started for it, in one run:

- **no limits**: taskforce's retries alone (429s retried with backoff, honouring Retry-After,
  up to 8 attempts within the deadline), the clients' own retries off, as models built from
  strings have them;
- **no limits, client retries 10**: the same with langchain-openai's own retries on too
  (`max_retries: 10`), the most a deployment without a shared limiter could tune;
- **limits = capacity**: `TASKFORCE_MODEL_LIMITS` gives `openai:fake-noter` the provider's
  concurrency.

Target, for the limits case: 0 failed, at most 2 % of provider calls answered 429, wall time
within 15 % of the capacity bound.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass
from typing import Any

from langchain_core.messages import HumanMessage
from rich.console import Console
from rich.table import Table

from bench.common import OneTurn, isolated_settings, load_text, task_calls
from orchestrator import create_orchestrator
from orchestrator.embedded import local_cluster
from orchestrator.session import reports_in
from tests.support.fake_provider import FakeProvider, RemoteProvider

NOTER_MODEL = "openai:fake-noter"
SUBAGENTS: list[dict[str, Any]] = [
    {
        "name": "noter",
        "description": "Writes a one-line note on a topic.",
        "system_prompt": "You write one short note on the topic you are given.",
        "model": NOTER_MODEL,
    }
]
REGISTRY = "bench.provider_limits:SUBAGENTS"
WORKERS = 2
THREADS = 32
MAX_REFUSED_SHARE = 0.02
MAX_OVER_BOUND = 0.15


@dataclass(frozen=True)
class Case:
    name: str
    settings: dict[str, Any]
    targeted: bool = False
    """The case the target is for."""


@dataclass(frozen=True)
class Outcome:
    ok: int
    failed: int
    calls: int
    refused: int
    wall_s: float
    waited_s: float


def cases(capacity: int) -> list[Case]:
    return [
        Case("no limits", {}),
        Case("no limits, client retries 10", {"model_options": {NOTER_MODEL: {"max_retries": 10}}}),
        Case(
            f"limits = capacity ({capacity} at once)",
            {"model_limits": {NOTER_MODEL: {"max_concurrency": capacity}}},
            targeted=True,
        ),
    ]


def run_case(case: Case, provider: RemoteProvider, delegations: int) -> Outcome:
    settings = isolated_settings(
        subagents=REGISTRY,
        workers=WORKERS,
        worker_concurrency=THREADS,
        general_purpose=False,
        **case.settings,
    )
    with local_cluster(settings) as live:
        provider.reset()
        main = OneTurn(calls=task_calls("noter", [f"write a note on topic {n}" for n in range(delegations)]))
        agent = create_orchestrator(main, settings=live)
        started = time.monotonic()
        given: Any = {"messages": [HumanMessage(content="go")]}
        state = agent.invoke(given, {"configurable": {"thread_id": f"bench-{case.name}"}})
        wall = time.monotonic() - started
    reports = reports_in(state["messages"])
    stats = provider.stats()
    ok = sum(report.status == "ok" for report in reports)
    return Outcome(
        ok=ok,
        failed=len(reports) - ok,
        calls=stats.calls,
        refused=stats.refused.get("429", 0),
        wall_s=wall,
        waited_s=sum(sum(report.model_wait_s.values()) for report in reports),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--delegations", type=int, default=200)
    parser.add_argument("--latency", type=float, default=0.5, help="seconds the provider takes per call")
    parser.add_argument("--capacity", type=int, default=4, help="calls in flight the provider accepts")
    options = parser.parse_args()
    bound = options.delegations * options.latency / options.capacity
    console = Console(width=140)
    table = Table(
        "case",
        "ok",
        "failed",
        "provider calls",
        "answered 429",
        "wall",
        "vs bound",
        "waited for limits",
        "target",
        title=(
            f"{options.delegations} delegations on {WORKERS} workers × {THREADS}, provider: "
            f"{options.latency:g} s a call, 429 above {options.capacity} in flight; "
            f"capacity bound {bound:.1f} s"
        ),
    )
    with FakeProvider.in_subprocess(latency_s=options.latency, max_in_flight=options.capacity) as provider:
        os.environ |= {"OPENAI_BASE_URL": provider.base_url, "OPENAI_API_KEY": "sk-bench"}
        for case in cases(options.capacity):
            outcome = run_case(case, provider, options.delegations)
            share = outcome.refused / outcome.calls if outcome.calls else 0.0
            over = outcome.wall_s / bound - 1
            met = outcome.failed == 0 and share <= MAX_REFUSED_SHARE and over <= MAX_OVER_BOUND
            table.add_row(
                case.name,
                str(outcome.ok),
                str(outcome.failed),
                str(outcome.calls),
                f"{outcome.refused} ({share:.1%})",
                f"{outcome.wall_s:.1f} s",
                f"{over:+.0%}",
                f"{outcome.waited_s:.0f} s",
                ("PASS" if met else "BELOW") if case.targeted else "-",
            )
    console.print(table)
    console.print(
        "Target for the limits case: 0 failed, ≤ 2 % of calls answered 429, wall within 15 % of the bound."
    )
    console.print(f"load average: {load_text(os.getloadavg())}")


if __name__ == "__main__":
    main()
