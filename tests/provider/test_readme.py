"""The "A real model" and "A nightly batch, bounded" sections of docs/configuration.md, run as
written against the fake provider: only the API key and the server's address are the test's own."""

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
CONFIGURATION = ROOT / "docs" / "configuration.md"


def _section_commands(title: str) -> str:
    """The first bash block after the heading `title` (of any level) of docs/configuration.md."""
    heading = re.search(rf"^#+ {re.escape(title)}\n", CONFIGURATION.read_text(), re.MULTILINE)
    assert heading, f"no heading {title!r} in {CONFIGURATION.name}"
    section = heading.string[heading.end() :]
    found = re.search(r"```bash\n(.*?)```", section, re.DOTALL)
    assert found, f"no bash block under {title!r}"
    return found.group(1)


def _run_as_written(commands: str, data_dir: Path, **variables: str) -> str:
    """Runs a documented block as a user's shell would, on a data directory of the test's own;
    returns what it printed, its whitespace folded (rich wraps lines to the terminal)."""
    env = without_settings() | {"TASKFORCE_DATA_DIR": str(data_dir)} | variables
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
    return " ".join(done.stdout.split())


def test_the_real_model_walk_through_runs_as_written(
    provider_cluster: ProviderCluster, provider: RemoteProvider, tmp_path: Path
) -> None:
    commands = _section_commands("A real model")
    assert "sk-..." in commands
    assert "http://localhost:8000/v1" in commands
    commands = commands.replace("sk-...", "sk-readme").replace("http://localhost:8000/v1", provider.base_url)

    out = _run_as_written(commands, tmp_path)
    assert "Models: main agent openai:gpt-4.1; subagents openai:gpt-4.1-mini (general-purpose)" in out
    assert re.search(r"Tokens: [\d,]+ in, [\d,]+ out \(main agent [\d,]+ / [\d,]+; 2 delegations", out), out
    assert "deterministic stand-in" not in out  # no model is the offline one (its answers say so)
    stats = provider.stats()
    assert set(stats.models) == {"gpt-4.1", "gpt-4.1-mini"}
    assert stats.refused == {}


def test_the_nightly_batch_under_limits_and_budgets_runs_as_written(
    provider_cluster: ProviderCluster, provider: RemoteProvider, tmp_path: Path
) -> None:
    """The provider refuses a ninth call at once: the limits of the example keep it from ever
    seeing one, and the budget row of the summary is the batch's."""
    commands = _section_commands("A nightly batch, bounded")
    assert "sk-..." in commands
    commands = commands.replace("sk-...", "sk-readme").replace("/tmp/", f"{tmp_path}/")
    provider.configure(max_in_flight=8)

    out = _run_as_written(commands, tmp_path, OPENAI_BASE_URL=provider.base_url)
    assert re.search(r"budget │ batch:batch-nightly-results-\w+ spent 0\.\d{4} of 5 cost", out), out
    results = (tmp_path / "nightly-results.jsonl").read_text().splitlines()
    assert len(results) == 2
    stats = provider.stats()
    assert stats.refused == {}
    assert stats.max_in_flight <= 8
    assert set(stats.models) == {"gpt-4.1-mini"}
