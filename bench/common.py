"""What the benchmarks share, so that they pick subagents, isolate themselves and report figures
the same way, and a change to one of these rules reaches every table."""

from __future__ import annotations

import os
from typing import Any, cast

from deepagents.middleware.subagents import SubAgent

from shared.settings import Settings
from tests.integration.agents import SUBAGENTS

TEST_REGISTRY = "tests.integration.agents:SUBAGENTS"
"""The integration tests' subagents, which worker processes import by this path."""


def test_subagents(*names: str) -> list[SubAgent]:
    """The registry's specs of these names, the very objects the workers load, so that deepagents
    in-process runs exactly what taskforce's workers run."""
    specs = [spec for spec in SUBAGENTS if spec["name"] in names]
    if len(specs) != len(names):
        raise ValueError(f"not all of {names} are in {TEST_REGISTRY}")
    return cast(list[SubAgent], specs)


def isolated_settings(**values: Any) -> Settings:
    """Settings from `values` and defaults alone: every `TASKFORCE_*` variable is dropped from
    this process's environment (workers inherit it) and `.env` is not read, so a benchmark
    always starts its own Redis and never touches a shared one."""
    for name in [name for name in os.environ if name.startswith("TASKFORCE_")]:
        del os.environ[name]
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def load_text(averages: tuple[float, float, float]) -> str:
    """A load average as printed under every table: on a shared machine it says how much the
    figures above it can be trusted."""
    return " ".join(f"{value:.2f}" for value in averages)
