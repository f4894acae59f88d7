"""The README's "A real model" section, run as written against the fake provider: only the API
key and the server's address are the test's own."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.provider.conftest import ProviderCluster
from tests.support.environment import without_settings
from tests.support.fake_provider import RemoteProvider

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def _section_commands(title: str) -> str:
    readme = (ROOT / "README.md").read_text()
    section = readme.split(f"### {title}\n", 1)[1]
    found = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert found, f"no bash block under {title!r}"
    return found.group(1)


def test_the_real_model_walk_through_runs_as_written(
    provider_cluster: ProviderCluster, provider: RemoteProvider, tmp_path: Path
) -> None:
    commands = _section_commands("A real model")
    assert "sk-..." in commands
    assert "http://localhost:8000/v1" in commands
    commands = commands.replace("sk-...", "sk-readme").replace("http://localhost:8000/v1", provider.base_url)
    env = without_settings() | {"TASKFORCE_DATA_DIR": str(tmp_path)}  # not the developer's own data

    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", commands],
        check=False,
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=240,
    )

    assert done.returncode == 0, done.stdout + done.stderr
    out = " ".join(done.stdout.split())
    assert "Models: main agent openai:gpt-4.1; subagents openai:gpt-4.1-mini (general-purpose)" in out
    assert re.search(r"Tokens: [\d,]+ in, [\d,]+ out \(main agent [\d,]+ / [\d,]+; 2 delegations", out), out
    assert "deterministic stand-in" not in out  # no model is the offline one (its answers say so)
    stats = provider.stats()
    assert set(stats.models) == {"gpt-4.1", "gpt-4.1-mini"}
    assert stats.refused == {}
